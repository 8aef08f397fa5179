"""cgroup v2 (pure unified hierarchy): runs inside the test VM (hack/vm/), where
/sys/fs/cgroup is cgroup2 with every controller; skipped elsewhere with the reason shown.
On the hybrid host the same code is exercised on /sys/fs/cgroup/unified by
tests/linux/test_cgroups.py (lifecycle, freezer, kill, BPF devices)."""
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from ociruntime.config.reader import Obj
from ociruntime.errors import OciError, Unsupported
from ociruntime.linux import cgroups
from ociruntime.linux.cgroups import fs
from ociruntime.linux.cgroups.v2 import V2Manager

pytestmark = [
    pytest.mark.vm,
    pytest.mark.skipif(not os.path.exists("/sys/fs/cgroup/cgroup.controllers"),
                       reason="needs a pure cgroup v2 host (/sys/fs/cgroup/cgroup.controllers "
                              "missing): run inside the VM, hack/vm/"),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
]


def res(d):
    return cgroups.parse_resources(Obj(d, "linux.resources"))


def wait_for(cond, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


class Env:
    def __init__(self, m, top):
        self.m, self.top, self.procs = m, top, []

    def spawn(self, args, **kw):
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
    assert isinstance(m, V2Manager) and m.mode == "v2"
    m.create()
    e = Env(m, top)
    try:
        yield e
    finally:
        for p in e.procs:
            if p.poll() is None:
                p.kill()
        try:
            if m.exists():
                if m.is_frozen():
                    m.thaw()
                for pid in m.pids():
                    os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
        for p in e.procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                pass
        try:
            m.destroy()
        finally:
            if os.path.isdir(f"/sys/fs/cgroup/{top}"):
                os.rmdir(f"/sys/fs/cgroup/{top}")
        assert not os.path.exists(f"/sys/fs/cgroup/{top}")


def test_create_delegates_controllers(env):
    m = env.m
    assert m.path == f"/sys/fs/cgroup/{env.top}/c"
    have = set(fs.read(m.path + "/cgroup.controllers").split())
    assert {"cpu", "memory", "pids", "io", "cpuset", "hugetlb"} <= have
    assert cgroups.from_state(m.to_state()).path == m.path
    own = fs.own_cgroups()[""]
    rel = cgroups.manager_for("ocirun-test-rel/x", "x")
    assert rel.path == os.path.normpath(f"/sys/fs/cgroup{own}/ocirun-test-rel/x")
    assert cgroups.manager_for(None, "abc").path == "/sys/fs/cgroup/ocirun/abc"


def test_memory(env):
    m = env.m
    m.apply(res({"memory": {"limit": 64 << 20, "reservation": 16 << 20, "swap": 96 << 20,
                            "kernel": 1 << 20, "swappiness": 5}}))
    assert fs.read_int(m.path + "/memory.max") == 64 << 20
    assert fs.read_int(m.path + "/memory.low") == 16 << 20
    if os.path.exists(m.path + "/memory.swap.max"):
        assert fs.read_int(m.path + "/memory.swap.max") == 32 << 20
    w = " ".join(m.warnings)
    assert "kernel memory settings" in w and "swappiness is ignored" in w
    m.update(res({"memory": {"limit": -1}}))
    assert fs.read(m.path + "/memory.max").strip() == "max"
    with pytest.raises(OciError, match="unable to set swap limit without memory limit"):
        m.update(res({"memory": {"swap": 1 << 30}}))


def test_oom(env):
    m = env.m
    m.apply(res({"memory": {"limit": 32 << 20, "swap": 32 << 20}}))
    assert m.oom_count() == 0
    with m.oom_watcher() as w:
        p = env.spawn([sys.executable, "-c",
                       "b=bytearray(200<<20); b[::4096]=b'x'*len(b[::4096])"])
        assert p.wait(120) == -signal.SIGKILL
        assert w.wait(20) >= 1
    assert m.oom_count() >= 1
    assert m.stats()["memory"]["usage"]["failcnt"] > 0


def test_cpu(env):
    m = env.m
    m.apply(res({"cpu": {"shares": 1024, "quota": 50000, "period": 100000, "burst": 1000,
                         "cpus": "0", "mems": "0", "idle": 0}}))
    assert fs.read_int(m.path + "/cpu.weight") == 39
    assert fs.read(m.path + "/cpu.max").split() == ["50000", "100000"]
    assert fs.read_int(m.path + "/cpu.max.burst") == 1000
    assert fs.read(m.path + "/cpuset.cpus").strip() == "0"
    assert fs.read(m.path + "/cpuset.mems").strip() == "0"
    m.update(res({"cpu": {"quota": -1, "period": 200000}}))
    assert fs.read(m.path + "/cpu.max").split() == ["max", "200000"]
    with pytest.raises(Unsupported, match="realtime"):
        m.update(res({"cpu": {"realtimeRuntime": 100}}))


def test_pids_limit_stops_fork_loop(env):
    m = env.m
    m.apply(res({"pids": {"limit": 4}}))
    assert fs.read_int(m.path + "/pids.max") == 4
    env.spawn(["sh", "-c", "for i in 1 2 3 4 5 6 7 8; do sleep 100 & done; wait"],
              stderr=subprocess.DEVNULL)
    assert wait_for(lambda: fs.read_int(m.path + "/pids.current") == 4)
    time.sleep(0.5)
    assert fs.read_int(m.path + "/pids.current") == 4
    assert fs.read_kv(m.path + "/pids.events")["max"] > 0
    assert m.stats()["pids"] == {"current": 4, "limit": 4}


def test_io(env):
    m = env.m
    m.apply(res({"blockIO": {"weight": 500}}))
    if os.path.exists(m.path + "/io.bfq.weight"):
        assert fs.read(m.path + "/io.bfq.weight").split()[-1] == "500"
    else:
        assert fs.read(m.path + "/io.weight").split()[-1] == "4950"
    disks = [d for d in os.listdir("/sys/block") if not d.startswith(("loop", "ram"))]
    if disks:
        ma, mi = fs.read(f"/sys/block/{disks[0]}/dev").strip().split(":")
        m.apply(res({"blockIO": {"throttleReadBpsDevice": [{"major": int(ma), "minor": int(mi),
                                                             "rate": 1 << 20}]}}))
        assert f"{ma}:{mi} rbps={1 << 20}" in fs.read(m.path + "/io.max")


def test_hugetlb_and_unified(env):
    m = env.m
    m.apply(res({"hugepageLimits": [{"pageSize": "2MB", "limit": 4 << 20}],
                 "memory": {"limit": 64 << 20},
                 "unified": {"memory.high": str(48 << 20), "memory.max": str(80 << 20)}}))
    assert fs.read_int(m.path + "/hugetlb.2MB.max") == 4 << 20
    assert fs.read_int(m.path + "/memory.high") == 48 << 20
    assert fs.read_int(m.path + "/memory.max") == 80 << 20      # unified wins
    assert "2MB" in m.stats()["hugetlb"]
    with pytest.raises(Unsupported, match=r'unified.nope.x: the cgroup v2 "nope" controller'):
        m.apply(res({"unified": {"nope.x": "1"}}))
    # rdma is delegated; the VM has no RDMA device, so the kernel refuses the name
    assert "rdma" in fs.read(m.path + "/cgroup.controllers").split()
    with pytest.raises(OciError, match=r'failed to write "mlx5_0 hca_handle=2" to ".*/rdma.max"'):
        m.apply(res({"rdma": {"mlx5_0": {"hcaHandles": 2}}}))


def _open_status(env, path, mode="r"):
    p = env.spawn([sys.executable, "-c",
                   f"try:\n open({path!r}, {mode!r}); print('ok')\n"
                   f"except OSError as e: print(e.errno)"], stdout=subprocess.PIPE, text=True)
    out, _ = p.communicate(timeout=60)
    return out.strip()


def test_devices_bpf(env):
    env.m.apply(None)
    assert _open_status(env, "/dev/null", "w") == "ok"
    assert _open_status(env, "/dev/kmsg") == "1"
    env.m.apply(res({"devices": [{"allow": True, "type": "c", "major": 1, "minor": 5,
                                  "access": "rwm"}]}), default_devices=False)
    assert _open_status(env, "/dev/null", "w") == "1"
    assert _open_status(env, "/dev/zero") == "ok"


def test_freeze_kill_destroy(env):
    m = env.m
    ps = env.sleep(2)
    assert m.pids() == sorted(p.pid for p in ps)
    m.freeze()
    assert m.is_frozen()
    assert fs.read_kv(m.path + "/cgroup.events")["frozen"] == 1
    m.thaw()
    assert not m.is_frozen()
    with pytest.raises(OciError, match=r"^Failed to remove paths: map\[:/sys/fs/cgroup/"):
        m.destroy()
    m.kill_all(signal.SIGTERM)
    for p in ps:
        assert p.wait(20) == -signal.SIGTERM
    ps = env.sleep(2)
    m.freeze()
    m.kill_all(signal.SIGKILL)
    for p in ps:
        assert p.wait(20) == -signal.SIGKILL
    assert not m.is_frozen()
    assert wait_for(lambda: m.pids() == [])


def test_stats(env):
    m = env.m
    m.apply(res({"memory": {"limit": 128 << 20}, "pids": {"limit": 20}}))
    env.spawn([sys.executable, "-c", "b=bytearray(8<<20); b[::4096]=b'x'*len(b[::4096]); "
               "import time; time.sleep(100)"])
    assert wait_for(lambda: m.stats()["memory"]["usage"].get("usage", 0) > 8 << 20, 60)
    st = m.stats()
    assert st["memory"]["usage"]["limit"] == 128 << 20
    assert st["memory"]["raw"]["anon"] > 0
    assert st["pids"] == {"current": 1, "limit": 20}
    assert st["cpu"]["usage"]["total"] > 0
