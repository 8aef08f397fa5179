"""Shared fixtures: build bundles from the busybox test rootfs, run the real ``ocirun`` as a
user would, and fail any test that leaves a container, mount or cgroup behind."""
import copy
import json
import os
import subprocess
import sys
import tempfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from ociruntime.spec import default_spec  # noqa: E402

OCIRUN = os.environ.get("OCIRUN", os.path.join(REPO, ".venv", "bin", "ocirun"))
ROOTFS_SRC = os.path.join(REPO, "build", "rootfs", "busybox")


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


@pytest.fixture(scope="session")
def rootfs_src():
    if not os.path.exists(os.path.join(ROOTFS_SRC, "bin", "busybox")):
        pytest.fail(f"test rootfs missing: run hack/setup.sh ({ROOTFS_SRC})")
    return ROOTFS_SRC


@pytest.fixture
def make_bundle(tmp_path, rootfs_src):
    """make_bundle(args=[...], terminal=False, name="b") -> Bundle (written)."""
    n = [0]

    def make(args=("true",), terminal=False, name=None, copy_rootfs=False):
        n[0] += 1
        d = tmp_path / (name or f"bundle{n[0]}")
        d.mkdir()
        # hard links: cheap; tests must replace files in the rootfs, never write into them
        subprocess.run(["cp", "-a" if copy_rootfs else "-al", rootfs_src, str(d / "rootfs")],
                       check=True)
        b = Bundle(d, copy.deepcopy(default_spec(args=list(args), terminal=terminal)))
        return b.write()

    return make


def _mounts_under(path):
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if path in line.split()[4]]


@pytest.fixture
def ocirun(tmp_path):
    """A Runner with a private state root; checks nothing is left behind after the test."""
    need_root()
    root = str(tmp_path / "state")
    r = Runner(root)
    yield r
    left = r.ids()
    for cid in left:
        r("delete", "--force", cid)
    mounts = _mounts_under(str(tmp_path))
    for m in reversed(mounts):
        subprocess.run(["umount", "-l", m])
    assert not left, f"test left containers behind: {left}"
    assert not mounts, f"test left mounts behind: {mounts}"
