"""Device nodes and the standard /dev symlinks, created confined inside the rootfs.

Every node is created with ``mknodat`` relative to the fd of its (confined) parent directory,
owned with ``fchownat(AT_SYMLINK_NOFOLLOW)``; an existing entry of the wrong kind (a symlink
planted by the image, CVE-2025-31133 / crun CVE-2026-88264) is unlinked from that directory
first. In a user namespace, where mknod is not allowed, the host device is bind-mounted onto
an empty file instead, after checking with fstat that the host path really is that device.
"""
from .. import osfast as os
import _stat as stat  # the C module stat.py re-exports (stat.py: 0.4 M instructions)

from ..errors import ConfigError
from . import paths
from . import syscalls as sc

# runc's default devices: (name, type, major, minor), mode 0666, root-owned
DEFAULT_DEVICES = (("null", "c", 1, 3), ("zero", "c", 1, 5), ("full", "c", 1, 7),
                   ("random", "c", 1, 8), ("urandom", "c", 1, 9), ("tty", "c", 5, 0))
SYMLINKS = (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2"))
_TYPES = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


class Node:
    __slots__ = ("path", "type", "major", "minor", "file_mode", "uid", "gid")

    def __init__(self, path, type, major, minor, file_mode=0o666, uid=0, gid=0):
        self.path, self.type, self.major, self.minor = path, type, major, minor
        self.file_mode, self.uid, self.gid = file_mode, uid, gid


def validate(devices, where="linux.devices"):
    for i, d in enumerate(devices or ()):
        f = f"{where}[{i}]"
        if d.type not in _TYPES:
            raise ConfigError(f"{f}.type", f'unknown device type "{d.type}"')
        if not d.path or not d.path.startswith("/"):
            raise ConfigError(f"{f}.path", "must be an absolute path")
        if not paths.clean(d.path) or paths.clean(d.path) == "dev":
            raise ConfigError(f"{f}.path", f"invalid device path {d.path}")
        if d.type != "p" and (d.major is None or d.minor is None):
            raise ConfigError(f"{f}", "major and minor are required for type " + d.type)


def _want(d):
    return (_TYPES[d.type], 0 if d.type == "p" else os.makedev(d.major, d.minor))


def _is(st, d):
    fmt, rdev = _want(d)
    return stat.S_IFMT(st.st_mode) == fmt and (d.type == "p" or st.st_rdev == rdev)


def create(rootfd, d, bind=False):
    """Create device ``d`` (Node-like) inside the rootfs."""
    rel = paths.clean(d.path)
    parent = paths.mkdir_all(rootfd, os.path.dirname(rel))
    name = os.path.basename(rel)
    mode = d.file_mode if d.file_mode is not None else 0o666
    try:
        try:
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            st = None
        if st is not None and _is(st, d):
            return       # already that device (maybe a bind of a host node): never chown it
        elif st is not None and stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(21, "is a directory", d.path)
        elif st is not None and bind and stat.S_ISREG(st.st_mode):
            pass                                 # an empty file to bind over
        elif st is not None:
            os.unlink(name, dir_fd=parent)       # symlink or wrong node: replace, in place
            st = None
        if bind:
            _bind_host(parent, name, d)
            return
        fmt, rdev = _want(d)
        old = os.umask(0)
        try:
            os.mknod(name, fmt | (mode & 0o7777), rdev, dir_fd=parent)
        finally:
            os.umask(old)
        # the node we just made, in a directory we hold by fd; never follows a symlink
        os.chown(name, d.uid or 0, d.gid or 0, dir_fd=parent, follow_symlinks=False)
    finally:
        os.close(parent)


def _bind_host(parent, name, d):
    """User namespace: bind the host's device node (verified) onto an empty file."""
    src = os.open(d.path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        st = os.fstat(src)
        if not _is(st, d):
            raise OSError(19, "host path is not the configured device", d.path)
        try:
            fd = sc.openat2(parent, name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW,
                            0o644, paths.STRICT)
            os.close(fd)
        except FileExistsError:
            pass
        tgt = sc.openat2(parent, name, os.O_PATH, 0, paths.STRICT)
        try:
            if not stat.S_ISREG(os.fstat(tgt).st_mode):
                raise OSError(17, "not a regular file to bind a device onto", d.path)
            mfd = sc.open_tree(src, "", sc.OPEN_TREE_CLONE | sc.OPEN_TREE_CLOEXEC |
                               sc.AT_EMPTY_PATH, what=d.path)
            try:
                sc.move_mount(mfd, tgt, what=d.path)
            finally:
                os.close(mfd)
        finally:
            os.close(tgt)
    finally:
        os.close(src)


def setup_dev(rootfd, devices, bind=False):
    """The default devices, ``linux.devices`` and the /dev symlinks."""
    for name, t, ma, mi in DEFAULT_DEVICES:
        if any(paths.clean(d.path) == "dev/" + name for d in devices or ()):
            continue
        create(rootfd, Node("/dev/" + name, t, ma, mi), bind)
    for d in devices or ():
        create(rootfd, d, bind)
    devfd = paths.mkdir_all(rootfd, "/dev")
    try:
        links = list(SYMLINKS)
        if os.path.exists("/proc/kcore"):
            links.append(("core", "/proc/kcore"))
        for name, target in links:
            try:
                os.symlink(target, name, dir_fd=devfd)
            except FileExistsError:
                pass
        # /dev/ptmx -> pts/ptmx (the devpts instance's ptmx); replace what the image had
        try:
            st = os.stat("ptmx", dir_fd=devfd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                raise IsADirectoryError(21, "is a directory", "/dev/ptmx")
            os.unlink("ptmx", dir_fd=devfd)
        except FileNotFoundError:
            pass
        os.symlink("pts/ptmx", "ptmx", dir_fd=devfd)
    finally:
        os.close(devfd)
