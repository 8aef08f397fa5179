"""From the host: run every in-VM test file of tests/vm/ (all but the ``test_*_vm.py`` drivers)
inside the session's cgroup v2 VM (tests/vm/conftest.py ``vm``), so pure-v2 cgroups are tested on
every run. Skipped, with the reason, where the VM library or its assets are missing
(hack/setup.d/40-vm.sh), and inside the VM itself."""
import time

import pytest
from helpers import in_vm_pytest

pytestmark = [pytest.mark.vm, pytest.mark.slow]

# Inside the VM nothing may skip (it is the environment these tests exist for), unless the
# skip reason says so explicitly with this marker.
OPTIONAL = "(optional in the VM)"


def test_v2_suite_inside_vm(vm):
    t = time.monotonic()
    rc, out, results = in_vm_pytest(vm, "tests/vm")
    took = time.monotonic() - t
    print(f"in-VM pytest: {len(results)} tests in {took:.1f}s")
    for k, v in sorted(results.items()):
        if v != "passed":
            print(f"  {k}: {v}")
    assert results, f"no test results from the VM (rc={rc}):\n{out}"
    bad = {k: v for k, v in results.items() if v in ("failed", "error")}
    assert rc == 0 and not bad, f"cgroup v2 tests failed in the VM (rc={rc}): {bad}\n{out}"
    skipped = {k: v for k, v in results.items() if v.startswith("skipped") and OPTIONAL not in v}
    assert not skipped, (f"skipped inside the VM (a skip there must say {OPTIONAL!r}): "
                         f"{skipped}")
