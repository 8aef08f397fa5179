"""Confined path resolution inside a container's rootfs.

Every path inside the rootfs is resolved from a rootfs dirfd with
``openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)``: ``..`` and absolute symlinks are clamped
at the rootfs, ``/proc/self/fd/N``-style magic links are refused. Missing directories and files
are created one component at a time relative to the fd of their parent, with
``O_NOFOLLOW``/``O_EXCL``/``RESOLVE_NO_SYMLINKS``, and the result is handed back as an ``O_PATH``
fd: callers mount onto that fd, never onto a path string (CVE-2021-30465, CVE-2024-45310).
"""
from .. import osfast as os
import _stat as stat  # the C module stat.py re-exports (stat.py: 0.4 M instructions)

from . import syscalls as sc

IN_ROOT = sc.RESOLVE_IN_ROOT | sc.RESOLVE_NO_MAGICLINKS
# one component below a directory fd, no symlink at all (used right after we created it)
STRICT = sc.RESOLVE_BENEATH | sc.RESOLVE_NO_SYMLINKS | sc.RESOLVE_NO_MAGICLINKS
# whole path inside the root with no symlink anywhere ("ordinary directory" checks)
NO_SYMLINKS = sc.RESOLVE_IN_ROOT | sc.RESOLVE_NO_SYMLINKS | sc.RESOLVE_NO_MAGICLINKS
O_PATH_DIR = os.O_PATH | os.O_DIRECTORY


def clean(path):
    """Lexically cleaned path relative to the rootfs ("" for the root itself); ``..`` cannot
    climb above the root."""
    p = os.path.normpath("/" + path)
    return p.lstrip("/")


def open_root(path):
    """O_PATH fd of a directory given by a host path (the rootfs itself, trusted config)."""
    return os.open(path, O_PATH_DIR | os.O_CLOEXEC)


def resolve(rootfd, path, flags=os.O_PATH, resolve_flags=IN_ROOT):
    """fd of ``path`` resolved inside rootfd (raises FileNotFoundError etc.)."""
    return sc.openat2(rootfd, clean(path) or ".", flags, 0, resolve_flags)


def exists(rootfd, path):
    try:
        os.close(resolve(rootfd, path))
        return True
    except FileNotFoundError:
        return False


def mkdir_all(rootfd, path, mode=0o755):
    """O_PATH fd of directory ``path`` inside rootfd, creating missing components."""
    rel = clean(path)
    cur = sc.openat2(rootfd, ".", O_PATH_DIR, 0, IN_ROOT)
    if not rel:
        return cur
    comps = rel.split("/")
    try:
        for i, c in enumerate(comps):
            prefix = "/".join(comps[:i + 1])
            try:
                fd = sc.openat2(rootfd, prefix, O_PATH_DIR, 0, IN_ROOT)
            except FileNotFoundError:
                try:
                    os.mkdir(c, mode, dir_fd=cur)
                except FileExistsError:
                    pass   # raced, or a dangling symlink: the strict open below decides
                try:
                    fd = sc.openat2(cur, c, O_PATH_DIR, 0, STRICT)
                except OSError as e:
                    if e.errno != 40:   # ELOOP
                        raise
                    raise OSError(e.errno, "is a symlink to a path missing in the rootfs: "
                                  "refusing to create through it", "/" + prefix) from None
            os.close(cur)
            cur = fd
    except BaseException:
        os.close(cur)
        raise
    return cur


def create_file(rootfd, path, mode=0o644):
    """O_PATH fd of ``path`` inside rootfd (any type if it exists), creating an empty regular
    file (and its parent directories) if it is missing."""
    try:
        return resolve(rootfd, path)
    except FileNotFoundError:
        pass
    rel = clean(path)
    if not rel:
        raise IsADirectoryError(21, "is the root directory", path)
    parent = mkdir_all(rootfd, os.path.dirname(rel))
    name = os.path.basename(rel)
    try:
        try:
            fd = sc.openat2(parent, name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW,
                            mode, STRICT)
            os.close(fd)
        except FileExistsError:
            pass
        return sc.openat2(parent, name, os.O_PATH, 0, STRICT)
    finally:
        os.close(parent)


def mount_target(rootfd, path, is_dir, ordinary=False):
    """O_PATH fd to mount onto at ``path``: an existing inode, or a created dir/file.
    ``ordinary``: the path may not go through any symlink (/proc, /sys destinations)."""
    if ordinary:
        try:
            fd = resolve(rootfd, path, os.O_PATH, NO_SYMLINKS)
        except FileNotFoundError:
            fd = None
        except OSError as e:
            if e.errno == 40:   # ELOOP: a symlink on the way
                raise OSError(e.errno, "must be mounted on ordinary directory", path) from None
            raise
        if fd is not None:
            if not stat.S_ISDIR(os.fstat(fd).st_mode):
                os.close(fd)
                raise OSError(20, "must be mounted on ordinary directory", path)
            return fd
        fd = mkdir_all(rootfd, path)
        os.close(fd)
        try:
            return resolve(rootfd, path, O_PATH_DIR, NO_SYMLINKS)
        except OSError as e:
            if e.errno == 40:
                raise OSError(e.errno, "must be mounted on ordinary directory", path) from None
            raise
    if is_dir:
        return mkdir_all(rootfd, path)
    return create_file(rootfd, path)


def fd_path(fd):
    """What an fd points at, for messages (``/proc/self/fd/N`` link text)."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return f"fd {fd}"
