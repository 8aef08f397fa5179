"""Checkpoint/restore of a container with a `cgroup` mount and no cgroup namespace (what podman
and docker give a container on a cgroup v1 host): its /sys/fs/cgroup/* are bind mounts of the
container's own cgroup directories, external to CRIU; restore binds the new container's."""
import os
import time

from test_checkpoint import COUNTER, Piped, _cgroup_gone, _count, _pid, _wait_count  # noqa: F401
from test_checkpoint import criu  # noqa: F401  (fixture)

CGROUP_MOUNT = {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}


def test_cgroup_mount_without_cgroupns(ocirun, make_bundle, tmp_path, criu):  # noqa: F811
    b = make_bundle(args=COUNTER)
    b.config["mounts"].append(dict(CGROUP_MOUNT))
    b.linux["namespaces"] = [n for n in b.linux["namespaces"] if n["type"] != "cgroup"]
    b.linux.setdefault("resources", {})["memory"] = {"limit": 64 << 20}
    b.write()
    out = Piped(ocirun, tmp_path, "run", "-d", "-b", b.path, "criu-cgm").check()
    _wait_count(_pid(ocirun, "criu-cgm"), 2)
    img = tmp_path / "img"
    ocirun.ok("checkpoint", "--leave-running", "--image-path", img, "criu-cgm")
    b.linux["resources"]["memory"] = {"limit": 48 << 20}
    b.write()
    out2 = Piped(ocirun, tmp_path, "restore", "-d", "--image-path", img, "-b", b.path,
                 "criu-cgm2").check()
    try:
        pid = _pid(ocirun, "criu-cgm2")
        first = _count(pid)
        _wait_count(pid, first + 3)
        # the copy sees its own cgroup (the new limit) at /sys/fs/cgroup/memory
        p = ocirun.ok("exec", "criu-cgm2", "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes")
        assert int(p.stdout) == 48 << 20
        p = ocirun.ok("exec", "criu-cgm", "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes")
        assert int(p.stdout) == 64 << 20
        _wait_count(_pid(ocirun, "criu-cgm"), _count(_pid(ocirun, "criu-cgm")) + 2)
    finally:
        out.close()
        out2.close()
        for cid in ("criu-cgm", "criu-cgm2"):
            ocirun("delete", "--force", cid)
    time.sleep(0.1)
    assert _cgroup_gone("criu-cgm") and _cgroup_gone("criu-cgm2")


def test_restore_creates_missing_mountpoints(ocirun, make_bundle, tmp_path, criu):  # noqa: F811
    """A restore onto a fresh copy of the rootfs (podman's --import, a migration) lacks the
    mount points the runtime created at `run`: restore creates them (bind file, bind dir)."""
    src = tmp_path / "extra"
    src.mkdir()
    (src / "f").write_text("bound\n")
    binds = [{"destination": "/extra-dir", "type": "bind", "source": str(src),
              "options": ["rbind", "ro"]},
             {"destination": "/etc/extra-file", "type": "bind", "source": str(src / "f"),
              "options": ["rbind", "ro"]}]
    b = make_bundle(args=COUNTER)
    b.config["mounts"] += binds
    b.write()
    out = Piped(ocirun, tmp_path, "run", "-d", "-b", b.path, "criu-mp").check()
    _wait_count(_pid(ocirun, "criu-mp"), 2)
    img = tmp_path / "img"
    ocirun.ok("checkpoint", "--image-path", img, "criu-mp")
    out.close()
    b2 = make_bundle(args=COUNTER)           # a fresh rootfs without those mount points
    assert not os.path.exists(os.path.join(b2.rootfs, "extra-dir"))
    assert not os.path.exists(os.path.join(b2.rootfs, "etc/extra-file"))
    b2.config["mounts"] += binds
    b2.write()
    out = Piped(ocirun, tmp_path, "restore", "-d", "--image-path", img, "-b", b2.path,
                "criu-mp").check()
    try:
        pid = _pid(ocirun, "criu-mp")
        _wait_count(pid, _count(pid) + 2)
        p = ocirun.ok("exec", "criu-mp", "cat", "/etc/extra-file", "/extra-dir/f")
        assert p.stdout == "bound\nbound\n"
    finally:
        out.close()
        ocirun("delete", "--force", "criu-mp")
