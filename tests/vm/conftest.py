"""VM fixtures (hack/vm/vm.py, docs/vm.md). Files named ``test_*_vm.py`` run on the host and drive
VMs; every other test file here runs INSIDE the VM (a pure cgroup v2 host) through
``in_vm_pytest``. Only helpers from tests/helpers.py may be imported by test modules."""
import sys

import pytest
from helpers import PURE_V2, REPO, vmlib
# the names tests/conftest.py offers, so that a stray ``from conftest import OCIRUN`` run after
# this file was loaded (then ``conftest`` in sys.modules) still works; use tests/helpers.py
from helpers import OCIRUN, ROOTFS_SRC, Bundle, Runner, need_root  # noqa: E402,F401



def pytest_ignore_collect(collection_path, config):
    """On a hybrid/v1 host the in-VM files are not collected (test_cgroups_v2_vm.py runs them in
    the VM); inside the VM (pure v2) the host-side ``test_*_vm.py`` drivers are not."""
    name = collection_path.name
    if name.startswith("test_") and name.endswith(".py") and name.endswith("_vm.py") == PURE_V2:
        return True
    return None


@pytest.fixture(scope="session")
def vm():
    """One cgroup v2 VM for the whole run (boot ~5 s under TCG), the repository shared in at
    its own path; ``vm.run(cmd, timeout=…) -> (rc, out, err)``."""
    lib = vmlib()
    with lib.VM(share=REPO, mem=1024) as v:
        sys.stderr.write(f"\nvm: {v.kernel} booted in {v.boot_s:.1f}s\n")
        # the busybox test rootfs on the guest's tmpfs: make_bundle hard-links it into tmp_path
        rc, out, err = v.run(f"cp -a {REPO}/build/rootfs/busybox /tmp/ocirun-rootfs", timeout=120)
        assert rc == 0, f"copying the test rootfs into the VM failed: {out}{err}"
        yield v
