"""Real cgroups on this host (hybrid: v1 controllers + cgroup2 at /sys/fs/cgroup/unified).
Every test cgroup is named ocirun-test-*; the fixtures kill what they started and assert
that no directory is left behind, even when the test fails."""
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from ociruntime.config.reader import Obj
from ociruntime.errors import ConfigError, OciError, Unsupported
from ociruntime.linux import cgroups
from ociruntime.linux.cgroups import fs
from ociruntime.linux.cgroups.v1 import V1Manager
from ociruntime.linux.cgroups.v2 import V2Manager

UNIFIED = "/sys/fs/cgroup/unified"

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(os.path.exists("/sys/fs/cgroup/cgroup.controllers"),
                       reason="pure cgroup v2 host: see tests/vm/test_cgroups_v2.py"),
    pytest.mark.skipif(not os.path.isdir("/sys/fs/cgroup/memory"),
                       reason="no cgroup v1 memory hierarchy"),
]


def res(d):
    return cgroups.parse_resources(Obj(d, "linux.resources"))


def _reap(m, procs):
    for p in procs:
        if p.poll() is None:
            p.kill()
    try:
        if m.exists() and m.is_frozen():
            m.thaw()
        for pid in m.pids():
            os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
    for p in procs:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            pass


def _leftovers(name):
    out = []
    for d in os.listdir("/sys/fs/cgroup"):
        p = f"/sys/fs/cgroup/{d}/{name}"
        if os.path.lexists(p):
            out.append(p)
    return out


class Env:
    """A manager for /ocirun-test-<uid>/c plus the processes a test started in it."""

    def __init__(self, m, top):
        self.m = m
        self.top = top
        self.procs = []

    def spawn(self, args, **kw):
        """Start ``args`` already inside the cgroup (joined before exec, so everything the
        program allocates is charged there)."""
        m = self.m
        p = subprocess.Popen(args, preexec_fn=lambda: m.add(os.getpid()), **kw)
        self.procs.append(p)
        return p

    def sleep(self, n=1):
        return [self.spawn(["sleep", "100"]) for _ in range(n)]


@pytest.fixture
def env():
    top = f"ocirun-test-{uuid.uuid4().hex[:10]}"
    m = cgroups.manager_for(f"/{top}/c", "c")
    assert isinstance(m, V1Manager) and m.mode == "hybrid"
    m.create()
    e = Env(m, top)
    try:
        yield e
    finally:
        _reap(m, e.procs)
        try:
            m.destroy()
        finally:
            for d in {os.path.dirname(p) for p in m.paths.values()}:
                try:
                    os.rmdir(d)
                except FileNotFoundError:
                    pass
        left = _leftovers(top)
        assert not left, f"cgroups left behind: {left}"


def wait_for(cond, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


# --------------------------------------------------------------------- paths and state

def test_create_in_every_hierarchy_and_unified(env):
    m = env.m
    mounted = {d for d in os.listdir("/sys/fs/cgroup")}
    for key, p in m.paths.items():
        assert os.path.isdir(p), p
        assert p.endswith(f"/{env.top}/c")
    # every v1 hierarchy of this host and the unified one, like runc
    assert set(m.paths) >= {"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer",
                            "blkio", "pids", "name=systemd", ""}
    assert {p.split("/")[4] for p in m.paths.values()} <= mounted
    assert m.paths[""] == f"{UNIFIED}/{env.top}/c"
    # a new cpuset level can take tasks: cpus/mems were copied from the parent
    assert fs.read(m.paths["cpuset"] + "/cpuset.cpus").strip()
    assert fs.read(m.paths["cpuset"] + "/cpuset.mems").strip()


def test_state_roundtrip_and_add(env):
    m2 = cgroups.from_state(env.m.to_state())
    assert m2.paths == env.m.paths and m2.mode == "hybrid"
    (p,) = env.sleep()
    mine = fs.own_cgroups(p.pid)
    for key, path in env.m.paths.items():
        want = "/" + path.split("/", 5)[5]
        assert mine[key] == want, (key, mine)
    assert m2.pids() == [p.pid]


def test_relative_path_is_under_own_cgroup():
    own = fs.own_cgroups()
    m = cgroups.manager_for("ocirun-test-rel/x", "x")
    assert m.paths["memory"] == os.path.normpath(
        "/sys/fs/cgroup/memory" + own["memory"] + "/ocirun-test-rel/x")
    assert m.paths[""] == os.path.normpath(UNIFIED + own[""] + "/ocirun-test-rel/x")
    d = cgroups.manager_for(None, "abc")
    assert d.paths["pids"] == "/sys/fs/cgroup/pids/ocirun/abc"


def test_systemd_driver_unsupported():
    with pytest.raises(Unsupported, match="systemd cgroup driver is not supported"):
        cgroups.manager_for("system.slice:ocirun:x", "x", systemd=True)


def test_create_is_cheap():
    top = f"ocirun-test-{uuid.uuid4().hex[:10]}"
    m = cgroups.manager_for(f"/{top}", "x")
    try:
        t = time.perf_counter()
        m.create()
        m.apply(None)
        dt = time.perf_counter() - t
        t = time.perf_counter()
        cgroups.from_state(m.to_state())
        dt2 = time.perf_counter() - t
    finally:
        m.destroy()
    assert not _leftovers(top)
    # ~1 ms here; generous bound for a loaded machine
    assert dt < 0.05, dt
    assert dt2 < 0.005, dt2


# --------------------------------------------------------------------- resources

def test_memory_limits(env):
    m = env.m
    p = m.paths["memory"]
    m.apply(res({"memory": {"limit": 64 << 20, "reservation": 32 << 20, "swap": 128 << 20,
                            "kernelTCP": 16 << 20, "swappiness": 10,
                            "disableOOMKiller": True, "useHierarchy": True}}))
    assert fs.read_int(p + "/memory.limit_in_bytes") == 64 << 20
    assert fs.read_int(p + "/memory.soft_limit_in_bytes") == 32 << 20
    assert fs.read_int(p + "/memory.memsw.limit_in_bytes") == 128 << 20
    assert fs.read_int(p + "/memory.kmem.tcp.limit_in_bytes") == 16 << 20
    assert fs.read_int(p + "/memory.swappiness") == 10
    assert fs.read_kv(p + "/memory.oom_control")["oom_kill_disable"] == 1
    # lowering both: memory first, then memsw (the order matters to the kernel)
    m.update(res({"memory": {"limit": 16 << 20, "swap": 16 << 20}}))
    assert fs.read_int(p + "/memory.limit_in_bytes") == 16 << 20
    assert fs.read_int(p + "/memory.memsw.limit_in_bytes") == 16 << 20
    # raising both: memsw first
    m.update(res({"memory": {"limit": 256 << 20, "swap": 512 << 20}}))
    assert fs.read_int(p + "/memory.memsw.limit_in_bytes") == 512 << 20
    # unlimited
    m.update(res({"memory": {"limit": -1}}))
    assert fs.read_int(p + "/memory.limit_in_bytes") > 1 << 60
    assert fs.read_int(p + "/memory.memsw.limit_in_bytes") > 1 << 60


def test_memory_use_hierarchy_false_is_refused(env):
    with pytest.raises(ConfigError, match=r"memory\.useHierarchy"):
        env.m.apply(res({"memory": {"useHierarchy": False}}))


def test_memory_check_before_update(env):
    m = env.m
    p = env.spawn([sys.executable, "-c", "import sys,time; b=bytearray(24<<20); "
                   "b[::4096]=b'x'*len(b[::4096]); print('ok', flush=True); time.sleep(100)"],
                  stdout=subprocess.PIPE)
    assert p.stdout.readline().strip() == b"ok"
    with pytest.raises(OciError, match=r"rejecting memory limit 4194304 below current usage"):
        m.update(res({"memory": {"limit": 4 << 20, "checkBeforeUpdate": True}}))
    assert p.poll() is None


def test_oom_kill_counts_and_notifies(env):
    m = env.m
    m.apply(res({"memory": {"limit": 32 << 20}}))
    assert m.oom_count() == 0
    with m.oom_watcher() as w:
        p = env.spawn([sys.executable, "-c", "b=bytearray(200<<20); b[::4096]=b'x'*len(b[::4096])"])
        assert p.wait(60) == -signal.SIGKILL
        assert w.wait(10) >= 1
    assert m.oom_count() >= 1
    st = m.stats()
    assert st["memory"]["usage"]["failcnt"] > 0
    assert st["memory"]["usage"]["limit"] == 32 << 20


def test_cpu(env):
    m = env.m
    c, s = m.paths["cpu"], m.paths["cpuset"]
    m.apply(res({"cpu": {"shares": 512, "quota": 50000, "period": 100000, "burst": 1000,
                         "realtimePeriod": 500000, "cpus": "0", "mems": "0", "idle": 0}}))
    assert fs.read_int(c + "/cpu.shares") == 512
    assert fs.read_int(c + "/cpu.cfs_quota_us") == 50000
    assert fs.read_int(c + "/cpu.cfs_period_us") == 100000
    assert fs.read_int(c + "/cpu.cfs_burst_us") == 1000
    assert fs.read_int(c + "/cpu.rt_period_us") == 500000
    assert fs.read(s + "/cpuset.cpus").strip() == "0"
    assert fs.read(s + "/cpuset.mems").strip() == "0"
    m.update(res({"cpu": {"idle": 1, "quota": -1}}))
    assert fs.read_int(c + "/cpu.idle") == 1
    assert fs.read_int(c + "/cpu.cfs_quota_us") == -1
    # a smaller period than the quota allows: the quota is written first
    m.update(res({"cpu": {"quota": 20000, "period": 10000}}))
    assert fs.read_int(c + "/cpu.cfs_quota_us") == 20000
    assert fs.read_int(c + "/cpu.cfs_period_us") == 10000
    with pytest.raises(OciError, match=r'failed to write "1000000" to ".*/cpu.shares": '
                                       r'invalid argument'):
        m.update(res({"cpu": {"shares": 10 ** 6}}))
    with pytest.raises(OciError, match=r'failed to write "99" to ".*cpuset.cpus"'):
        m.update(res({"cpu": {"cpus": "99"}}))


def test_cpu_quota_throttles(env):
    m = env.m
    m.apply(res({"cpu": {"quota": 10000, "period": 100000}}))
    # burn 0.15 s of CPU time: at 10 ms per 100 ms period that takes >= 15 periods
    t0 = time.monotonic()
    p = env.spawn([sys.executable, "-c",
                   "import time\nwhile time.process_time() < 0.15: pass"])
    p.wait(60)
    wall = time.monotonic() - t0
    st = m.stats()
    assert st["cpu"]["throttling"]["throttledPeriods"] > 0
    assert st["cpu"]["usage"]["total"] >= 0.15e9
    assert wall > 1.0, wall


def test_pids_limit_stops_fork_loop(env):
    m = env.m
    m.apply(res({"pids": {"limit": 5}}))
    assert fs.read_int(m.paths["pids"] + "/pids.max") == 5
    p = env.spawn(["sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do sleep 100 & done; wait"],
                  stderr=subprocess.PIPE)
    assert wait_for(lambda: fs.read_int(m.paths["pids"] + "/pids.current") == 5)
    time.sleep(0.2)
    assert fs.read_int(m.paths["pids"] + "/pids.current") == 5
    assert fs.read_kv(m.paths["pids"] + "/pids.events")["max"] > 0
    assert m.stats()["pids"] == {"current": 5, "limit": 5}
    m.kill_all(signal.SIGKILL)
    p.wait(10)
    m.update(res({"pids": {"limit": -1}}))
    assert fs.read(m.paths["pids"] + "/pids.max").strip() == "max"


def test_blkio(env):
    m = env.m
    b = m.paths["blkio"]
    dev = os.stat("/").st_dev
    ma, mi = os.major(dev), os.minor(dev)
    m.apply(res({"blockIO": {
        "throttleReadBpsDevice": [{"major": ma, "minor": mi, "rate": 1 << 20}],
        "throttleWriteIOPSDevice": [{"major": ma, "minor": mi, "rate": 100}]}}))
    assert fs.read(b + "/blkio.throttle.read_bps_device").strip() == f"{ma}:{mi} {1 << 20}"
    assert fs.read(b + "/blkio.throttle.write_iops_device").strip() == f"{ma}:{mi} 100"
    m.update(res({"blockIO": {"leafWeight": 300}}))
    if not os.path.exists(b + "/blkio.leaf_weight"):
        assert any("leafWeight is ignored" in x for x in m.warnings)


def test_blkio_weight(env):
    m = env.m
    b = m.paths["blkio"]
    wfile = next((b + "/" + n for n in ("blkio.weight", "blkio.bfq.weight")
                  if os.path.exists(b + "/" + n)), None)
    if wfile is None:
        # no CFQ/BFQ on this kernel: refused with a clear error naming the field
        with pytest.raises(Unsupported, match=r"blockIO.weight: this kernel has no blkio weight"):
            m.apply(res({"blockIO": {"weight": 500}}))
        return
    m.apply(res({"blockIO": {"weight": 500}}))
    assert fs.read(wfile).split()[-1] == "500"


def test_hugetlb_rdma_unsupported_here(env):
    with pytest.raises(Unsupported, match=r"hugepageLimits: the hugetlb controller"):
        env.m.apply(res({"hugepageLimits": [{"pageSize": "2MB", "limit": 1 << 21}]}))
    with pytest.raises(Unsupported, match=r"linux.resources.rdma: the cgroup v1 rdma"):
        env.m.apply(res({"rdma": {"mlx5_0": {"hcaHandles": 3}}}))


def test_network_warns_when_not_mounted(env):
    env.m.apply(res({"network": {"classID": 1048577, "priorities": [{"name": "lo", "priority": 2}]}}))
    w = " ".join(env.m.warnings)
    assert "classID is ignored: the net_cls controller is not mounted" in w
    assert "priorities is ignored: the net_prio controller is not mounted" in w


def test_unified_on_hybrid(env):
    m = env.m
    m.apply(res({"unified": {"cgroup.max.descendants": "7"}}))
    assert fs.read(m.paths[""] + "/cgroup.max.descendants").strip() == "7"
    with pytest.raises(Unsupported, match=r'unified.memory.high: cannot set "memory.high": '
                                          r'this host uses cgroup v1'):
        m.apply(res({"unified": {"memory.high": "1000000"}}))


# --------------------------------------------------------------------- devices (v1)

def _open_status(env, path, mode="r"):
    p = env.spawn([sys.executable, "-c",
                   f"import sys\ntry:\n open({path!r}, {mode!r}); print('ok')\n"
                   f"except OSError as e: print(e.errno)"], stdout=subprocess.PIPE, text=True)
    out, _ = p.communicate(timeout=30)
    return out.strip()


def test_devices_defaults(env):
    env.m.apply(None)
    lst = fs.read(env.m.paths["devices"] + "/devices.list").split("\n")
    assert "c 1:3 rwm" in lst and "c 136:* rwm" in lst and "b *:* m" in lst
    assert "a *:* rwm" not in lst
    assert _open_status(env, "/dev/null", "w") == "ok"
    assert _open_status(env, "/dev/kmsg") == "1"     # not in the defaults: EPERM


def test_devices_deny_dev_null(env):
    # without runc's default list and with an explicit deny of /dev/null
    env.m.apply(res({"devices": [{"allow": True, "type": "c", "major": 1, "minor": 5,
                                  "access": "rwm"}]}), default_devices=False)
    assert fs.read(env.m.paths["devices"] + "/devices.list").split() == ["c", "1:5", "rwm"]
    assert _open_status(env, "/dev/null", "w") == "1"
    assert _open_status(env, "/dev/zero") == "ok"


def test_devices_like_runc(env):
    """The same config as runc 1.1.5 got on this host: its devices.list, line for line."""
    class D:
        def __init__(self, path):
            self.path = path
    env.m.apply(res({"devices": [{"allow": False, "access": "rwm"},
                                 {"allow": False, "type": "c", "major": 1, "minor": 3,
                                  "access": "rwm"}]}),
                spec_devices=[D("/dev/kmsg")])
    assert sorted(fs.read(env.m.paths["devices"] + "/devices.list").split("\n")[:-1]) == sorted([
        "b *:* m", "c *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm",
        "c 5:0 rwm", "c 5:2 rwm", "c 10:200 rwm", "c 136:* rwm"])
    # linux.devices gives no access by itself (runc neither)
    assert _open_status(env, "/dev/kmsg") == "1"


def test_devices_redefined_default_is_dropped_and_kept(env):
    class D:
        path = "/dev/zero"
    env.m.apply(None, spec_devices=[D()])
    assert _open_status(env, "/dev/zero") == "1"
    assert env.m.to_state()["dropped_default_devices"] == ["/dev/zero"]
    m2 = cgroups.from_state(env.m.to_state())
    m2.update(res({"devices": [{"allow": True, "type": "c", "major": 1, "minor": 11,
                                "access": "r"}]}))
    assert _open_status(env, "/dev/zero") == "1"
    assert _open_status(env, "/dev/kmsg") == "ok"


def test_devices_update_writes_only_the_difference(env, monkeypatch):
    kmsg = {"allow": True, "type": "c", "major": 1, "minor": 11}
    env.m.apply(res({"devices": [dict(kmsg, access="rwm")]}))
    assert _open_status(env, "/dev/kmsg") == "ok"
    from ociruntime.linux.cgroups import v1
    writes = []
    real = v1.write
    monkeypatch.setattr(v1, "write", lambda f, v: (writes.append((f, v)), real(f, v)))
    env.m.update(res({"devices": [dict(kmsg, access="w")]}))
    monkeypatch.undo()
    # never a transient "deny a" on a running container
    assert [(os.path.basename(f), v) for f, v in writes] == [("devices.deny", "c 1:11 rm")]
    assert _open_status(env, "/dev/kmsg") == "1"
    assert "c 1:11 w" in fs.read(env.m.paths["devices"] + "/devices.list").split("\n")


# --------------------------------------------------------------------- freezer, kill, destroy

def _ticks(path):
    return os.path.getsize(path) if os.path.exists(path) else 0


def test_freeze_thaw(env, tmp_path):
    m = env.m
    f = str(tmp_path / "ticks")
    p = env.spawn(["sh", "-c", f"while :; do echo x >> {f}; sleep 0.01; done"])
    assert wait_for(lambda: _ticks(f) > 0)
    m.freeze()
    assert m.is_frozen()
    assert fs.read(m.paths["freezer"] + "/freezer.state").strip() == "FROZEN"
    n = _ticks(f)
    time.sleep(0.3)
    assert _ticks(f) == n, "a frozen process kept running"
    m.thaw()
    assert not m.is_frozen()
    assert wait_for(lambda: _ticks(f) > n)
    assert p.poll() is None


def test_kill_all_sigterm_and_sigkill(env):
    m = env.m
    sh = env.spawn(["sh", "-c", "sleep 100 & sleep 100 & sleep 100 & wait"])
    assert wait_for(lambda: len(m.pids()) == 4)
    m.kill_all(signal.SIGTERM)
    assert sh.wait(10) == -signal.SIGTERM
    assert wait_for(lambda: m.pids() == [])
    # SIGKILL through the unified hierarchy's cgroup.kill, frozen or not
    ps = env.sleep(3)
    m.freeze()
    m.kill_all(signal.SIGKILL)
    for p in ps:
        assert p.wait(10) == -signal.SIGKILL
    assert not m.is_frozen()
    assert wait_for(lambda: m.pids() == [])


def test_kill_all_freezes_while_signalling(env, monkeypatch):
    m = env.m
    env.sleep(2)
    seen = []
    real_kill = os.kill

    def spy(pid, sig):
        seen.append(m.is_frozen())
        real_kill(pid, sig)
    from ociruntime.linux.cgroups import fs
    monkeypatch.setattr(fs.os, "kill", spy)    # ociruntime.osfast
    m.kill_all(signal.SIGTERM)
    monkeypatch.undo()
    assert seen == [True, True]
    assert not m.is_frozen()
    assert wait_for(lambda: m.pids() == [])


def test_destroy_busy_then_ok(env):
    m = env.m
    (p,) = env.sleep()
    with pytest.raises(OciError, match=r"^Failed to remove paths: map\[.*memory:/sys/fs/cgroup/"
                                       r"memory/ocirun-test-"):
        m.destroy()
    assert m.exists()
    p.kill()
    p.wait()
    # a sub-cgroup made inside the container goes too
    os.mkdir(m.paths["memory"] + "/inner")
    m.destroy()
    assert not any(os.path.exists(x) for x in m.paths.values())


def test_stats_shape(env):
    m = env.m
    m.apply(res({"memory": {"limit": 128 << 20}, "pids": {"limit": 50}}))
    p = env.spawn([sys.executable, "-c", "b=bytearray(8<<20); b[::4096]=b'x'*len(b[::4096]); "
                   "import time; time.sleep(100)"])
    assert wait_for(lambda: m.stats()["memory"]["usage"].get("usage", 0) > 8 << 20)
    st = m.stats()
    assert set(st) == {"cpu", "cpuset", "memory", "pids", "blkio", "hugetlb", "intel_rdt",
                       "network_interfaces"}
    assert st["cpuset"]["cpus"] == list(range(os.cpu_count()))
    assert set(st["memory"]) >= {"usage", "swap", "kernel", "kernelTCP", "raw"}
    assert st["memory"]["usage"]["limit"] == 128 << 20
    assert st["memory"]["raw"]["rss"] > 0 or st["memory"]["raw"]["total_rss"] > 0
    assert st["pids"] == {"current": 1, "limit": 50}
    assert st["cpu"]["usage"]["total"] > 0 and len(st["cpu"]["usage"]["percpu"]) == os.cpu_count()
    p.kill()


# --------------------------------------------------------------------- v2 code on the host's unified mount

@pytest.fixture
def v2env():
    top = f"ocirun-test-{uuid.uuid4().hex[:10]}"
    m = V2Manager(f"{UNIFIED}/{top}", mount=UNIFIED, hybrid=True)
    m.create()
    e = Env(m, top)
    try:
        yield e
    finally:
        _reap(m, e.procs)
        m.destroy()
        assert not os.path.exists(m.path)


def test_v2_on_unified_lifecycle(v2env):
    m = v2env.m
    assert cgroups.from_state(m.to_state()).path == m.path
    ps = v2env.sleep(2)
    assert m.pids() == sorted(p.pid for p in ps)
    m.freeze()
    assert m.is_frozen() and fs.read_kv(m.path + "/cgroup.events")["frozen"] == 1
    m.thaw()
    assert not m.is_frozen()
    with pytest.raises(OciError, match=r"^Failed to remove paths: map\[:/sys/fs/cgroup/unified/"):
        m.destroy()
    m.kill_all(signal.SIGTERM)
    for p in ps:
        assert p.wait(10) == -signal.SIGTERM
    ps = v2env.sleep(2)
    m.kill_all(signal.SIGKILL)
    for p in ps:
        assert p.wait(10) == -signal.SIGKILL
    assert m.stats()["cpu"]["usage"]["total"] > 0


def test_v2_on_unified_devices_bpf(v2env):
    env = v2env
    env.m.apply(None)
    assert _open_status(env, "/dev/null", "w") == "ok"
    assert _open_status(env, "/dev/kmsg") == "1"
    env.m.update(res({"devices": [{"allow": True, "type": "c", "major": 1, "minor": 5,
                                   "access": "r"}]}))
    assert _open_status(env, "/dev/kmsg") == "1"
    env.m.apply(res({"devices": [{"allow": True, "type": "c", "major": 1, "minor": 5,
                                  "access": "r"}]}), default_devices=False)
    assert _open_status(env, "/dev/null", "w") == "1"
    assert _open_status(env, "/dev/zero", "r") == "ok"
    assert _open_status(env, "/dev/zero", "w") == "1"
    # one program attached at a time: updates replace the old one
    from ociruntime.linux import syscalls as sc
    fd = os.open(env.m.path, os.O_RDONLY)
    try:
        ids, _ = sc.bpf_prog_query(fd)
    finally:
        os.close(fd)
    assert len(ids) == 1


def test_v2_on_unified_missing_controller(v2env):
    with pytest.raises(Unsupported, match=r'linux.resources.memory.limit: the cgroup v2 '
                                          r'"memory" controller is not available'):
        v2env.m.apply(res({"memory": {"limit": 1 << 24}}))
    with pytest.raises(Unsupported, match=r"realtime"):
        v2env.m.apply(res({"cpu": {"realtimeRuntime": 1000}}))
