"""pause/resume, update, events and the late cgroup join on a pure cgroup v2 host (runs inside
the test VM, docs/vm.md): cgroup.freeze, cpu.max/memory.swap.max merged as runc does, the OOM
event from memory.events (inotify), a 1 MiB container."""
import json
import os
import subprocess
import time
import uuid

import pytest

pytestmark = [
    pytest.mark.vm,
    pytest.mark.skipif(not os.path.exists("/sys/fs/cgroup/cgroup.controllers"),
                       reason="needs a pure cgroup v2 host: runs inside the VM (docs/vm.md)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
]


def read(path):
    with open(path) as f:
        return f.read().strip()


def wait_for(pred, timeout=20.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


@pytest.fixture
def ct(ocirun, make_bundle):
    """ct(args, resources) -> (id, cgroup dir, bundle); deleted and checked afterwards."""
    made = []

    def start(args, resources=None):
        top = f"vm-res-{uuid.uuid4().hex[:8]}"
        b = make_bundle(args)
        b.config["root"]["readonly"] = False
        b.linux["cgroupsPath"] = f"/{top}/c"
        if resources:
            b.linux.setdefault("resources", {}).update(resources)
        b.write()
        name = top
        ocirun.ok("run", "-d", "-b", b.path, name, stdin=subprocess.DEVNULL)
        made.append((name, top))
        return name, f"/sys/fs/cgroup/{top}/c", b

    yield start
    for name, top in made:
        ocirun("delete", "--force", name)
        left = os.path.exists(f"/sys/fs/cgroup/{top}/c")
        if os.path.isdir(f"/sys/fs/cgroup/{top}"):
            os.rmdir(f"/sys/fs/cgroup/{top}")
        assert not left, f"cgroup /{top}/c left behind"


def test_pause_resume_kill_delete(ocirun, ct):
    name, path, _ = ct(["sleep", "1000"])
    ocirun.ok("pause", name)
    assert ocirun.state(name)["status"] == "paused"
    assert read(f"{path}/cgroup.freeze") == "1"
    assert "frozen 1" in read(f"{path}/cgroup.events").splitlines()
    p = ocirun("pause", name)
    assert p.returncode == 1 and p.stderr == "ocirun: container not running\n"
    ocirun.ok("resume", name)
    assert "frozen 0" in read(f"{path}/cgroup.events").splitlines()
    assert ocirun.state(name)["status"] == "running"
    ocirun.ok("pause", name)
    ocirun.ok("kill", name, "KILL")                 # thawed so that the kill lands
    assert wait_for(lambda: ocirun.state(name)["status"] == "stopped")

    name, path, _ = ct(["sleep", "1000"])
    ocirun.ok("pause", name)
    ocirun.ok("delete", "--force", name)
    assert not os.path.exists(path)


def test_update_v2_files(ocirun, ct):
    name, path, _ = ct(["sleep", "1000"])
    ocirun.ok("update", "--memory", "32m", "--memory-swap", "64m", "--cpu-quota", "20000",
              "--cpu-period", "50000", "--cpu-share", "512", "--pids-limit", "9", name)
    assert read(f"{path}/memory.max") == str(32 << 20)
    if os.path.exists(f"{path}/memory.swap.max"):
        assert read(f"{path}/memory.swap.max") == str(32 << 20)     # swap - limit (runc)
    assert read(f"{path}/cpu.max") == "20000 50000"
    assert read(f"{path}/cpu.weight") == "20"
    assert read(f"{path}/pids.max") == "9"
    # a lone period keeps the saved quota; a lone limit keeps the saved memory+swap
    ocirun.ok("update", "--cpu-period", "100000", "--memory", "48m", name)
    assert read(f"{path}/cpu.max") == "20000 100000"
    assert read(f"{path}/memory.max") == str(48 << 20)
    if os.path.exists(f"{path}/memory.swap.max"):
        assert read(f"{path}/memory.swap.max") == str(16 << 20)
    ocirun.ok("update", "-r", "-", name, input=json.dumps({"pids": {"limit": -1},
                                                            "cpu": {"quota": -1}}))
    assert read(f"{path}/pids.max") == "max"
    assert read(f"{path}/cpu.max") == "max 100000"


def test_events_stats_and_oom(ocirun, ct):
    name, path, b = ct(["sh", "-c", "while [ ! -e /tmp/go ]; do usleep 20000; done; "
                        "dd if=/dev/zero of=/dev/null bs=64M count=1; sleep 1000"],
                       resources={"memory": {"limit": 16 << 20, "swap": 16 << 20}})
    ev = json.loads(ocirun.ok("events", "--stats", name).stdout)
    assert ev["type"] == "stats" and ev["id"] == name
    assert {"cpu", "memory", "pids", "blkio", "hugetlb"} <= set(ev["data"])
    assert ev["data"]["memory"]["usage"]["limit"] == 16 << 20
    p = subprocess.Popen([ocirun.binary, "--root", ocirun.root, "events", "--interval",
                          "200ms", name], stdout=subprocess.PIPE, text=True)
    try:
        # the first stats line proves the stream (and its inotify watch) is live
        assert json.loads(p.stdout.readline())["type"] == "stats"
        with open(os.path.join(b.rootfs, "tmp", "go"), "w"):
            pass
        deadline = time.monotonic() + 60
        while True:
            ev = json.loads(p.stdout.readline())
            if ev["type"] == "oom":
                break
            assert ev["type"] == "stats" and time.monotonic() < deadline, ev
        assert ev == {"type": "oom", "id": name}
    finally:
        p.kill()
        p.wait()
    assert int(dict(x.split() for x in read(f"{path}/memory.events").splitlines())
               ["oom_kill"]) >= 1


def test_late_join_1mib_container(ocirun, make_bundle):
    b = make_bundle(["/bin/true"])
    b.linux["cgroupsPath"] = f"/vm-res-{uuid.uuid4().hex[:8]}"
    b.linux.setdefault("resources", {})["memory"] = {"limit": 1 << 20, "swap": 1 << 20}
    b.write()
    p = ocirun("run", "-b", b.path, "vm-res-1m", stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr
    assert not os.path.exists("/sys/fs/cgroup" + b.linux["cgroupsPath"])
