"""Helpers shared by the test modules and tests/conftest.py: import them from here
(``from helpers import OCIRUN``), never ``from conftest import …`` — with more than one
conftest.py (tests/vm/ has its own) the module named ``conftest`` is whichever pytest loaded
last."""
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

OCIRUN = os.environ.get("OCIRUN", os.path.join(REPO, ".venv", "bin", "ocirun"))
# OCIRUN_TEST_ROOTFS: another copy (the VM copies it to its tmpfs: cp -al needs one filesystem)
ROOTFS_SRC = os.environ.get("OCIRUN_TEST_ROOTFS",
                            os.path.join(REPO, "build", "rootfs", "busybox"))


def need_root():
    if os.geteuid() != 0:
        pytest.skip("needs root")


class Bundle:
    """A bundle directory: ``config`` is the dict written to config.json by ``write()``."""

    def __init__(self, path, config):
        self.path = str(path)
        self.config = config
        self.rootfs = os.path.join(self.path, "rootfs")

    def write(self):
        with open(os.path.join(self.path, "config.json"), "w") as f:
            json.dump(self.config, f, indent=1)
        return self

    @property
    def process(self):
        return self.config["process"]

    @property
    def linux(self):
        return self.config["linux"]


class Runner:
    """Runs ``ocirun --root ROOT ...`` and remembers the ids it created, for cleanup."""

    def __init__(self, root, binary=OCIRUN):
        self.root = root
        self.binary = binary

    def __call__(self, *args, check=False, input=None, timeout=60, env=None, glob=(), **kw):
        cmd = [self.binary, "--root", self.root, *glob, *map(str, args)]
        # files, not pipes: a detached container keeps its inherited stdio open
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            p = subprocess.run(cmd, input=input, stdout=out, stderr=err, text=True,
                               timeout=timeout, env=env, **kw)
            out.seek(0)
            err.seek(0)
            p.stdout = out.read().decode(errors="replace")
            p.stderr = err.read().decode(errors="replace")
        if check and p.returncode != 0:
            raise AssertionError(f"{cmd} -> {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}")
        return p

    def ok(self, *args, **kw):
        return self(*args, check=True, **kw)

    def state(self, cid):
        return json.loads(self.ok("state", cid).stdout)

    def ids(self):
        p = self("list", "-q")
        return p.stdout.split() if p.returncode == 0 else []


# --- VMs (hack/vm/vm.py, docs/vm.md; fixtures in tests/vm/conftest.py) ---
VM_LIB = os.environ.get("OCIRUN_VM_LIB", os.path.join(REPO, "hack", "vm"))
PURE_V2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")


def vmlib():
    """The hack/vm/vm.py module, or skip with the reason."""
    if PURE_V2:
        pytest.skip("already on a pure cgroup v2 host (inside the VM?): "
                    "the in-VM tests run directly")
    if not os.path.exists(os.path.join(VM_LIB, "vm.py")):
        pytest.skip(f"no VM library at {VM_LIB}/vm.py")
    if VM_LIB not in sys.path:
        sys.path.insert(0, VM_LIB)
    import vm as lib
    why = lib.assets_missing()
    if why:
        pytest.skip(why)
    return lib


def in_vm_pytest(v, *args, timeout=900):
    """Run pytest inside the VM -> (rc, output, {nodeid: outcome}) where outcome is
    passed / failed / error / skipped: <reason>."""
    xml = f"/tmp/ocirun-vm-junit-{time.monotonic_ns()}.xml"
    rc, out, err = v.run(
        f"OCIRUN_TEST_ROOTFS=/tmp/ocirun-rootfs {REPO}/.venv/bin/python -m pytest -q "
        f"-p no:cacheprovider -rs --junitxml={xml} " + " ".join(args) + f"; rc=$?; cat {xml} >&2;"
        f" rm -f {xml}; exit $rc", cwd=REPO, timeout=timeout)
    results = {}
    start = err.find("<?xml")
    if start >= 0:
        root = ET.fromstring(err[start:])
        for tc in root.iter("testcase"):
            nodeid = f"{tc.get('classname')}::{tc.get('name')}"
            outcome = "passed"
            for child in tc:
                if child.tag in ("failure", "error"):
                    outcome = "failed" if child.tag == "failure" else "error"
                elif child.tag == "skipped":
                    outcome = f"skipped: {child.get('message')}"
            results[nodeid] = outcome
        err = err[:start]
    return rc, out + err, results
