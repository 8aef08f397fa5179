"""ocirun's cgroup manager against runc itself on this host: the same cgroupsPath lands in the
same cgroups, the same device rules give the same devices.list, and ``stats()`` has the
shape of ``runc events --stats``. Skipped (with the reason) where runc is not installed."""
import json
import os
import shutil
import subprocess
import uuid

import pytest

from ociruntime.config.reader import Obj
from ociruntime.linux import cgroups
from ociruntime.linux.cgroups import fs

RUNC = shutil.which("runc")
pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(RUNC is None, reason="runc is not installed (hack/setup.sh installs it)"),
    pytest.mark.skipif(os.path.exists("/sys/fs/cgroup/cgroup.controllers"),
                       reason="written for the hybrid host"),
]


@pytest.fixture
def runc_container(tmp_path, rootfs_src):
    root = str(tmp_path / "runc-state")
    made = []

    def start(cgroups_path, resources=None):
        b = tmp_path / f"b{len(made)}"
        b.mkdir()
        subprocess.run(["cp", "-al", rootfs_src, str(b / "rootfs")], check=True)
        subprocess.run([RUNC, "spec"], cwd=b, check=True)
        with open(b / "config.json") as f:
            cfg = json.load(f)
        cfg["process"]["terminal"] = False
        cfg["process"]["args"] = ["sleep", "60"]
        cfg["linux"]["cgroupsPath"] = cgroups_path
        if resources:
            cfg["linux"]["resources"] = resources
        with open(b / "config.json", "w") as f:
            json.dump(cfg, f)
        cid = f"ocirun-test-{uuid.uuid4().hex[:8]}"
        subprocess.run([RUNC, "--root", root, "run", "-d", "-b", str(b), cid], check=True,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, timeout=60)
        made.append(cid)
        st = json.loads(subprocess.run([RUNC, "--root", root, "state", cid], check=True,
                                       capture_output=True, text=True).stdout)
        return cid, st["pid"], root

    yield start
    for cid in made:
        subprocess.run([RUNC, "--root", root, "delete", "-f", cid], capture_output=True)


def _runc_cgroups(pid):
    return fs.own_cgroups(pid)


@pytest.mark.parametrize("kind", ["absolute", "relative"])
def test_same_cgroups_as_runc(runc_container, kind):
    name = f"ocirun-test-{uuid.uuid4().hex[:8]}"
    path = f"/{name}" if kind == "absolute" else name
    cid, pid, _ = runc_container(path)
    theirs = _runc_cgroups(pid)
    m = cgroups.manager_for(path, cid)
    for key, d in m.paths.items():
        mnt = "/sys/fs/cgroup/unified" if key == "" else \
            "/sys/fs/cgroup/" + ("systemd" if key == "name=systemd" else key)
        assert d == mnt + theirs[key], (key, d, theirs[key])
    # and runc joined exactly the hierarchies we create
    assert set(theirs) == set(m.paths)


def test_stats_shape_like_runc_events(runc_container):
    name = f"/ocirun-test-{uuid.uuid4().hex[:8]}"
    cid, pid, root = runc_container(name, {"memory": {"limit": 64 << 20},
                                           "pids": {"limit": 20}})
    out = subprocess.run([RUNC, "--root", root, "events", "--stats", cid], check=True,
                         capture_output=True, text=True, timeout=30).stdout
    theirs = json.loads(out)["data"]
    mine = cgroups.manager_for(name, cid).stats()

    def shape(x):
        if isinstance(x, dict):
            return {k: shape(v) for k, v in x.items() if k != "raw"}
        if isinstance(x, list):
            return [shape(x[0])] if x else []
        return type(x).__name__ if x is not None else None
    # runc omits zero counters (omitempty); so do we: compare the keys both have and require
    # the top-level and memory entry keys to be the same
    assert set(mine) == set(theirs)
    assert set(mine["memory"]) == set(theirs["memory"])
    assert set(mine["memory"]["usage"]) == set(theirs["memory"]["usage"])
    assert mine["memory"]["usage"]["limit"] == theirs["memory"]["usage"]["limit"] == 64 << 20
    assert mine["pids"] == theirs["pids"] == {"current": 1, "limit": 20}
    assert shape(mine["cpuset"]) == shape(theirs["cpuset"]) and mine["cpuset"] == theirs["cpuset"]
    assert set(mine["cpu"]["usage"]) <= set(theirs["cpu"]["usage"]) | {"total"}
    assert set(mine["memory"]["raw"]) == set(theirs["memory"]["raw"])


def test_device_list_like_runc(runc_container):
    devs = [{"allow": False, "access": "rwm"},
            {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "r"},
            {"allow": True, "type": "b", "major": 7, "access": "rw"}]
    name = f"/ocirun-test-{uuid.uuid4().hex[:8]}"
    cid, pid, _ = runc_container(name, {"devices": devs})
    theirs = fs.read(f"/sys/fs/cgroup/devices{name}/devices.list").split("\n")
    mine_name = f"/ocirun-test-{uuid.uuid4().hex[:8]}"
    m = cgroups.manager_for(mine_name, "x")
    m.create()
    try:
        m.apply(cgroups.parse_resources(Obj({"devices": devs}, "linux.resources")))
        mine = fs.read(m.paths["devices"] + "/devices.list").split("\n")
    finally:
        m.destroy()
    assert sorted(mine) == sorted(theirs)
