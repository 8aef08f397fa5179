"""Shared fixtures: build bundles from the busybox test rootfs, run the real ``ocirun`` as a
user would, and fail any test that leaves a container, mount or cgroup behind."""
import copy
import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from helpers import OCIRUN, REPO, ROOTFS_SRC, Bundle, Runner, need_root  # noqa: E402,F401

sys.path.insert(0, REPO)
from ociruntime.spec import default_spec  # noqa: E402


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


@pytest.fixture(scope="session", autouse=True)
def _remove_empty_parent_cgroups():
    """Containers without cgroupsPath live under /ocirun/<id> (runc keeps such parents too);
    a few tests use /ocirun-test/<name>. At the end of the session remove those parents from
    every hierarchy when they are empty (rmdir fails on a cgroup that still has children,
    so a real container's parent is never touched)."""
    yield
    if os.geteuid() != 0:
        return
    import glob
    for d in glob.glob("/sys/fs/cgroup/*/ocirun") + glob.glob("/sys/fs/cgroup/*/ocirun-test") + \
            glob.glob("/sys/fs/cgroup/ocirun") + glob.glob("/sys/fs/cgroup/ocirun-test"):
        try:
            os.rmdir(d)
        except OSError:
            pass
