"""Whole containers on a pure cgroup v2 host (runs inside the test VM, tests/vm/conftest.py):
limits from config.json land in the container's cgroup and are enforced, the BPF device program
is attached, the cgroup namespace makes the container's cgroup its root, and delete removes it."""
import os
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


@pytest.fixture
def cg():
    """A fresh absolute cgroupsPath; asserts nothing is left under its top."""
    top = f"vm-ct-{uuid.uuid4().hex[:8]}"
    yield f"/{top}/c"
    leftover = os.path.exists(f"/sys/fs/cgroup/{top}/c")
    if os.path.isdir(f"/sys/fs/cgroup/{top}"):
        os.rmdir(f"/sys/fs/cgroup/{top}")
    assert not leftover, f"container cgroup /{top}/c left behind"


def test_resources_applied_and_deleted(ocirun, make_bundle, cg):
    b = make_bundle(["sleep", "100"])
    b.linux["cgroupsPath"] = cg
    b.linux["resources"].update({
        "memory": {"limit": 64 << 20, "reservation": 16 << 20},
        "cpu": {"shares": 512, "quota": 20000, "period": 100000},
        "pids": {"limit": 30},
    })
    b.write()
    ocirun.ok("run", "-d", "-b", b.path, "vm-res", stdin=open(os.devnull))
    path = f"/sys/fs/cgroup{cg}"
    try:
        assert read(f"{path}/memory.max") == str(64 << 20)
        assert read(f"{path}/memory.low") == str(16 << 20)
        assert read(f"{path}/cpu.max") == "20000 100000"
        assert read(f"{path}/cpu.weight") == "20"            # runc: 1 + ((512-2)*9999)/262142
        assert read(f"{path}/pids.max") == "30"
        pid = ocirun.state("vm-res")["pid"]
        assert read(f"{path}/cgroup.procs").split() == [str(pid)]
    finally:
        ocirun.ok("delete", "--force", "vm-res")
    assert not os.path.exists(path)


def test_cgroup_namespace_root_and_readonly_mount(ocirun, make_bundle, cg):
    b = make_bundle(["sh", "-c", "cat /proc/self/cgroup;"
                     " grep ' /sys/fs/cgroup ' /proc/self/mountinfo;"
                     " ls /sys/fs/cgroup/memory.max; mkdir /sys/fs/cgroup/x 2>&1; true"])
    b.linux["cgroupsPath"] = cg
    b.write()
    p = ocirun.ok("run", "-b", b.path, "vm-ns")
    lines = p.stdout.splitlines()
    assert lines[0] == "0::/", p.stdout                     # the container's cgroup is its root
    mnt = lines[1].split()
    assert mnt[4] == "/sys/fs/cgroup" and mnt[3] == "/" and "ro" in mnt[5].split(","), lines[1]
    assert " - cgroup2 " in lines[1], lines[1]
    assert lines[2] == "/sys/fs/cgroup/memory.max"           # v2 files of its own cgroup
    assert "Read-only file system" in p.stdout
    assert not os.path.exists(f"/sys/fs/cgroup{cg}")


DEV = ("mknod /dev/x c 240 0 && echo mknod-ok; cat /dev/x 2>&1; "
       "mknod /dev/blk b 7 200 && echo b-ok; echo x > /dev/null && echo null-ok; true")


def _dev_bundle(make_bundle, cg, rules=()):
    b = make_bundle(["sh", "-c", DEV])
    b.linux["cgroupsPath"] = cg
    b.linux["resources"]["devices"] += list(rules)
    for k in ("bounding", "effective", "permitted"):
        b.process["capabilities"][k].append("CAP_MKNOD")
    return b.write()


def test_devices_bpf_program_denies(ocirun, make_bundle, cg):
    """runc's default rules: /dev/null usable, nodes may be made (c/b *:* m) but a device they
    do not list (char 240:0, a local-use major with no driver) cannot be opened: EPERM from the
    BPF_PROG_TYPE_CGROUP_DEVICE program, not ENXIO from the kernel."""
    p = ocirun.ok("run", "-b", _dev_bundle(make_bundle, cg).path, "vm-dev")
    out = p.stdout
    assert "mknod-ok" in out and "b-ok" in out and "null-ok" in out, out + p.stderr
    assert "Operation not permitted" in out and "No such device" not in out, out


def test_devices_bpf_program_allows_config_rule(ocirun, make_bundle, cg):
    """The config allows c 240:0 rw: the open reaches the kernel (ENXIO: no driver)."""
    b = _dev_bundle(make_bundle, cg, [{"allow": True, "type": "c", "major": 240, "minor": 0,
                                       "access": "rw"}])
    p = ocirun.ok("run", "-b", b.path, "vm-dev2")
    assert "No such device" in p.stdout and "Operation not permitted" not in p.stdout, p.stdout


def test_oom_kill(ocirun, make_bundle, cg):
    b = make_bundle(["sh", "-c", "x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo survived"])
    b.linux["cgroupsPath"] = cg
    b.linux["resources"]["memory"] = {"limit": 24 << 20, "swap": 24 << 20}
    b.write()
    p = ocirun("run", "-b", b.path, "vm-oom", timeout=120)
    assert p.returncode == 137, (p.returncode, p.stdout, p.stderr)
    assert "survived" not in p.stdout


def test_pids_limit(ocirun, make_bundle, cg):
    # the subshell forks sleeps until the limit stops it (ash exits on a failed fork); then
    # builtins only: the init sh + 3 sleeps remain, pids.events counts the refusals
    b = make_bundle(["sh", "-c", "(for i in 1 2 3 4 5 6 7 8 9 10; do sleep 30 & done);"
                     " read n < /sys/fs/cgroup/pids.current; echo cur=$n;"
                     " while read k v; do echo $k=$v; done < /sys/fs/cgroup/pids.events"])
    b.linux["cgroupsPath"] = cg
    b.linux["resources"]["pids"] = {"limit": 5}
    b.write()
    p = ocirun.ok("run", "-b", b.path, "vm-pids", timeout=120)
    out = dict(line.split("=") for line in p.stdout.split())
    assert out["cur"] == "4" and int(out["max"]) >= 1, p.stdout + p.stderr
    assert "can't fork" in p.stderr, p.stderr


def test_default_cgroups_path(ocirun, make_bundle):
    b = make_bundle(["sleep", "100"])
    ocirun.ok("run", "-d", "-b", b.path, "vm-default", stdin=open(os.devnull))
    try:
        pid = ocirun.state("vm-default")["pid"]
        assert read(f"/proc/{pid}/cgroup") == "0::/ocirun/vm-default"
    finally:
        ocirun.ok("delete", "--force", "vm-default")
    assert not os.path.exists("/sys/fs/cgroup/ocirun/vm-default")


def test_rw_cgroup_mount_subtree_removed_by_delete(ocirun, make_bundle, cg):
    """Without "ro" the container may manage its own subtree (nsdelegate): it makes a child
    cgroup, moves a process there, and delete --force kills and removes the whole subtree."""
    b = make_bundle(["sh", "-c", "mkdir /sys/fs/cgroup/inner && (echo $$ > /sys/fs/cgroup/inner/"
                     "cgroup.procs; exec sleep 100) & sleep 100"])
    b.linux["cgroupsPath"] = cg
    for m in b.config["mounts"]:
        if m["destination"] == "/sys/fs/cgroup":
            m["options"].remove("ro")
    b.write()
    ocirun.ok("run", "-d", "-b", b.path, "vm-rw", stdin=open(os.devnull))
    path = f"/sys/fs/cgroup{cg}"
    try:
        end = time.monotonic() + 20
        while not (os.path.exists(f"{path}/inner/cgroup.procs")
                   and read(f"{path}/inner/cgroup.procs")):
            assert time.monotonic() < end, "no process moved into inner"
            time.sleep(0.05)
        assert read(f"{path}/cgroup.procs")
    finally:
        ocirun.ok("delete", "--force", "vm-rw")
    assert not os.path.exists(path)


def test_ps_and_kill_all(ocirun, make_bundle, cg):
    b = make_bundle(["sh", "-c", "sleep 100 & sleep 100 & sleep 100"])
    b.linux["cgroupsPath"] = cg
    b.write()
    ocirun.ok("run", "-d", "-b", b.path, "vm-ps", stdin=open(os.devnull))
    path = f"/sys/fs/cgroup{cg}"
    try:
        # `run -d` returns once sh runs; its background sleeps follow a moment later
        end = time.monotonic() + 20
        while len(procs := sorted(int(p) for p in read(f"{path}/cgroup.procs").split())) < 3:
            assert time.monotonic() < end, f"expected 3 processes, found {procs}"
            time.sleep(0.05)
        assert len(procs) == 3
        pids = ocirun.ok("ps", "--format", "json", "vm-ps").stdout
        assert sorted(int(p) for p in pids.strip("[]\n").split(",")) == procs
        ocirun.ok("kill", "--all", "vm-ps", "KILL")
        end = time.monotonic() + 20
        while read(f"{path}/cgroup.procs"):
            assert time.monotonic() < end, "processes survived kill --all"
            time.sleep(0.05)
        assert ocirun.state("vm-ps")["status"] == "stopped"
    finally:
        ocirun.ok("delete", "--force", "vm-ps")
    assert not os.path.exists(path)
