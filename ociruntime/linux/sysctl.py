"""linux.sysctl: validation (runc's rules: only namespaced keys) and writing through a procfs
handle verified with fstatfs == PROC_SUPER_MAGIC (CVE-2019-16884, CVE-2025-52881)."""
from .. import osfast as os

from ..errors import ConfigError, SetupError
from . import syscalls as sc

# IPC namespace sysctls (besides fs.mqueue.*)
IPC_KEYS = frozenset(("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
                      "kernel.shmall", "kernel.shmmax", "kernel.shmmni",
                      "kernel.shm_rmid_forced"))
UTS_KEYS = frozenset(("kernel.hostname", "kernel.domainname"))


def _has_ns(namespaces, t):
    for n in namespaces or ():
        if n.type == t:
            return n
    return None


def _same_as_host_ns(path, t):
    try:
        a, b = os.stat(path), os.stat(f"/proc/self/ns/{t}")
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def validate(sysctls, namespaces, field="linux.sysctl"):
    """Reject sysctls that are not isolated by a namespace the container gets."""
    for key in sysctls or {}:
        f = f"{field}.{key}"
        comps = key_path(key).split("/")
        if any(c in ("", ".", "..") for c in comps) or "\0" in key:
            raise ConfigError(f, f"invalid sysctl name {key!r}")
        k = key.replace("/", ".")
        if k in IPC_KEYS or k.startswith("fs.mqueue."):
            if not _has_ns(namespaces, "ipc"):
                raise ConfigError(f, f"sysctl {key!r} is not allowed: the container "
                                     "does not have its own ipc namespace")
        elif k.startswith("net."):
            ns = _has_ns(namespaces, "network")
            if ns is None:
                raise ConfigError(f, f"sysctl {key!r} is not allowed: the container "
                                     "does not have its own network namespace")
            if ns.path and _same_as_host_ns(ns.path, "net"):
                raise ConfigError(f, f"sysctl {key!r} is not allowed in the host network "
                                     "namespace")
        elif k in UTS_KEYS:
            if not _has_ns(namespaces, "uts"):
                raise ConfigError(f, f"sysctl {key!r} is not allowed: the container "
                                     "does not have its own uts namespace")
        else:
            raise ConfigError(f, f"sysctl {key!r} is not in a separate kernel namespace")


def key_path(key):
    """kernel.shmmax -> kernel/shmmax; keys written with "/" are taken as they are
    (net/ipv4/conf/eth0.100/forwarding)."""
    return key if "/" in key else key.replace(".", "/")


def open_proc(path="/proc"):
    """fd of a directory verified to be the root of a procfs."""
    fd = os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    verify_proc(fd, path)
    return fd


def verify_proc(fd, what="/proc"):
    t = sc.fstatfs_type(fd)
    if t != sc.PROC_SUPER_MAGIC:
        raise SetupError(f"{what} is not on procfs (f_type {t:#x}): refusing to use it")


def apply(sysctls, proc_fd=None):
    """Write each sysctl via ``proc_fd`` (a procfs root fd; opened and verified from /proc if
    None). Every file is opened beneath it without following any symlink or crossing a mount,
    and checked to be on procfs again before the write."""
    if not sysctls:
        return
    own = proc_fd is None
    if own:
        proc_fd = open_proc()
    else:
        verify_proc(proc_fd)
    try:
        for key, value in sysctls.items():
            rel = "sys/" + key_path(key)
            try:
                fd = sc.openat2(proc_fd, rel, os.O_WRONLY, 0,
                                sc.RESOLVE_BENEATH | sc.RESOLVE_NO_SYMLINKS |
                                sc.RESOLVE_NO_MAGICLINKS | sc.RESOLVE_NO_XDEV)
            except OSError as e:
                raise SetupError(f"sysctl {key}: open /proc/{rel}: {e.strerror}") from None
            try:
                verify_proc(fd, f"/proc/{rel}")
                os.write(fd, str(value).encode())
            except OSError as e:
                raise SetupError(f"sysctl {key}={value}: {e.strerror}") from None
            finally:
                os.close(fd)
    finally:
        if own:
            os.close(proc_fd)
