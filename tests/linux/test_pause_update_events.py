"""pause/resume, update, events and delete's cgroup cleanup with real containers on this
(hybrid cgroup v1) host: the freezer is observed in freezer.state and in a counter the
container stops advancing; update is read back from the cgroup files; the OOM event comes
from ``ocirun events`` while a process inside allocates past its limit."""
import json
import os
import signal
import subprocess
import time
import uuid

import pytest

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(os.path.exists("/sys/fs/cgroup/cgroup.controllers"),
                       reason="pure cgroup v2 host: see tests/vm/"),
    pytest.mark.skipif(not os.path.isdir("/sys/fs/cgroup/freezer"),
                       reason="no cgroup v1 freezer hierarchy"),
]

CG = "/sys/fs/cgroup"


def cid():
    return f"resources-{uuid.uuid4().hex[:10]}"


def cg(ctrl, name, f=""):
    return f"{CG}/{ctrl}/ocirun/{name}" + (f"/{f}" if f else "")


def read(path):
    with open(path) as f:
        return f.read().strip()


def leftovers(name):
    return [p for p in (f"{CG}/{d}/ocirun/{name}" for d in os.listdir(CG)) if os.path.lexists(p)]


def wait_for(pred, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.02)
    return pred()


def saved_state(ocirun, name):
    with open(os.path.join(ocirun.root, name, "state.json")) as f:
        return json.load(f)


@pytest.fixture
def started(ocirun, make_bundle):
    """started(args, resources=None) -> (id, bundle); deleted (and checked) afterwards."""
    made = []

    def start(args, resources=None, **kw):
        b = make_bundle(args=args)
        b.config["root"]["readonly"] = False     # the tick counter is a file in /tmp
        if resources is not None:
            b.linux["resources"] = resources
        b.write()
        name = cid()
        ocirun.ok("run", "-d", "-b", b.path, name, stdin=subprocess.DEVNULL, **kw)
        made.append(name)
        return name, b

    yield start
    for name in made:
        if os.path.exists(cg("freezer", name)) and read(cg("freezer", name, "freezer.state")) \
                != "THAWED":
            with open(cg("freezer", name, "freezer.state"), "w") as f:
                f.write("THAWED")
        ocirun("delete", "--force", name)
        assert not leftovers(name), f"cgroups left behind: {leftovers(name)}"


TICK = ["sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /tmp/n; usleep 20000; done"]


def counter(b):
    try:
        return int(read(os.path.join(b.rootfs, "tmp", "n")) or 0)
    except (OSError, ValueError):
        return 0


# ------------------------------------------------------------------------------ pause / resume

def test_pause_freezes_and_resume_thaws(ocirun, started):
    name, b = started(TICK)
    assert wait_for(lambda: counter(b) > 2)
    ocirun.ok("pause", name)
    assert ocirun.state(name)["status"] == "paused"
    assert read(cg("freezer", name, "freezer.state")) == "FROZEN"
    assert [s["status"] for s in json.loads(ocirun.ok("list", "--format", "json").stdout)] == \
        ["paused"]
    n = counter(b)
    time.sleep(0.3)
    assert counter(b) == n, "a paused container kept running"
    # runc's wording for the wrong state
    p = ocirun("pause", name)
    assert p.returncode == 1 and p.stderr == "ocirun: container not running\n"
    p = ocirun("delete", name)
    assert p.returncode == 1 and p.stderr == \
        f"ocirun: cannot delete container {name} that is not stopped: paused\n"
    ocirun.ok("resume", name)
    assert ocirun.state(name)["status"] == "running"
    assert read(cg("freezer", name, "freezer.state")) == "THAWED"
    assert wait_for(lambda: counter(b) > n + 2)
    p = ocirun("resume", name)
    assert p.returncode == 1 and p.stderr == "ocirun: container not paused\n"


def test_pause_created_container_and_stopped_errors(ocirun, make_bundle):
    b = make_bundle(args=["true"])
    name = cid()
    ocirun.ok("create", "-b", b.path, name)
    try:
        ocirun.ok("pause", name)
        assert ocirun.state(name)["status"] == "paused"
        ocirun.ok("resume", name)
        assert ocirun.state(name)["status"] == "created"
        ocirun.ok("start", name)
        assert wait_for(lambda: ocirun.state(name)["status"] == "stopped")
        for cmd, msg in (("pause", "container not running"),
                         ("resume", "container not paused"),
                         ("update", "container not running")):
            extra = ["--pids-limit", "10"] if cmd == "update" else []
            p = ocirun(cmd, *extra, name)
            assert p.returncode == 1 and p.stderr == f"ocirun: {msg}\n", (cmd, p.stderr)
        p = ocirun("events", "--stats", name)
        assert p.returncode == 1 and \
            p.stderr == f"ocirun: container with id {name} is not running\n"
    finally:
        ocirun("delete", "--force", name)
    assert not leftovers(name)
    p = ocirun("pause", "resources-missing")
    assert p.returncode == 1 and p.stderr == "ocirun: container does not exist\n"


def test_kill_paused_container(ocirun, started):
    # SIGTERM is queued while frozen and acts on resume; SIGKILL thaws (runc)
    name, b = started(["sh", "-c", "trap 'exit 3' TERM; while :; do usleep 20000; done"])
    ocirun.ok("pause", name)
    ocirun.ok("kill", name, "TERM")
    time.sleep(0.3)
    assert ocirun.state(name)["status"] == "paused"
    ocirun.ok("resume", name)
    assert wait_for(lambda: ocirun.state(name)["status"] == "stopped")

    name, b = started(["sleep", "1000"])
    pid = ocirun.state(name)["pid"]
    ocirun.ok("pause", name)
    assert "State:\tD" in read(f"/proc/{pid}/status") or \
        read(cg("freezer", name, "freezer.state")) == "FROZEN"
    ocirun.ok("kill", name, "KILL")
    assert wait_for(lambda: ocirun.state(name)["status"] == "stopped")
    assert read(cg("freezer", name, "freezer.state")) == "THAWED"


def test_delete_force_paused(ocirun, started):
    name, b = started(["sleep", "1000"])
    pid = ocirun.state(name)["pid"]
    ocirun.ok("pause", name)
    ocirun.ok("delete", "--force", name)
    assert not os.path.exists(f"/proc/{pid}") or "State:\tZ" in read(f"/proc/{pid}/status")
    assert not leftovers(name)
    assert ocirun.ids() == []


# ------------------------------------------------------------------------------ update

def test_update_flags_read_back(ocirun, started):
    name, b = started(["sleep", "1000"], resources={"memory": {"limit": 64 << 20},
                                                   "pids": {"limit": 100}})
    ocirun.ok("update", "--memory", "32m", "--memory-reservation", "16M",
              "--memory-swap", "48MiB", "--cpu-share", "512", "--cpu-quota", "20000",
              "--cpu-period", "50000", "--pids-limit", "30", "--cpuset-cpus", "0",
              "--cpuset-mems", "0", name)
    assert read(cg("memory", name, "memory.limit_in_bytes")) == str(32 << 20)
    assert read(cg("memory", name, "memory.soft_limit_in_bytes")) == str(16 << 20)
    assert read(cg("memory", name, "memory.memsw.limit_in_bytes")) == str(48 << 20)
    assert read(cg("cpu", name, "cpu.shares")) == "512"
    assert read(cg("cpu", name, "cpu.cfs_quota_us")) == "20000"
    assert read(cg("cpu", name, "cpu.cfs_period_us")) == "50000"
    assert read(cg("pids", name, "pids.max")) == "30"
    assert read(cg("cpuset", name, "cpuset.cpus")) == "0"
    r = saved_state(ocirun, name)["resources"]
    assert r["memory"] == {"limit": 32 << 20, "reservation": 16 << 20, "swap": 48 << 20}
    assert r["cpu"] == {"shares": 512, "quota": 20000, "period": 50000, "cpus": "0",
                        "mems": "0"}
    assert r["pids"] == {"limit": 30}
    # the period alone keeps the saved quota; -1 lifts limits; 0/absent leave them alone
    ocirun.ok("update", "--cpu-period", "100000", "--pids-limit", "-1", name)
    assert read(cg("cpu", name, "cpu.cfs_quota_us")) == "20000"
    assert read(cg("cpu", name, "cpu.cfs_period_us")) == "100000"
    assert read(cg("pids", name, "pids.max")) == "max"
    assert read(cg("memory", name, "memory.limit_in_bytes")) == str(32 << 20)
    p = ocirun("update", "--kernel-memory", "10m", "--cpu-idle", "1", name)
    assert p.returncode == 0, p.stderr
    assert "Kernel memory settings are ignored and will be removed" in p.stderr
    assert read(cg("cpu", name, "cpu.idle")) == "1"


def test_update_resources_file_and_stdin(ocirun, started, tmp_path):
    name, b = started(["sleep", "1000"])
    f = tmp_path / "r.json"
    f.write_text(json.dumps({"memory": {"limit": 40 << 20, "swap": 40 << 20},
                             "cpu": {"shares": 0, "quota": 0}, "pids": {"limit": 12}}))
    ocirun.ok("update", "-r", str(f), "--pids-limit", "99", name)   # flags ignored with -r
    assert read(cg("memory", name, "memory.limit_in_bytes")) == str(40 << 20)
    assert read(cg("pids", name, "pids.max")) == "12"
    assert read(cg("cpu", name, "cpu.shares")) == "1024"    # 0 = unchanged
    ocirun.ok("update", "--resources", "-", name,
              input=json.dumps({"pids": {"limit": 7}, "memory": {"limit": 0}}))
    assert read(cg("pids", name, "pids.max")) == "7"
    assert read(cg("memory", name, "memory.limit_in_bytes")) == str(40 << 20)
    assert saved_state(ocirun, name)["resources"]["pids"] == {"limit": 7}


def test_update_errors(ocirun, started, tmp_path):
    name, b = started(["sleep", "1000"])
    for args, msg in (
            (["--memory", "lots"], "invalid value for memory: invalid size: 'lots'"),
            (["--cpu-quota", "x"],
             'invalid value for cpu-quota: strconv.ParseInt: parsing "x": invalid syntax'),
            (["--cpu-share", "-5"],
             'invalid value for cpu-share: strconv.ParseUint: parsing "-5": invalid syntax'),
            (["--l3-cache-schema", "L3:0=f"], "Intel RDT/CAT: l3 cache schema is not enabled"),
            (["--mem-bw-schema", "MB:0=70"],
             "Intel RDT/MBA: memory bandwidth schema is not enabled"),
            (["-r", str(tmp_path / "none.json")],
             f"open {tmp_path}/none.json: no such file or directory")):
        if "schema" in args[0] and os.path.isdir("/sys/fs/resctrl/info"):
            continue
        p = ocirun("update", *args, name)
        assert p.returncode == 1 and p.stderr == f"ocirun: {msg}\n", (args, p.stderr)
    p = ocirun("update", "-r", "-", name, input='{"memory": {"limit": "big"}}')
    assert p.returncode == 1 and p.stderr == \
        "ocirun: resources.memory.limit: must be an integer\n"
    assert ocirun.state(name)["status"] == "running"


# ------------------------------------------------------------------------------ events

def test_events_stats(ocirun, started):
    name, b = started(["sleep", "1000"], resources={"pids": {"limit": 50}})
    p = ocirun.ok("events", "--stats", name)
    lines = p.stdout.splitlines()
    assert len(lines) == 1
    ev = json.loads(lines[0])
    assert ev["type"] == "stats" and ev["id"] == name
    d = ev["data"]
    assert {"cpu", "memory", "pids", "blkio", "hugetlb"} <= set(d)
    assert d["pids"] == {"current": 1, "limit": 50}
    assert d["memory"]["usage"]["usage"] > 0
    assert d["cpu"]["usage"]["total"] > 0


def test_events_interval_stream_ends_with_the_container(ocirun, started):
    name, b = started(["sleep", "1000"])
    p = subprocess.Popen([ocirun.binary, "--root", ocirun.root, "events", "--interval",
                          "100ms", name], stdout=subprocess.PIPE, text=True)
    try:
        first = [json.loads(p.stdout.readline()) for _ in range(3)]
        assert all(e["type"] == "stats" and e["id"] == name for e in first)
        ocirun.ok("kill", name, "KILL")
        assert p.wait(10) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    p = ocirun("events", "--interval", "0s", name)
    assert p.returncode == 1 and "duration interval must be greater than 0" in p.stderr


def test_events_oom(ocirun, started):
    go = "/tmp/go"
    name, b = started(["sh", "-c", f"while [ ! -e {go} ]; do usleep 20000; done; "
                       "dd if=/dev/zero of=/dev/null bs=64M count=1; sleep 1000"],
                      resources={"memory": {"limit": 16 << 20, "swap": 16 << 20}})
    p = subprocess.Popen([ocirun.binary, "--root", ocirun.root, "events", "--interval",
                          "200ms", name], stdout=subprocess.PIPE, text=True)
    try:
        # the first stats line proves the stream (and its eventfd) is live, however slowly
        # the process started; only then is the OOM triggered
        assert json.loads(p.stdout.readline())["type"] == "stats"
        with open(os.path.join(b.rootfs, "tmp", "go"), "w"):
            pass
        deadline = time.monotonic() + 30
        while True:
            ev = json.loads(p.stdout.readline())
            if ev["type"] == "oom":
                break
            assert ev["type"] == "stats" and time.monotonic() < deadline, ev
        assert ev == {"type": "oom", "id": name}
    finally:
        p.kill()
        p.wait()
    assert int(dict(x.split() for x in open(cg("memory", name, "memory.oom_control")))
               ["oom_kill"]) >= 1
    assert ocirun.state(name)["status"] == "running"   # dd died, not the init


# ------------------------------------------------------------------------------ delete / create

def test_delete_removes_subtree(ocirun, started):
    name, b = started(["sleep", "1000"])
    for ctrl in ("memory", "pids", "freezer", "cpu"):
        os.makedirs(cg(ctrl, name, "inner/deeper"))
    ocirun.ok("delete", "--force", name)
    assert not leftovers(name)


def test_delete_busy_cgroup_is_an_error(ocirun, started):
    # a process frozen in a v1 sub-cgroup cannot die: the cgroup cannot be removed
    name, b = started(["sh", "-c", "sleep 1000 & sleep 1000"])
    assert wait_for(lambda: len(open(cg("pids", name, "cgroup.procs")).read().split()) == 2)
    init = ocirun.state(name)["pid"]
    held = [int(x) for x in read(cg("pids", name, "cgroup.procs")).split() if int(x) != init][0]
    sub = cg("freezer", name, "held")
    os.mkdir(sub)
    with open(sub + "/cgroup.procs", "w") as f:
        f.write(str(held))
    with open(sub + "/freezer.state", "w") as f:
        f.write("FROZEN")
    try:
        assert wait_for(lambda: read(sub + "/freezer.state") == "FROZEN")
        p = ocirun("delete", "--force", name)
        assert p.returncode == 1
        assert p.stderr.startswith("ocirun: Failed to remove paths: map[") and \
            f"freezer:{CG}/freezer/ocirun/{name}" in p.stderr, p.stderr
        assert ocirun.ids() == [name]          # kept, so that delete can be retried
    finally:
        with open(sub + "/freezer.state", "w") as f:
            f.write("THAWED")
    assert wait_for(lambda: not os.path.exists(f"/proc/{held}"))
    ocirun.ok("delete", name)
    assert not leftovers(name) and ocirun.ids() == []


@pytest.mark.parametrize("how", ["hook-leaves-process", "bad-executable"])
def test_create_failure_leaves_no_cgroup(ocirun, make_bundle, how):
    b = make_bundle(args=["sleep", "1000"])
    if how == "hook-leaves-process":
        # host pid namespace: a process a failing startContainer hook leaves in the cgroup
        # survives the init; create must kill it to remove the cgroup
        b.linux["namespaces"] = [n for n in b.linux["namespaces"] if n["type"] != "pid"]
        b.config["hooks"] = {"startContainer": [{
            "path": "/bin/sh", "args": ["sh", "-c", "sleep 1000 >/dev/null 2>&1 & exit 1"]}]}
    else:
        b.process["args"] = ["/no/such/program"]
    b.write()
    name = cid()
    p = ocirun("create", "-b", b.path, name, stdin=subprocess.DEVNULL)
    try:
        assert p.returncode == 1, p.stderr
        assert not leftovers(name), f"cgroups left: {leftovers(name)}"
        assert ocirun.ids() == []
    finally:
        for d in leftovers(name):
            for pid in (read(d + "/cgroup.procs").split() if os.path.exists(
                    d + "/cgroup.procs") else []):
                os.kill(int(pid), signal.SIGKILL)
        for d in leftovers(name):
            wait_for(lambda: not read(d + "/cgroup.procs"), 5)
            os.rmdir(d)
