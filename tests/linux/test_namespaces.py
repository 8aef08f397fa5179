"""Namespaces: all eight created, joined by path, user namespace id maps, time offsets,
--no-pivot; features tell the truth about them."""
import json
import os
import subprocess

import pytest

from helpers import OCIRUN

ALL = ["pid", "network", "ipc", "uts", "mount", "cgroup", "user", "time"]
PROC = {"pid": "pid", "network": "net", "ipc": "ipc", "uts": "uts", "mount": "mnt",
        "cgroup": "cgroup", "user": "user", "time": "time"}


def _userns(b, host=100000, size=65536):
    # the mapped root must be able to reach the rootfs (runc needs the same): o+x on parents
    d = b.path
    while d != "/":
        os.chmod(d, os.stat(d).st_mode | 0o001)
        d = os.path.dirname(d)
    b.linux["namespaces"].append({"type": "user"})
    b.linux["uidMappings"] = [{"containerID": 0, "hostID": host, "size": size}]
    b.linux["gidMappings"] = [{"containerID": 0, "hostID": host, "size": size}]


def test_all_eight_namespaces_are_new(ocirun, make_bundle):
    b = make_bundle(["sh", "-c", "for n in pid net ipc uts mnt cgroup user time; do "
                     "readlink /proc/self/ns/$n; done"])
    b.linux["namespaces"] = [{"type": t} for t in ALL if t != "user"]
    _userns(b)
    b.linux.setdefault("sysctl", {})
    b.write()
    p = ocirun("run", "-b", b.path, "ns8")
    assert p.returncode == 0, p.stderr
    inside = p.stdout.split()
    host = [os.readlink(f"/proc/self/ns/{PROC[t]}") for t in
            ("pid", "network", "ipc", "uts", "mount", "cgroup", "user", "time")]
    assert len(inside) == 8
    for i, h in zip(inside, host):
        assert i != h, (i, h)


def test_user_namespace_mappings(ocirun, make_bundle):
    b = make_bundle(["sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; id -u; "
                     "stat -c %u /bin/busybox"])
    _userns(b)
    b.write()
    p = ocirun("run", "-b", b.path, "uns")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].split() == ["0", "100000", "65536"]
    assert lines[1].split() == ["0", "100000", "65536"]
    assert lines[2] == "0"
    assert lines[3] == "65534"   # host root's files are unmapped: nobody


def test_join_network_namespace_by_path(ocirun, make_bundle):
    name = f"ocirun-test-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        b = make_bundle(["readlink", "/proc/self/ns/net"])
        for n in b.linux["namespaces"]:
            if n["type"] == "network":
                n["path"] = f"/var/run/netns/{name}"
        b.write()
        p = ocirun("run", "-b", b.path, "joinnet")
        assert p.returncode == 0, p.stderr
        assert p.stdout.strip() == f"net:[{os.stat(f'/var/run/netns/{name}').st_ino}]"
        assert p.stdout.strip() != os.readlink("/proc/self/ns/net")
    finally:
        subprocess.run(["ip", "netns", "del", name])


def test_join_missing_namespace_path_fails_cleanly(ocirun, make_bundle):
    b = make_bundle()
    for n in b.linux["namespaces"]:
        if n["type"] == "network":
            n["path"] = "/var/run/netns/does-not-exist"
    b.write()
    p = ocirun("create", "-b", b.path, "nons")
    assert p.returncode == 1 and "does-not-exist" in p.stderr
    assert ocirun.ids() == []


def test_time_namespace_offsets(ocirun, make_bundle):
    b = make_bundle(["cat", "/proc/uptime"])
    b.linux["namespaces"].append({"type": "time"})
    b.linux["timeOffsets"] = {"boottime": {"secs": 86400 * 400, "nanosecs": 0}}
    b.write()
    p = ocirun("run", "-b", b.path, "tns")
    assert p.returncode == 0, p.stderr
    assert float(p.stdout.split()[0]) > 86400 * 400


def test_hostname_and_domainname(ocirun, make_bundle):
    b = make_bundle(["sh", "-c", "hostname; cat /proc/sys/kernel/domainname"])
    b.config["hostname"] = "box1"
    b.config["domainname"] = "example.test"
    b.write()
    p = ocirun("run", "-b", b.path, "uts")
    assert p.stdout.split() == ["box1", "example.test"]


def test_no_pivot(ocirun, make_bundle):
    b = make_bundle(["sh", "-c", "echo ok; ls /"])
    p = ocirun("run", "--no-pivot", "-b", b.path, "np")
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("ok\n") and "bin" in p.stdout


def test_features_document():
    out = subprocess.run([OCIRUN, "features"], capture_output=True, text=True, check=True).stdout
    f = json.loads(out)
    assert f["ociVersionMin"] == "1.0.0" and f["ociVersionMax"].startswith("1.")
    assert set(f["linux"]["namespaces"]) == set(["cgroup", "ipc", "mount", "network", "pid",
                                                 "time", "user", "uts"])
    assert "rro" in f["mountOptions"] and "idmap" in f["mountOptions"]
    assert f["linux"]["mountExtensions"]["idmap"]["enabled"] is True
    assert f["linux"]["seccomp"]["enabled"] is True
    assert "SCMP_ACT_ERRNO" in f["linux"]["seccomp"]["actions"]
    assert f["linux"]["apparmor"]["enabled"] is False  # none on this host
    assert "CAP_SYS_ADMIN" in f["linux"]["capabilities"]
    assert set(f["hooks"]) >= {"prestart", "createRuntime", "poststop"}
