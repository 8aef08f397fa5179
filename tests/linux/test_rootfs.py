"""Mounts, devices, masks, read-only paths, sysctls and the root switch, through ``ocirun run``
(real kernel, as root)."""
import os
import subprocess

import pytest

from rootfs_util import drop_dev_mounts, mountinfo, run

pytestmark = pytest.mark.usefixtures("ocirun")


def mnt(bundle, **m):
    bundle.config["mounts"].append(m)


def test_default_spec_mounts_devices_and_masks(ocirun, make_bundle):
    b = make_bundle()
    p = run(ocirun, b, "cat /proc/self/mountinfo; echo ==;",
            "for d in null zero full random urandom tty; do",
            "stat -c \"%n %F %t:%T %a %u\" /dev/$d; done;",
            "echo ==; for l in fd stdin stdout stderr ptmx; do readlink /dev/$l; done; echo ==;",
            "stat -c '%F %t:%T' /proc/keys /proc/timer_list; ls -A /proc/acpi | wc -l;",
            "echo x > /proc/sys/kernel/domainname && echo WROTE; touch /newfile && echo TOUCHED;",
            "echo ok")
    info, devs, links, rest = p.stdout.split("==")
    mi = mountinfo(info)
    assert mi["/proc"][2] == "proc"
    assert mi["/dev"][2] == "tmpfs" and "nosuid" in mi["/dev"][0]
    assert {"size=65536k", "mode=755"} <= mi["/dev"][3]
    assert mi["/dev/pts"][2] == "devpts"
    assert {"gid=5", "mode=620", "ptmxmode=666"} <= mi["/dev/pts"][3]
    assert mi["/dev/shm"][2] == "tmpfs" and {"nosuid", "nodev", "noexec"} <= mi["/dev/shm"][0]
    assert mi["/dev/mqueue"][2] == "mqueue"
    assert mi["/sys"][2] == "sysfs" and "ro" in mi["/sys"][0]
    assert "ro" in mi["/"][0]                                   # root.readonly
    assert "ro" in mi["/proc/sys"][0] and "ro" in mi["/proc/bus"][0]   # readonlyPaths
    assert mi["/proc/acpi"][2] == "tmpfs" and "ro" in mi["/proc/acpi"][0]  # masked dir
    assert "ro" in mi["/proc/keys"][0]                          # masked file
    assert devs.split("\n")[1:-1] == [
        f"/dev/{n} character special file {ma}:{mi_} 666 0"
        for n, ma, mi_ in (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8),
                           ("urandom", 1, 9), ("tty", 5, 0))]
    assert links.split() == ["/proc/self/fd", "/proc/self/fd/0", "/proc/self/fd/1",
                             "/proc/self/fd/2", "pts/ptmx"]
    assert rest.split("\n")[1:3] == ["character special file 1:3"] * 2
    assert "WROTE" not in rest and "TOUCHED" not in rest
    assert rest.split()[-1] == "ok"
    assert "Read-only file system" in p.stderr


def test_bind_file_and_dir_created_and_ro_rw(ocirun, make_bundle, tmp_path):
    src = tmp_path / "vol"
    src.mkdir()
    (src / "hello").write_text("hi\n")
    f = tmp_path / "file.txt"
    f.write_text("file\n")
    b = make_bundle()
    mnt(b, destination="/etc/bound.txt", type="bind", source=str(f), options=["bind", "ro"])
    mnt(b, destination="/a/b/c", source=str(src), options=["rbind", "rw"])
    mnt(b, destination="/ro", source=str(src), options=["bind", "ro"])
    p = run(ocirun, b, "cat /etc/bound.txt /a/b/c/hello; test -f /etc/bound.txt && echo FILE;",
            "test -d /a/b/c && echo DIR; echo new > /a/b/c/new; echo x > /ro/y || echo RO;",
            "echo x > /etc/bound.txt || echo FRO")
    assert p.stdout.split() == ["file", "hi", "FILE", "DIR", "RO", "FRO"]
    assert (src / "new").read_text() == "new\n"
    assert not (src / "y").exists()
    # the bundle's rootfs got the created mount points, the host nothing else
    assert os.path.isfile(os.path.join(b.rootfs, "etc/bound.txt"))
    assert os.path.isdir(os.path.join(b.rootfs, "a/b/c"))


@pytest.fixture
def vol_with_submount(tmp_path):
    """A host dir with a tmpfs mounted inside it (for bind vs rbind, ro vs rro)."""
    v = tmp_path / "subvol"
    (v / "sub").mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(v / "sub")],
                   check=True)
    subprocess.run(["mount", "--make-private", str(v / "sub")], check=True)
    (v / "sub" / "insub").write_text("x")
    yield v
    subprocess.run(["umount", "-l", str(v / "sub")], check=True)


def test_bind_rbind_ro_rro(ocirun, make_bundle, vol_with_submount):
    v = str(vol_with_submount)
    b = make_bundle()
    mnt(b, destination="/bind", source=v, options=["bind"])
    mnt(b, destination="/rbind", source=v, options=["rbind", "ro"])
    mnt(b, destination="/rro", source=v, options=["rbind", "rro"])
    p = run(ocirun, b, "ls /bind/sub | wc -l; cat /rbind/sub/insub; echo;",
            "touch /rbind/top 2>/dev/null || echo TOPRO; touch /rbind/sub/w && echo SUBRW;",
            "touch /rro/sub/w2 2>/dev/null || echo SUBRO")
    assert p.stdout.split() == ["0", "x", "TOPRO", "SUBRW", "SUBRO"]


@pytest.mark.parametrize("opts,want,absent", [
    (["nosuid", "nodev", "noexec"], {"nosuid", "nodev", "noexec"}, set()),
    (["noatime"], {"noatime"}, {"relatime"}),
    (["strictatime"], set(), {"relatime", "noatime"}),
    (["nodiratime", "ro"], {"nodiratime", "ro"}, set()),
    (["rnosuid", "rnoexec"], {"nosuid", "noexec"}, set()),
    (["nosymfollow"], {"nosymfollow"}, set()),
])
def test_tmpfs_flags(ocirun, make_bundle, opts, want, absent):
    b = make_bundle()
    mnt(b, destination="/t", type="tmpfs", source="tmpfs",
        options=opts + ["size=1024k", "mode=700"])
    p = run(ocirun, b, "cat /proc/self/mountinfo; stat -c %a /t")
    mi = mountinfo(p.stdout)["/t"]
    assert want <= mi[0] and not absent & mi[0]
    assert {"size=1024k", "mode=700"} <= mi[3]
    assert p.stdout.split()[-1] == "700"


def test_noexec_really_blocks_exec(ocirun, make_bundle):
    b = make_bundle()
    mnt(b, destination="/x", type="tmpfs", source="tmpfs", options=["noexec"])
    p = run(ocirun, b, "cp /bin/busybox /x/bb; /x/bb true && echo RAN || echo BLOCKED")
    assert p.stdout.split() == ["BLOCKED"]


@pytest.mark.parametrize("opt,field", [("shared", "shared:"), ("unbindable", "unbindable"),
                                       ("private", None)])
def test_mount_propagation(ocirun, make_bundle, opt, field):
    b = make_bundle()
    mnt(b, destination="/p", type="tmpfs", source="tmpfs", options=[opt])
    p = run(ocirun, b, "cat /proc/self/mountinfo")
    opt_fields = " ".join(mountinfo(p.stdout)["/p"][1])
    if field:
        assert field in opt_fields
    else:
        assert "shared:" not in opt_fields and "master:" not in opt_fields


@pytest.mark.parametrize("prop,field", [("rshared", "shared:"), ("rprivate", None),
                                        (None, "master:")])
def test_rootfs_propagation(ocirun, make_bundle, prop, field):
    b = make_bundle()
    if prop:
        b.linux["rootfsPropagation"] = prop
    p = run(ocirun, b, "cat /proc/self/mountinfo")
    opt_fields = " ".join(mountinfo(p.stdout)["/"][1])
    if field == "master:":
        # default rslave: the root is either a slave or (if the host's / is private) private
        assert "shared:" not in opt_fields
    elif field:
        assert field in opt_fields
    else:
        assert "shared:" not in opt_fields and "master:" not in opt_fields


def test_unknown_option_is_filesystem_data_and_kernel_error_names_mount(ocirun, make_bundle):
    b = make_bundle()
    mnt(b, destination="/t", type="tmpfs", source="tmpfs", options=["bogusopt=1"])
    p = run(ocirun, b, "true", check=False)
    assert p.returncode != 0
    assert "mounts[7].options" in p.stderr and "Unknown parameter 'bogusopt'" in p.stderr


def test_filesystem_data_not_prechecked_still_fails_at_start(ocirun, make_bundle):
    """sysfs is not pre-checked at create: its bad data fails when mounting, naming the mount."""
    b = make_bundle()
    mnt(b, destination="/s2", type="sysfs", source="sysfs", options=["bogusopt"])
    p = run(ocirun, b, "true", check=False)
    assert p.returncode != 0
    assert "mounts[7]: mount sysfs to /s2" in p.stderr, p.stderr


@pytest.mark.parametrize("m,err", [
    ({"destination": "rel/path", "type": "tmpfs", "source": "tmpfs"}, "mounts[7].destination"),
    ({"destination": "/x", "type": "tmpfs", "source": "tmpfs", "options": ["idmap"]},
     "mounts[7].options"),
    ({"destination": "/x", "source": "/nonexistent-src-xyz", "options": ["bind"]},
     "mounts[7].source"),
    ({"destination": "/x", "source": "/tmp"}, "mounts[7].type"),
    ({"destination": "/x", "type": "tmpfs", "source": "tmpfs", "options": ["mode=zz"]},
     "mounts[7].options: tmpfs: mode=zz"),
    ({"destination": "/x", "type": "proc", "source": "proc", "options": ["hidepid=bogus"]},
     "mounts[7].options: proc: hidepid=bogus"),
    ({"destination": "/x", "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup", "zz"]},
     "mounts[7].options: tmpfs: zz"),
])
def test_bad_mounts_fail_at_create(ocirun, make_bundle, m, err):
    b = make_bundle()
    mnt(b, **m)
    b.write()
    p = ocirun("create", "-b", b.path, "badmount")
    assert p.returncode != 0
    assert err in p.stderr, p.stderr
    assert "badmount" not in ocirun.ids()


def test_bad_rootfs_propagation_fails_at_create(ocirun, make_bundle):
    b = make_bundle()
    b.linux["rootfsPropagation"] = "x"
    b.write()
    p = ocirun("create", "-b", b.path, "badprop")
    assert p.returncode != 0 and "rootfsPropagation" in p.stderr
    assert 'unknown propagation' in p.stderr


def test_readonly_root_false_allows_writes(ocirun, make_bundle):
    b = make_bundle()
    b.config["root"]["readonly"] = False
    p = run(ocirun, b, "mkdir /newdir && rmdir /newdir && echo OK")
    assert p.stdout.split() == ["OK"]


def test_no_pivot(ocirun, make_bundle):
    b = make_bundle()
    p = run(ocirun, b, "cat /proc/self/mountinfo; ls /bin/busybox", extra=("--no-pivot",))
    mi = mountinfo(p.stdout)
    assert "/" in mi and mi["/proc"][2] == "proc"
    assert p.stdout.split()[-1] == "/bin/busybox"


def test_linux_devices(ocirun, make_bundle):
    b = make_bundle()
    b.linux["devices"] = [
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o600,
         "uid": 1000, "gid": 100},
        {"path": "/dev/net/tun", "type": "c", "major": 10, "minor": 200, "fileMode": 0o666},
        {"path": "/dev/myfifo", "type": "p", "fileMode": 0o640},
        {"path": "/dev/loopx", "type": "b", "major": 7, "minor": 200},
    ]
    p = run(ocirun, b, "stat -c '%n %F %t:%T %a %u %g' /dev/fuse /dev/net/tun /dev/myfifo",
            "/dev/loopx")
    assert p.stdout.splitlines() == [
        "/dev/fuse character special file a:e5 600 1000 100",
        "/dev/net/tun character special file a:c8 666 0 0",
        "/dev/myfifo fifo 0:0 640 0 0",
        "/dev/loopx block special file 7:c8 666 0 0",
    ]


def test_no_dev_mount_creates_devices_in_image_dev(ocirun, make_bundle):
    b = make_bundle()
    drop_dev_mounts(b)
    b.config["root"]["readonly"] = False
    p = run(ocirun, b, "stat -c '%F %t:%T' /dev/null; readlink /dev/ptmx")
    assert p.stdout.split("\n")[:2] == ["character special file 1:3", "pts/ptmx"]
    assert os.path.exists(os.path.join(b.rootfs, "dev", "null"))


def test_bind_dev_from_host_skips_device_setup(ocirun, make_bundle):
    b = make_bundle()
    drop_dev_mounts(b)
    mnt(b, destination="/dev", source="/dev", options=["rbind", "nosuid"])
    p = run(ocirun, b, "cat /proc/self/mountinfo; ls /dev | wc -l")
    assert mountinfo(p.stdout)["/dev"][2] == "devtmpfs"


def test_sysctls_applied(ocirun, make_bundle):
    b = make_bundle()
    b.linux["sysctl"] = {"kernel.shmmax": "123456789", "fs.mqueue.msg_max": "33",
                         "net.ipv4.ip_forward": "1", "net/ipv4/conf/lo/forwarding": "1"}
    p = run(ocirun, b, "cat /proc/sys/kernel/shmmax /proc/sys/fs/mqueue/msg_max",
            "/proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv4/conf/lo/forwarding")
    assert p.stdout.split() == ["123456789", "33", "1", "1"]
    with open("/proc/sys/kernel/shmmax") as f:
        assert f.read().strip() != "123456789"


def test_sysctl_not_namespaced_rejected_at_create(ocirun, make_bundle):
    with open("/proc/sys/kernel/core_pattern") as f:
        before = f.read()
    b = make_bundle()
    b.linux["sysctl"] = {"kernel.core_pattern": "|/tmp/pwn"}
    b.write()
    p = ocirun("create", "-b", b.path, "badsysctl")
    assert p.returncode != 0
    assert "linux.sysctl.kernel.core_pattern" in p.stderr
    with open("/proc/sys/kernel/core_pattern") as f:
        assert f.read() == before


def test_net_sysctl_without_netns_rejected(ocirun, make_bundle):
    b = make_bundle()
    b.linux["namespaces"] = [n for n in b.linux["namespaces"] if n["type"] != "network"]
    b.linux["sysctl"] = {"net.ipv4.ip_forward": "1"}
    b.write()
    p = ocirun("create", "-b", b.path, "badnet")
    assert p.returncode != 0 and "network namespace" in p.stderr


def test_cgroup_mount_with_cgroupns(ocirun, make_bundle):
    b = make_bundle()
    p = run(ocirun, b, "cat /proc/self/mountinfo; ls /sys/fs/cgroup;",
            "echo 1 > /sys/fs/cgroup/pids/x 2>/dev/null || echo RO")
    mi = mountinfo(p.stdout)
    assert "ro" in mi["/sys/fs/cgroup"][0]
    cg = [k for k in mi if k.startswith("/sys/fs/cgroup/")]
    assert cg, p.stdout
    for k in cg:
        assert "ro" in mi[k][0] and mi[k][2] in ("cgroup", "cgroup2")
        assert mi[k][1] is not None
    assert p.stdout.split()[-1] == "RO"


def test_cgroup_mount_without_cgroupns_is_own_cgroup(ocirun, make_bundle):
    b = make_bundle()
    b.linux["namespaces"] = [n for n in b.linux["namespaces"] if n["type"] != "cgroup"]
    p = run(ocirun, b, "cat /proc/self/mountinfo; echo ==; cat /sys/fs/cgroup/pids/cgroup.procs",
            "2>/dev/null || cat /sys/fs/cgroup/cgroup.procs")
    info, procs = p.stdout.split("==")
    mi = mountinfo(info)
    assert "ro" in mi["/sys/fs/cgroup"][0]
    # only the container's own cgroup is visible: it holds our processes, seen as pid 1 and
    # the shell's children
    assert "1" in procs.split()


def test_userns_devices_are_bind_mounts(ocirun, make_bundle):
    b = make_bundle()
    b.linux["namespaces"].append({"type": "user"})
    b.linux["uidMappings"] = [{"containerID": 0, "hostID": 0, "size": 65536}]
    b.linux["gidMappings"] = [{"containerID": 0, "hostID": 0, "size": 65536}]
    b.config["mounts"] = [m for m in b.config["mounts"]
                          if m["destination"] not in ("/sys", "/sys/fs/cgroup")]
    p = run(ocirun, b, "cat /proc/self/mountinfo; echo ==; stat -c '%F %t:%T' /dev/null /dev/zero;",
            "cat /proc/self/uid_map", check=False)
    if p.returncode != 0 and "user" in p.stderr and "mount" not in p.stderr:
        pytest.skip(f"user namespaces not supported by the runtime yet: {p.stderr.strip()}")
    assert p.returncode == 0, p.stderr
    info, out = p.stdout.split("==")
    mi = mountinfo(info)
    assert mi["/dev/null"][2] == "devtmpfs" and mi["/dev/zero"][2] == "devtmpfs"
    assert out.split("\n")[1:3] == ["character special file 1:3", "character special file 1:5"]


def test_idmapped_bind(ocirun, make_bundle, tmp_path):
    src = tmp_path / "idm"
    src.mkdir()
    (src / "f").write_text("x")
    os.chown(src / "f", 0, 0)
    b = make_bundle()
    mnt(b, destination="/idm", source=str(src), options=["bind", "idmap"],
        uidMappings=[{"containerID": 0, "hostID": 1000, "size": 1}],
        gidMappings=[{"containerID": 0, "hostID": 1000, "size": 1}])
    mnt(b, destination="/plain", source=str(src), options=["bind"])
    p = run(ocirun, b, "stat -c '%u:%g' /idm/f /plain/f; cat /proc/self/mountinfo")
    lines = p.stdout.splitlines()
    assert lines[:2] == ["1000:1000", "0:0"]
    assert "idmapped" in mountinfo(p.stdout)["/idm"][0]


def userns_bundle(make_bundle):
    b = make_bundle()
    b.linux["namespaces"].append({"type": "user"})
    b.linux["uidMappings"] = [{"containerID": 0, "hostID": 0, "size": 65536}]
    b.linux["gidMappings"] = [{"containerID": 0, "hostID": 0, "size": 65536}]
    b.config["mounts"] = [m for m in b.config["mounts"]
                          if m["destination"] not in ("/sys", "/sys/fs/cgroup")]
    return b


@pytest.fixture
def nosuid_src(tmp_path):
    d = tmp_path / "nosuidsrc"
    d.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "nosuid,nodev,size=1m", "tmpfs", str(d)],
                   check=True)
    (d / "f").write_text("x")
    yield d
    subprocess.run(["umount", "-l", str(d)], check=True)


def test_userns_bind_keeps_locked_flags(ocirun, make_bundle, nosuid_src):
    """In a user namespace, flags of a host mount are locked: asking for "suid"/"dev" must not
    fail the container (runc keeps the locked flags) and must not clear them."""
    b = userns_bundle(make_bundle)
    b.config["mounts"].append({"destination": "/locked", "source": str(nosuid_src),
                               "options": ["bind", "suid", "dev", "ro"]})
    p = run(ocirun, b, "cat /proc/self/mountinfo; cat /locked/f")
    mi = mountinfo(p.stdout)["/locked"]
    assert {"nosuid", "nodev", "ro"} <= mi[0]


def test_ridmap_applies_to_submounts(ocirun, make_bundle, vol_with_submount):
    v = vol_with_submount
    os.chown(v / "sub" / "insub", 0, 0)
    b = make_bundle()
    b.config["mounts"].append({
        "destination": "/ridm", "source": str(v), "options": ["rbind", "ridmap"],
        "uidMappings": [{"containerID": 0, "hostID": 2000, "size": 1}],
        "gidMappings": [{"containerID": 0, "hostID": 2000, "size": 1}]})
    b.config["mounts"].append({
        "destination": "/idm", "source": str(v), "options": ["rbind", "idmap"],
        "uidMappings": [{"containerID": 0, "hostID": 2000, "size": 1}],
        "gidMappings": [{"containerID": 0, "hostID": 2000, "size": 1}]})
    p = run(ocirun, b, "stat -c %u /ridm/sub/insub /idm/sub/insub")
    assert p.stdout.split() == ["2000", "0"]


def test_tmpcopyup(ocirun, make_bundle):
    b = make_bundle()
    os.makedirs(os.path.join(b.rootfs, "cu", "sub"))
    with open(os.path.join(b.rootfs, "cu", "sub", "f"), "w") as f:
        f.write("content\n")
    os.chmod(os.path.join(b.rootfs, "cu", "sub"), 0o751)
    os.chown(os.path.join(b.rootfs, "cu", "sub", "f"), 1000, 100)
    os.symlink("sub/f", os.path.join(b.rootfs, "cu", "link"))
    os.symlink("/etc/passwd", os.path.join(b.rootfs, "cu", "abs"))
    mnt(b, destination="/cu", type="tmpfs", source="tmpfs", options=["tmpcopyup", "mode=755"])
    p = run(ocirun, b, "cat /proc/self/mountinfo; echo ==; cat /cu/link;",
            "stat -c '%a %u %g' /cu/sub",
            "/cu/sub/f; readlink /cu/abs; echo new > /cu/new; cat /cu/new")
    info, out = p.stdout.split("==")
    assert mountinfo(info)["/cu"][2] == "tmpfs"
    assert out.split("\n")[1:] == ["content", "751 0 0", "644 1000 100", "/etc/passwd", "new", ""]
    # writes went to the tmpfs, not the image
    assert not os.path.exists(os.path.join(b.rootfs, "cu", "new"))


def test_cgroup_mount_on_a_cgroup2_host(ocirun, make_bundle):
    """A pure cgroup v2 host, simulated in a private mount namespace (the host's mounts are
    untouched): the hierarchy mounted at /sys/fs/cgroup is the unified one, so the container
    gets one read-only cgroup2 mount of its cgroup namespace."""
    from helpers import OCIRUN
    b = make_bundle()
    b.linux.pop("resources", None)
    b.process["args"] = ["sh", "-c", "cat /proc/self/mountinfo; ls /sys/fs/cgroup"]
    b.write()
    script = ("mount --make-rprivate / && mount -t cgroup2 none /sys/fs/cgroup && "
              f"exec {OCIRUN} --root {ocirun.root} run -b {b.path} v2host")
    p = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    mi = mountinfo(p.stdout)
    assert mi["/sys/fs/cgroup"][2] == "cgroup2" and "ro" in mi["/sys/fs/cgroup"][0]
    assert not [k for k in mi if k.startswith("/sys/fs/cgroup/")]
    assert "cgroup.procs" in p.stdout.split()
