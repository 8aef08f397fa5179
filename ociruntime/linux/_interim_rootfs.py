"""INTERIM (replaced by ociruntime.linux.rootfs from the rootfs branch): just enough mounting
to exercise the create protocol end to end. Path strings, no confinement: not for release."""
import os

from . import syscalls as sc

_F = {"ro": sc.MS_RDONLY, "nosuid": sc.MS_NOSUID, "nodev": sc.MS_NODEV, "noexec": sc.MS_NOEXEC,
      "bind": sc.MS_BIND, "rbind": sc.MS_BIND | sc.MS_REC, "relatime": sc.MS_RELATIME,
      "strictatime": sc.MS_STRICTATIME, "noatime": sc.MS_NOATIME}
_IGN = {"rw", "suid", "dev", "exec", "private", "rprivate", "slave", "rslave", "newinstance"}


def validate(spec):
    pass


def prepare(spec, no_pivot=False):
    root = spec.root.path
    sc.mount(None, "/", None, sc.MS_SLAVE | sc.MS_REC)
    sc.mount(root, root, None, sc.MS_BIND | sc.MS_REC)
    for m in spec.mounts:
        flags, data = 0, []
        for o in m.options:
            if o in _F:
                flags |= _F[o]
            elif o not in _IGN:
                data.append(o)
        typ = m.type
        if m.destination == "/sys/fs/cgroup" and typ == "cgroup":
            continue
        if typ in (None, "none", "bind"):
            flags |= sc.MS_BIND
        target = root + m.destination
        src = m.source
        if flags & sc.MS_BIND and src and os.path.isfile(src):
            if not os.path.exists(target):
                open(target, "a").close()
        else:
            os.makedirs(target, exist_ok=True)
        try:
            sc.mount(src, target, typ if not flags & sc.MS_BIND else None,
                     flags & ~sc.MS_RDONLY if flags & sc.MS_BIND else flags,
                     ",".join(data) or None)
        except OSError as e:
            if typ == "sysfs" and e.errno == 1:  # no netns: bind the host's sysfs
                sc.mount("/sys", target, None, sc.MS_BIND | sc.MS_REC)
            else:
                raise
        if flags & sc.MS_BIND and flags & sc.MS_RDONLY:
            sc.mount(None, target, None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY | flags)
    dev = root + "/dev"
    for name in ("null", "zero", "full", "random", "urandom", "tty"):
        p = f"{dev}/{name}"
        if not os.path.exists(p):
            open(p, "a").close()
            sc.mount(f"/dev/{name}", p, None, sc.MS_BIND)
    for name, tgt in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                      ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2"),
                      ("ptmx", "pts/ptmx")):
        try:
            os.symlink(tgt, f"{dev}/{name}")
        except FileExistsError:
            pass
    os.chdir(root)
    if no_pivot:
        sc.mount(root, "/", None, sc.MS_MOVE)
        os.chroot(".")
    else:
        sc.pivot_root(".", ".")
        sc.umount2(".", sc.MNT_DETACH)
    os.chdir("/")


def finish(spec):
    for p in spec.linux.masked_paths:
        if not os.path.exists(p):
            continue
        if os.path.isdir(p):
            sc.mount("tmpfs", p, "tmpfs", sc.MS_RDONLY)
        else:
            sc.mount("/dev/null", p, None, sc.MS_BIND)
    for p in spec.linux.readonly_paths:
        if os.path.exists(p):
            sc.mount(p, p, None, sc.MS_BIND | sc.MS_REC)
            sc.mount(None, p, None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY | sc.MS_REC)
    if spec.root.readonly:
        sc.mount(None, "/", None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY)
