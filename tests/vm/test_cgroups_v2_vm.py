"""From the host: boot the cgroup-v2 test VM (hack/vm/vm.py) and run
tests/vm/test_cgroups_v2.py inside it, so pure-v2 cgroups are tested on every run, not only
when someone starts pytest in a VM by hand. Skipped, with the reason, where the VM library or
its assets (hack/setup.d/40-vm.sh) are missing, and inside the VM itself."""
import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VM_LIB = os.environ.get("OCIRUN_VM_LIB", os.path.join(REPO, "hack", "vm"))

pytestmark = [pytest.mark.vm, pytest.mark.slow]


def test_cgroups_v2_inside_vm():
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        pytest.skip("already on a pure cgroup v2 host: test_cgroups_v2.py runs directly")
    if not os.path.exists(os.path.join(VM_LIB, "vm.py")):
        pytest.skip(f"no VM library at {VM_LIB}/vm.py")
    sys.path.insert(0, VM_LIB)
    try:
        import vm as vmlib
    finally:
        sys.path.remove(VM_LIB)
    if not os.path.exists(os.path.join(vmlib.VM_DIR, "vmlinux")):
        pytest.skip(f"VM assets missing in {vmlib.VM_DIR} (hack/setup.d/40-vm.sh)")
    with vmlib.VM(share=REPO, mem=1024) as v:
        rc, out, err = v.run(
            f"cd {REPO} && cat /sys/fs/cgroup/cgroup.controllers && "
            f"{REPO}/.venv/bin/python -m pytest -q -p no:cacheprovider -rs "
            f"tests/vm/test_cgroups_v2.py", timeout=900)
    assert rc == 0, f"cgroup v2 tests failed in the VM (rc={rc}):\n{out}\n{err}"
    assert " passed" in out and "skipped" not in out, out
