"""Every raw syscall and libc call ocirun makes, in one place.

The rest of the code calls these named functions; each raises ``OSError(errno, strerror,
path)`` on failure so messages name what failed. Syscalls without a glibc wrapper go through
``syscall(2)`` with their x86_64 numbers from ``NR``.

Areas add their wrappers in their own section below (keep sections sorted by area).
"""
import ctypes
import os

libc = ctypes.CDLL("libc.so.6", use_errno=True)
_syscall = libc.syscall
_syscall.restype = ctypes.c_long

# x86_64 syscall numbers (arch/x86/entry/syscalls/syscall_64.tbl)
NR = {
    "pivot_root": 155,
    "setns": 308,
    "capget": 125,
    "capset": 126,
    "ioprio_set": 251,
    "seccomp": 317,
    "bpf": 321,
    "open_tree": 428,
    "move_mount": 429,
    "fsopen": 430,
    "fsconfig": 431,
    "fsmount": 432,
    "pidfd_open": 434,
    "clone3": 435,
    "close_range": 436,
    "openat2": 437,
    "pidfd_getfd": 438,
    "mount_setattr": 442,
    "pidfd_send_signal": 424,
}

# namespaces (sched.h)
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEWTIME = 0x00000080

# prctl
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_GET_DUMPABLE = 3
PR_SET_KEEPCAPS = 8
PR_SET_NAME = 15
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_SECCOMP = 22
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
PR_SET_CHILD_SUBREAPER = 36
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4


def _check(ret, what=None):
    if ret == -1:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), what) if what is not None else OSError(e, os.strerror(e))
    return ret


def syscall(name, *args, what=None):
    return _check(_syscall(NR[name], *args), what)


def _b(s):
    return None if s is None else (s.encode() if isinstance(s, str) else s)


# ---------------------------------------------------------------- process and namespaces

def unshare(flags):
    _check(libc.unshare(ctypes.c_int(flags)), "unshare")


def setns(fd, nstype=0, what=None):
    _check(libc.setns(ctypes.c_int(fd), ctypes.c_int(nstype)), what or "setns")


def prctl(option, arg2=0, arg3=0, arg4=0, arg5=0):
    return _check(libc.prctl(ctypes.c_int(option), ctypes.c_ulong(arg2), ctypes.c_ulong(arg3),
                             ctypes.c_ulong(arg4), ctypes.c_ulong(arg5)), "prctl")


def set_dumpable(on):
    prctl(PR_SET_DUMPABLE, 1 if on else 0)


def set_no_new_privs():
    prctl(PR_SET_NO_NEW_PRIVS, 1)


def set_pdeathsig(sig):
    prctl(PR_SET_PDEATHSIG, sig)


def set_child_subreaper(on=True):
    prctl(PR_SET_CHILD_SUBREAPER, 1 if on else 0)


def sethostname(name):
    b = _b(name)
    _check(libc.sethostname(b, ctypes.c_size_t(len(b))), "sethostname")


def setdomainname(name):
    b = _b(name)
    _check(libc.setdomainname(b, ctypes.c_size_t(len(b))), "setdomainname")


def personality(persona):
    r = libc.personality(ctypes.c_ulong(persona))
    return _check(r, "personality")


def ioprio_set(which, who, ioprio):
    syscall("ioprio_set", ctypes.c_int(which), ctypes.c_int(who), ctypes.c_int(ioprio),
            what="ioprio_set")


def pidfd_open(pid, flags=0):
    return syscall("pidfd_open", ctypes.c_int(pid), ctypes.c_uint(flags), what="pidfd_open")


def pidfd_send_signal(pidfd, sig):
    syscall("pidfd_send_signal", ctypes.c_int(pidfd), ctypes.c_int(sig), None,
            ctypes.c_uint(0), what="pidfd_send_signal")


def close_range(first, last=0xFFFFFFFF, flags=0):
    """CLOSE_RANGE_CLOEXEC = 4 marks instead of closing."""
    syscall("close_range", ctypes.c_uint(first), ctypes.c_uint(last), ctypes.c_uint(flags),
            what="close_range")


CLOSE_RANGE_CLOEXEC = 4


# ---------------------------------------------------------------- mounts and paths

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25
MNT_DETACH = 2
MNT_FORCE = 1
UMOUNT_NOFOLLOW = 8


def mount(source, target, fstype, flags=0, data=None):
    _check(libc.mount(_b(source), _b(target), _b(fstype), ctypes.c_ulong(flags), _b(data)),
           target if isinstance(target, str) else _b(target).decode(errors="replace"))


def umount2(target, flags=0):
    _check(libc.umount2(_b(target), ctypes.c_int(flags)), target)


def pivot_root(new_root, put_old):
    syscall("pivot_root", _b(new_root), _b(put_old), what=new_root)


# openat2(2)
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64),
                ("resolve", ctypes.c_uint64)]


def openat2(dirfd, path, flags, mode=0, resolve=RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS):
    how = _OpenHow(flags | os.O_CLOEXEC, mode, resolve)
    return syscall("openat2", ctypes.c_int(dirfd), _b(path), ctypes.byref(how),
                   ctypes.c_size_t(ctypes.sizeof(how)), what=path)


# ---------------------------------------------------------------- credentials

class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


_CAP_V3 = 0x20080522


def capset(effective, permitted, inheritable):
    h = _CapHeader(_CAP_V3, 0)
    d = (_CapData * 2)()
    for i, shift in ((0, 0), (1, 32)):
        d[i].effective = (effective >> shift) & 0xFFFFFFFF
        d[i].permitted = (permitted >> shift) & 0xFFFFFFFF
        d[i].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    syscall("capset", ctypes.byref(h), d, what="capset")


def capget(pid=0):
    h = _CapHeader(_CAP_V3, pid)
    d = (_CapData * 2)()
    syscall("capget", ctypes.byref(h), d, what="capget")
    return tuple(d[0].__getattribute__(f) | d[1].__getattribute__(f) << 32
                 for f in ("effective", "permitted", "inheritable"))


def setgroups(gids):
    arr = (ctypes.c_uint32 * max(1, len(gids)))(*gids)
    _check(libc.setgroups(ctypes.c_size_t(len(gids)), arr), "setgroups")


# ---------------------------------------------------------------- seccomp

# seccomp(2) operations and filter flags (linux/seccomp.h)
SECCOMP_SET_MODE_FILTER = 1
SECCOMP_GET_ACTION_AVAIL = 2
SECCOMP_FILTER_FLAG_TSYNC = 1
SECCOMP_FILTER_FLAG_LOG = 2
SECCOMP_FILTER_FLAG_SPEC_ALLOW = 4
SECCOMP_FILTER_FLAG_NEW_LISTENER = 8
SECCOMP_FILTER_FLAG_TSYNC_ESRCH = 16
SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV = 32


class SockFprog(ctypes.Structure):
    """struct sock_fprog: ``len`` instructions of 8 bytes each at ``filter``."""
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def seccomp_set_mode_filter(prog, flags=0):
    """Install a classic-BPF filter (a SockFprog) on the calling thread; with
    SECCOMP_FILTER_FLAG_NEW_LISTENER the result is the notification fd, else 0."""
    return syscall("seccomp", ctypes.c_uint(SECCOMP_SET_MODE_FILTER), ctypes.c_uint(flags),
                   ctypes.byref(prog), what="seccomp")


def seccomp_flag_supported(flag):
    """True if the kernel knows filter flag ``flag``: with a NULL program a known flag fails
    with EFAULT (nothing is installed), an unknown one with EINVAL."""
    r = _syscall(NR["seccomp"], ctypes.c_uint(SECCOMP_SET_MODE_FILTER), ctypes.c_uint(flag), None)
    return r == -1 and ctypes.get_errno() == 14  # EFAULT


def seccomp_action_available(action):
    a = ctypes.c_uint32(action)
    return _syscall(NR["seccomp"], ctypes.c_uint(SECCOMP_GET_ACTION_AVAIL), ctypes.c_uint(0),
                    ctypes.byref(a)) == 0


class ScmpArgCmp(ctypes.Structure):
    """libseccomp's struct scmp_arg_cmp."""
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int),
                ("datum_a", ctypes.c_uint64), ("datum_b", ctypes.c_uint64)]


class ScmpVersion(ctypes.Structure):
    _fields_ = [("major", ctypes.c_uint), ("minor", ctypes.c_uint), ("micro", ctypes.c_uint)]


_libseccomp = None


def libseccomp():
    """libseccomp.so.2, loaded by soname on first use (0.1 ms; find_library costs ~20 ms).
    Raises OSError if it is not installed."""
    global _libseccomp
    if _libseccomp is None:
        lib = ctypes.CDLL("libseccomp.so.2")
        vp, u32, i, ui = ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint
        for name, res, args in (
                ("seccomp_init", vp, [u32]),
                ("seccomp_release", None, [vp]),
                ("seccomp_arch_add", i, [vp, u32]),
                ("seccomp_arch_native", u32, []),
                ("seccomp_arch_resolve_name", u32, [ctypes.c_char_p]),
                ("seccomp_syscall_resolve_name", i, [ctypes.c_char_p]),
                ("seccomp_rule_add_array", i, [vp, u32, i, ui, ctypes.POINTER(ScmpArgCmp)]),
                ("seccomp_attr_set", i, [vp, i, u32]),
                ("seccomp_export_bpf", i, [vp, i]),
                ("seccomp_version", ctypes.POINTER(ScmpVersion), []),
                ("seccomp_api_get", ui, [])):
            f = getattr(lib, name)
            f.restype = res
            f.argtypes = args
        _libseccomp = lib
    return _libseccomp
