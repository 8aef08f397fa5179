"""Regression tests for the published runtime filesystem CVEs (docs/security.md): hostile
images and racing volumes must never make a mount, a device node, a chown or a write land
outside the container's rootfs."""
import os
import subprocess
import sys
import uuid

import pytest

from rootfs_util import (drop_dev_mounts, host_mountpoints, mountinfo, replace_with_symlink,
                         run, tree)

pytestmark = pytest.mark.usefixtures("ocirun")


@pytest.fixture
def host_dir():
    """A directory on the host, outside any bundle, that a hostile image points at."""
    d = f"/tmp/ocirun-hostdir-{uuid.uuid4().hex[:8]}"
    os.mkdir(d)
    with open(os.path.join(d, "marker"), "w") as f:
        f.write("host\n")
    os.chown(os.path.join(d, "marker"), 1234, 1234)
    yield d
    for mp in reversed(host_mountpoints()):
        if mp.startswith(d):
            subprocess.run(["umount", "-l", mp])
    subprocess.run(["rm", "-rf", d])


# ------------------------------------------------ CVE-2019-19921, CVE-2023-27561, CVE-2023-28642

@pytest.mark.parametrize("name,target", [("proc", "/"), ("proc", "/tmp"), ("proc", "sys"),
                                         ("sys", "/"), ("sys", "/proc")])
def test_proc_or_sys_symlink_refused(ocirun, make_bundle, name, target):
    b = make_bundle()
    replace_with_symlink(os.path.join(b.rootfs, name), target)
    before = host_mountpoints()
    p = run(ocirun, b, "echo RAN", check=False)
    assert p.returncode != 0
    assert "must be mounted on ordinary directory" in p.stderr
    assert "RAN" not in p.stdout
    assert host_mountpoints().count("/proc") == before.count("/proc")


def test_proc_under_symlinked_parent_refused(ocirun, make_bundle):
    """A proc mount whose destination goes through a symlink anywhere is refused too."""
    b = make_bundle()
    os.symlink("/", os.path.join(b.rootfs, "up"))
    b.config["mounts"].append({"destination": "/up/mnt", "type": "proc", "source": "proc"})
    p = run(ocirun, b, "true", check=False)
    assert p.returncode != 0 and "must be mounted on ordinary directory" in p.stderr


# ------------------------------------------------ CVE-2021-30465, CVE-2024-45310 (static part)

def test_mount_destinations_through_symlinks_stay_inside(ocirun, make_bundle, tmp_path):
    tag = uuid.uuid4().hex[:8]
    b = make_bundle()
    os.symlink("/", os.path.join(b.rootfs, "evil"))
    os.symlink("../../../../../../../..", os.path.join(b.rootfs, "evil2"))
    os.mkdir(os.path.join(b.rootfs, "deep"))
    os.symlink("../../../../etc", os.path.join(b.rootfs, "deep", "evil3"))
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("payload")
    ms = [("/evil/escape-a-" + tag, "tmpfs", None),
          ("/evil2/tmp/escape-b-" + tag, "bind", str(src)),
          ("/deep/evil3/escape-c-" + tag, "bind", str(src / "f")),
          ("/../../escape-d-" + tag, "tmpfs", None)]
    for dest, t, s in ms:
        m = {"destination": dest, "type": t, "source": s or "tmpfs"}
        if t == "bind":
            m["options"] = ["bind"]
        b.config["mounts"].append(m)
    p = run(ocirun, b, "cat /proc/self/mountinfo")
    mi = mountinfo(p.stdout)
    # the mounts exist, at the in-root resolution of each path
    for inside in ("/escape-a-", "/tmp/escape-b-", "/etc/escape-c-", "/escape-d-"):
        assert inside + tag in mi, sorted(mi)
    # and nothing outside: no host path was created or mounted on
    for host in ("/escape-a-", "/tmp/escape-b-", "/etc/escape-c-", "/escape-d-"):
        assert not os.path.lexists(host + tag)
        assert not any(mp.endswith(host + tag) and not mp.startswith(str(tmp_path))
                       for mp in host_mountpoints())
    assert os.path.isdir(os.path.join(b.rootfs, "escape-a-" + tag))
    assert os.path.isfile(os.path.join(b.rootfs, "etc", "escape-c-" + tag))


def test_magic_link_destination_refused(ocirun, make_bundle):
    """/proc/self/root-style magic links in a destination are never followed."""
    b = make_bundle()
    b.config["mounts"].append({"destination": "/proc/self/root/escape-magic", "type": "tmpfs",
                               "source": "tmpfs"})
    p = run(ocirun, b, "true", check=False)
    assert p.returncode != 0
    assert not os.path.exists("/escape-magic")


# ------------------------------------------------ CVE-2021-30465, CVE-2024-45310 (the race)

RACER = r"""
import os, sys, time
vol = sys.argv[1]
a, tmp, end = os.path.join(vol, "a"), os.path.join(vol, "a.dir"), time.time() + float(sys.argv[2])
while time.time() < end:
    try:
        os.rename(a, tmp)              # a: dir -> symlink to /
        os.symlink("/", a)
        os.unlink(a)                   # and back
        os.rename(tmp, a)
    except OSError:
        pass
"""


def test_racing_volume_cannot_redirect_mounts(ocirun, make_bundle, tmp_path):
    tag = uuid.uuid4().hex[:6]
    vol = tmp_path / "vol"
    (vol / "a").mkdir(parents=True)
    racer = subprocess.Popen([sys.executable, "-c", RACER, str(vol), "20"])
    try:
        results = []
        for i in range(4):
            b = make_bundle()
            b.config["root"]["readonly"] = False
            b.config["mounts"].append({"destination": "/vol", "source": str(vol),
                                       "options": ["rbind"]})
            for j in range(30):
                b.config["mounts"].append({"destination": f"/vol/a/race-{tag}-{j}",
                                           "type": "tmpfs", "source": "tmpfs",
                                           "options": ["size=4k"]})
            results.append(run(ocirun, b, "true", check=False).returncode)
    finally:
        racer.kill()
        racer.wait()
    # either the container started or it failed cleanly; nothing landed on the host's /
    for j in range(30):
        assert not os.path.lexists(f"/race-{tag}-{j}")
    assert not any(f"race-{tag}" in mp for mp in host_mountpoints())


# ------------------------------------------------ CVE-2026-41579, crun CVE-2026-47766

@pytest.mark.parametrize("inside_exists", [False, True])
def test_dev_symlink_to_host_dir_changes_nothing_on_host(ocirun, make_bundle, host_dir,
                                                         inside_exists):
    b = make_bundle()
    drop_dev_mounts(b)
    b.config["root"]["readonly"] = False
    replace_with_symlink(os.path.join(b.rootfs, "dev"), host_dir)
    if inside_exists:   # the same path exists inside the rootfs: devices go there
        os.makedirs(b.rootfs + host_dir)
    before = tree(host_dir)
    p = run(ocirun, b, "ls -l /dev/null /dev/ptmx", check=False)
    assert tree(host_dir) == before, "the host directory was modified"
    if inside_exists:
        assert p.returncode == 0, p.stderr
        assert os.path.exists(os.path.join(b.rootfs + host_dir, "null"))
    else:
        assert p.returncode != 0   # fail closed: /dev resolves to nothing creatable
        assert "/dev: is a symlink to a path missing in the rootfs" in p.stderr


# ------------------------------------------------ CVE-2025-31133

def test_masked_paths_with_dev_null_symlink_to_core_pattern(ocirun, make_bundle):
    with open("/proc/sys/kernel/core_pattern") as f:
        core_before = f.read()
    b = make_bundle()
    drop_dev_mounts(b)
    b.config["root"]["readonly"] = False
    replace_with_symlink(os.path.join(b.rootfs, "dev", "null"), "/proc/sys/kernel/core_pattern")
    b.linux["maskedPaths"] = ["/proc/keys", "/proc/timer_list", "/proc/acpi"]
    b.linux["readonlyPaths"] = []     # so that a rw bind of core_pattern would be writable
    p = run(ocirun, b, "cat /proc/self/mountinfo; echo ==;",
            "stat -c '%F %t:%T' /proc/keys /proc/timer_list /dev/null;",
            "echo '|/tmp/pwn' > /proc/keys 2>/dev/null && echo WROTE; echo done")
    info, out = p.stdout.split("==")
    mi = mountinfo(info)
    assert "ro" in mi["/proc/keys"][0] and "ro" in mi["/proc/timer_list"][0]
    assert out.split("\n")[1:4] == ["character special file 1:3"] * 3
    # the write went to /dev/null (a read-only mount does not stop writes to a device): had the
    # mask been a bind of core_pattern, the host's core_pattern would now be "|/tmp/pwn"
    assert out.split()[-2:] == ["WROTE", "done"]
    with open("/proc/sys/kernel/core_pattern") as f:
        assert f.read() == core_before


DEVNULL_RACER = r"""
import os, sys, time
dev, end = sys.argv[1], time.time() + float(sys.argv[2])
null, tmp = os.path.join(dev, "null"), os.path.join(dev, ".null.tmp")
while time.time() < end:
    try:
        os.symlink("/proc/sys/kernel/core_pattern", tmp)
        os.rename(tmp, null)          # atomically: null -> symlink to core_pattern
        os.unlink(null)
    except OSError:
        pass
"""


def test_masked_paths_with_racing_dev_null_swap(ocirun, make_bundle):
    with open("/proc/sys/kernel/core_pattern") as f:
        core_before = f.read()
    bundles = []
    for i in range(3):
        b = make_bundle()
        drop_dev_mounts(b)
        b.config["root"]["readonly"] = False
        b.linux["maskedPaths"] = ["/proc/keys", "/proc/timer_list", "/proc/sched_debug"]
        b.linux["readonlyPaths"] = []
        bundles.append(b)
    racers = [subprocess.Popen([sys.executable, "-c", DEVNULL_RACER,
                                os.path.join(b.rootfs, "dev"), "15"]) for b in bundles]
    outs = []
    try:
        for b in bundles:
            for _ in range(3):
                p = run(ocirun, b, "stat -c '%F %t:%T' /proc/keys;",
                        "echo '|/tmp/pwn' > /proc/keys 2>/dev/null; true", check=False)
                outs.append(p)
    finally:
        for r in racers:
            r.kill()
            r.wait()
    with open("/proc/sys/kernel/core_pattern") as f:
        assert f.read() == core_before
    for p in outs:
        if p.returncode == 0:      # started: the mask is the real /dev/null
            assert p.stdout.split("\n")[0] == "character special file 1:3", p.stdout
    assert any(p.returncode == 0 for p in outs), [p.stderr for p in outs]


# ------------------------------------------------ crun CVE-2026-88264/88265

def test_device_chown_never_follows_symlinks(ocirun, make_bundle, host_dir):
    victim = os.path.join(host_dir, "marker")
    st0 = os.lstat(victim)
    b = make_bundle()
    drop_dev_mounts(b)
    b.config["root"]["readonly"] = True
    replace_with_symlink(os.path.join(b.rootfs, "dev", "null"), victim)
    replace_with_symlink(os.path.join(b.rootfs, "dev", "console"), victim)
    os.symlink(victim, os.path.join(b.rootfs, "dev", "fuse"))
    b.linux["devices"] = [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229,
                           "uid": 4321, "gid": 4321},
                          {"path": "/dev/null", "type": "c", "major": 1, "minor": 3,
                           "uid": 4321, "gid": 4321}]
    p = run(ocirun, b, "stat -c '%F %u' /dev/fuse /dev/null", check=False)
    st1 = os.lstat(victim)
    assert (st1.st_uid, st1.st_gid, st1.st_mode) == (st0.st_uid, st0.st_gid, st0.st_mode)
    with open(victim) as f:
        assert f.read() == "host\n"
    assert p.returncode == 0, p.stderr
    assert p.stdout.split("\n")[:2] == ["character special file 4321"] * 2


# ------------------------------------------------ CVE-2019-16884, CVE-2025-52881

def test_sysctl_not_redirected_by_fake_proc_files(ocirun, make_bundle, tmp_path):
    fake = tmp_path / "fakesys"
    (fake / "mqueue").mkdir(parents=True)
    (fake / "mqueue" / "msg_max").write_text("fake\n")
    b = make_bundle()
    # an image-provided volume over /proc/sys/fs with a writable fake msg_max
    b.config["mounts"].append({"destination": "/proc/sys/fs", "source": str(fake),
                               "options": ["rbind", "rw"]})
    b.linux["readonlyPaths"] = []
    b.linux["sysctl"] = {"fs.mqueue.msg_max": "42", "kernel.shmmni": "1234"}
    p = run(ocirun, b, "cat /proc/sys/fs/mqueue/msg_max /proc/sys/kernel/shmmni")
    # the container sees the fake file (its own business), but the runtime wrote the real one
    assert p.stdout.split() == ["fake", "1234"]
    assert (fake / "mqueue" / "msg_max").read_text() == "fake\n"


def test_proc_sys_hidden_by_tmpfs_sysctl_still_goes_to_procfs(ocirun, make_bundle):
    b = make_bundle()
    b.config["mounts"].insert(1, {"destination": "/proc/sys", "type": "tmpfs", "source": "tmpfs"})
    b.linux["maskedPaths"] = []
    b.linux["readonlyPaths"] = []
    b.linux["sysctl"] = {"kernel.shmmni": "777", "fs.mqueue.msg_max": "43"}
    p = run(ocirun, b, "cat /proc/self/mountinfo; echo ==; ls -A /proc/sys | wc -l")
    info, out = p.stdout.split("==")
    # /proc/sys is an empty tmpfs in the container: a path-based write would have failed or
    # written into it; the runtime wrote through its own verified procfs instead
    assert mountinfo(info)["/proc/sys"][2] == "tmpfs"
    assert out.split() == ["0"]


# ------------------------------------------------ no leak into the host mount namespace

def test_nothing_leaks_into_host_mount_namespace(ocirun, make_bundle, tmp_path):
    before = set(host_mountpoints())
    b = make_bundle()
    b.config["mounts"].append({"destination": "/shared", "type": "tmpfs", "source": "tmpfs",
                               "options": ["rshared"]})
    b.linux["rootfsPropagation"] = "rshared"
    run(ocirun, b, "mount -t tmpfs none /shared 2>/dev/null; true")
    after = set(host_mountpoints())
    assert not {m for m in after - before if str(tmp_path) in m or m.startswith("/shared")}


def test_bind_mounted_device_is_never_chowned(ocirun, make_bundle, tmp_path):
    """A device node bind-mounted by the config (a host inode) that linux.devices also lists
    with another owner: the runtime must not chown the host's node."""
    node = tmp_path / "nullnode"
    os.mknod(node, 0o666 | 0o020000, os.makedev(1, 3))
    st0 = os.lstat(node)
    b = make_bundle()
    b.config["mounts"].append({"destination": "/dev/null", "source": str(node),
                               "options": ["bind"]})
    b.linux["devices"] = [{"path": "/dev/null", "type": "c", "major": 1, "minor": 3,
                           "uid": 4321, "gid": 4321, "fileMode": 0o600}]
    p = run(ocirun, b, "stat -c '%t:%T %u' /dev/null")
    st1 = os.lstat(node)
    assert (st1.st_uid, st1.st_gid, st1.st_mode) == (st0.st_uid, st0.st_gid, st0.st_mode)
    assert p.stdout.split() == ["1:3", "0"]
