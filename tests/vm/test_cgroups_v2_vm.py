"""From the host: run every in-VM test file of tests/vm/ (all but the ``test_*_vm.py`` drivers)
inside the session's cgroup v2 VM (tests/vm/conftest.py ``vm``), so pure-v2 cgroups are tested on
every run. Skipped, with the reason, where the VM library or its assets are missing
(hack/setup.d/40-vm.sh), and inside the VM itself."""
import os
import time

import pytest
from helpers import REPO, in_vm_pytest

pytestmark = [pytest.mark.vm, pytest.mark.slow]

# these must run, not skip, inside the VM
MUST_PASS = ("test_cgroups_v2.py", "test_containers_v2.py")


def test_v2_suite_inside_vm(vm):
    t = time.monotonic()
    rc, out, results = in_vm_pytest(vm, "tests/vm")
    took = time.monotonic() - t
    print(f"in-VM pytest: {len(results)} tests in {took:.1f}s")
    assert results, f"no test results from the VM (rc={rc}):\n{out}"
    bad = {k: v for k, v in results.items() if v in ("failed", "error")}
    assert rc == 0 and not bad, f"cgroup v2 tests failed in the VM (rc={rc}): {bad}\n{out}"
    for must in MUST_PASS:
        mine = {k: v for k, v in results.items() if k.startswith(f"tests.vm.{must[:-3]}::")}
        if os.path.exists(f"{REPO}/tests/vm/{must}"):
            assert mine, f"{must}: no results from the VM\n{out}"
            skipped = {k: v for k, v in mine.items() if v != "passed"}
            assert not skipped, f"{must}: skipped inside the VM: {skipped}"
