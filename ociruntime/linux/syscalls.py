"""Every raw syscall and libc call ocirun makes, in one place.

The rest of the code calls these named functions; each raises ``OSError(errno, strerror,
path)`` on failure so messages name what failed. Syscalls without a glibc wrapper go through
``syscall(2)`` with their x86_64 numbers from ``NR``.

Areas add their wrappers in their own section below (keep sections sorted by area).
"""
from . import ffi
from .. import osfast as os

libc = ffi.CDLL("libc.so.6", use_errno=True)
_syscall = libc.syscall
_syscall.restype = ffi.c_long

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
    "fspick": 433,
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
        e = ffi.get_errno()
        raise OSError(e, os.strerror(e), what) if what is not None else OSError(e, os.strerror(e))
    return ret


def syscall(name, *args, what=None):
    return _check(_syscall(NR[name], *args), what)


def _b(s):
    return None if s is None else (s.encode() if isinstance(s, str) else s)


# ---------------------------------------------------------------- process and namespaces

def unshare(flags):
    _check(libc.unshare(ffi.c_int(flags)), "unshare")


# the two calls made in loops (setns per namespace, prctl per capability): prototypes, so
# ctypes converts plain ints in C instead of a wrapper object per argument
_setns = libc.setns
_setns.argtypes = (ffi.c_int, ffi.c_int)
_prctl = libc.prctl
_prctl.argtypes = (ffi.c_int, ffi.c_ulong, ffi.c_ulong, ffi.c_ulong, ffi.c_ulong)


def setns(fd, nstype=0, what=None):
    _check(_setns(fd, nstype), what or "setns")


def prctl(option, arg2=0, arg3=0, arg4=0, arg5=0):
    return _check(_prctl(option, arg2, arg3, arg4, arg5), "prctl")


def setrlimit(resource, soft, hard):
    """setrlimit(2) with 64-bit limits (RLIM_INFINITY = 2**64-1); the ``resource`` module
    costs ~1 ms to import (a shared library), this costs nothing more than libc."""
    lim = (ffi.c_uint64 * 2)(soft, hard)
    _check(libc.setrlimit(ffi.c_int(resource), lim), "setrlimit")


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
    _check(libc.sethostname(b, ffi.c_size_t(len(b))), "sethostname")


def loopback_up():
    """Bring up "lo" in the current network namespace (SIOCGIFFLAGS/SIOCSIFFLAGS on an
    AF_INET socket): runc does it for every new network namespace."""
    fd = _check(libc.socket(2, 2 | 0o2000000, 0), "socket")       # AF_INET, SOCK_DGRAM|CLOEXEC
    try:
        ifr = ffi.create_string_buffer(b"lo", 40)                # struct ifreq
        _check(libc.ioctl(fd, ffi.c_ulong(0x8913), ifr), "SIOCGIFFLAGS lo")
        flags = ffi.c_short.from_buffer(ifr, 16)
        if not flags.value & 0x1:                                   # IFF_UP
            flags.value |= 0x1
            _check(libc.ioctl(fd, ffi.c_ulong(0x8914), ifr), "SIOCSIFFLAGS lo")
    finally:
        os.close(fd)


def setdomainname(name):
    b = _b(name)
    _check(libc.setdomainname(b, ffi.c_size_t(len(b))), "setdomainname")


def personality(persona):
    r = libc.personality(ffi.c_ulong(persona))
    return _check(r, "personality")


def ioprio_set(which, who, ioprio):
    syscall("ioprio_set", ffi.c_int(which), ffi.c_int(who), ffi.c_int(ioprio),
            what="ioprio_set")


def pidfd_open(pid, flags=0):
    return syscall("pidfd_open", ffi.c_int(pid), ffi.c_uint(flags), what="pidfd_open")


def pidfd_send_signal(pidfd, sig):
    syscall("pidfd_send_signal", ffi.c_int(pidfd), ffi.c_int(sig), None,
            ffi.c_uint(0), what="pidfd_send_signal")


def above(fd, min_fd):
    """Move a runtime fd above the caller's preserved fds (3..min_fd-1) so it can never be
    passed to the container by --preserve-fds (fcntl F_DUPFD_CLOEXEC)."""
    if fd >= min_fd:
        return fd
    new = _check(libc.fcntl(ffi.c_int(fd), ffi.c_int(1030), ffi.c_int(min_fd)),
                 "fcntl(F_DUPFD_CLOEXEC)")
    os.close(fd)
    return new


def close_range(first, last=0xFFFFFFFF, flags=0):
    """CLOSE_RANGE_CLOEXEC = 4 marks instead of closing."""
    syscall("close_range", ffi.c_uint(first), ffi.c_uint(last), ffi.c_uint(flags),
            what="close_range")


CLOSE_RANGE_CLOEXEC = 4


# clone3(2) with CLONE_INTO_CGROUP: the child is born in a cgroup2 directory, with no
# cgroup.procs write (which takes the global threadgroup lock: a ~13 ms RCU grace period here)
CLONE_INTO_CGROUP = 0x200000000


_CloneArgs = ffi.LazyStruct("clone_args", lambda: [(n, ffi.c_uint64) for n in (
    "flags", "pidfd", "child_tid", "parent_tid", "exit_signal", "stack", "stack_size",
    "tls", "set_tid", "set_tid_size", "cgroup")])


_pyapi = None


def fork_into_cgroup(cgroup_fd):
    """fork(), the child placed in the cgroup2 directory ``cgroup_fd`` (clone3
    CLONE_INTO_CGROUP). Called with the GIL held and CPython's fork hooks run, as os.fork
    does. Returns the child's pid, 0 in the child; raises OSError (ENOSYS on old kernels,
    EBUSY/EOPNOTSUPP where the cgroup cannot take processes) with nothing forked."""
    global _pyapi
    if _pyapi is None:
        lib = ffi.PyDLL("libc.so.6", use_errno=True)   # keeps the GIL across the call
        lib.syscall.restype = ffi.c_long
        _pyapi = (lib.syscall, ffi.pythonapi.PyOS_BeforeFork,
                  ffi.pythonapi.PyOS_AfterFork_Parent, ffi.pythonapi.PyOS_AfterFork_Child)
    call, before, after_parent, after_child = _pyapi
    a = _CloneArgs()
    a.flags = CLONE_INTO_CGROUP
    a.exit_signal = 17  # SIGCHLD
    a.cgroup = cgroup_fd
    before()
    pid = call(ffi.c_long(NR["clone3"]), ffi.byref(a), ffi.c_size_t(ffi.sizeof(a)))
    if pid == 0:
        after_child()
        return 0
    err = ffi.get_errno()
    after_parent()
    if pid < 0:
        raise OSError(err, os.strerror(err), "clone3")
    return pid


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
    _check(libc.mount(_b(source), _b(target), _b(fstype), ffi.c_ulong(flags), _b(data)),
           target if isinstance(target, str) else _b(target).decode(errors="replace"))


def umount2(target, flags=0):
    _check(libc.umount2(_b(target), ffi.c_int(flags)), target)


def pivot_root(new_root, put_old):
    syscall("pivot_root", _b(new_root), _b(put_old), what=new_root)


# openat2(2)
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10


_OpenHow = ffi.LazyStruct("open_how", lambda: [
    ("flags", ffi.c_uint64), ("mode", ffi.c_uint64), ("resolve", ffi.c_uint64)])


def openat2(dirfd, path, flags, mode=0, resolve=RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS):
    how = _OpenHow(flags | os.O_CLOEXEC, mode, resolve)
    return syscall("openat2", ffi.c_int(dirfd), _b(path), ffi.byref(how),
                   ffi.c_size_t(ffi.sizeof(how)), what=path)


# ---------------------------------------------------------------- cgroups
# bpf(2) for cgroup v2 device programs (BPF_PROG_TYPE_CGROUP_DEVICE) and inotify for
# memory.events. Layouts of union bpf_attr from include/uapi/linux/bpf.h.

BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_DETACH = 9
BPF_PROG_GET_FD_BY_ID = 13
BPF_PROG_QUERY = 16
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_OVERRIDE = 1
BPF_F_ALLOW_MULTI = 2


_BpfProgLoad = ffi.LazyStruct("bpf_attr_prog_load", lambda: [
    ("prog_type", ffi.c_uint32), ("insn_cnt", ffi.c_uint32),
    ("insns", ffi.c_uint64), ("license", ffi.c_uint64),
    ("log_level", ffi.c_uint32), ("log_size", ffi.c_uint32),
    ("log_buf", ffi.c_uint64), ("kern_version", ffi.c_uint32),
    ("prog_flags", ffi.c_uint32), ("prog_name", ffi.c_char * 16),
    ("prog_ifindex", ffi.c_uint32), ("expected_attach_type", ffi.c_uint32)])
_BpfAttach = ffi.LazyStruct("bpf_attr_attach", lambda: [
    ("target_fd", ffi.c_uint32), ("attach_bpf_fd", ffi.c_uint32),
    ("attach_type", ffi.c_uint32), ("attach_flags", ffi.c_uint32),
    ("replace_bpf_fd", ffi.c_uint32)])
_BpfQuery = ffi.LazyStruct("bpf_attr_query", lambda: [
    ("target_fd", ffi.c_uint32), ("attach_type", ffi.c_uint32),
    ("query_flags", ffi.c_uint32), ("attach_flags", ffi.c_uint32),
    ("prog_ids", ffi.c_uint64), ("prog_cnt", ffi.c_uint32)])


def _bpf(cmd, attr, what):
    # the kernel accepts a larger, zero-filled attr; pass the struct's own size
    return syscall("bpf", ffi.c_int(cmd), ffi.byref(attr),
                   ffi.c_uint(ffi.sizeof(attr)), what=what)


def bpf_prog_load_cgroup_device(insns, name=b"ocirun_dev"):
    """Load a BPF_PROG_TYPE_CGROUP_DEVICE program from ``insns`` (bytes, 8 per insn);
    returns the program fd. On a verifier error the log is in the OSError's filename."""
    buf = ffi.create_string_buffer(bytes(insns), len(insns))
    lic = ffi.create_string_buffer(b"Apache")
    log = ffi.create_string_buffer(1 << 14)
    a = _BpfProgLoad()
    a.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE
    a.insn_cnt = len(insns) // 8
    a.insns = ffi.addressof(buf)
    a.license = ffi.addressof(lic)
    a.prog_name = name[:15]
    try:
        return _bpf(BPF_PROG_LOAD, a, "bpf(BPF_PROG_LOAD)")
    except OSError as e:
        if e.errno not in (13, 22):  # EACCES/EINVAL: retry with the verifier's log
            raise
    a.log_level = 1
    a.log_size = ffi.sizeof(log)
    a.log_buf = ffi.addressof(log)
    try:
        return _bpf(BPF_PROG_LOAD, a, "bpf(BPF_PROG_LOAD)")
    except OSError as e:
        raise OSError(e.errno, e.strerror,
                      "bpf(BPF_PROG_LOAD): " + log.value.decode(errors="replace")[-400:]) from None


def bpf_prog_attach(cgroup_fd, prog_fd, attach_type=BPF_CGROUP_DEVICE, flags=BPF_F_ALLOW_MULTI):
    a = _BpfAttach(cgroup_fd, prog_fd, attach_type, flags, 0)
    _bpf(BPF_PROG_ATTACH, a, "bpf(BPF_PROG_ATTACH)")


def bpf_prog_detach(cgroup_fd, prog_fd, attach_type=BPF_CGROUP_DEVICE):
    a = _BpfAttach(cgroup_fd, prog_fd, attach_type, 0, 0)
    _bpf(BPF_PROG_DETACH, a, "bpf(BPF_PROG_DETACH)")


def bpf_prog_query(cgroup_fd, attach_type=BPF_CGROUP_DEVICE):
    """Ids of the programs attached directly to the cgroup, and the attach flags."""
    ids = (ffi.c_uint32 * 64)()
    a = _BpfQuery(cgroup_fd, attach_type, 0, 0, ffi.addressof(ids), 64)
    _bpf(BPF_PROG_QUERY, a, "bpf(BPF_PROG_QUERY)")
    return list(ids[:a.prog_cnt]), a.attach_flags


def bpf_prog_get_fd_by_id(prog_id):
    a = (ffi.c_uint32 * 4)(prog_id, 0, 0, 0)  # prog_id, next_id, open_flags
    return syscall("bpf", ffi.c_int(BPF_PROG_GET_FD_BY_ID), ffi.byref(a),
                   ffi.c_uint(ffi.sizeof(a)), what="bpf(BPF_PROG_GET_FD_BY_ID)")


IN_MODIFY = 0x2
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC


def inotify_init1(flags=IN_CLOEXEC):
    return _check(libc.inotify_init1(ffi.c_int(flags)), "inotify_init1")


def inotify_add_watch(fd, path, mask):
    return _check(libc.inotify_add_watch(ffi.c_int(fd), _b(path), ffi.c_uint32(mask)),
                  path)


# ---------------------------------------------------------------- credentials

_CapHeader = ffi.LazyStruct("cap_user_header", lambda: [
    ("version", ffi.c_uint32), ("pid", ffi.c_int)])
_CapData = ffi.LazyStruct("cap_user_data", lambda: [
    ("effective", ffi.c_uint32), ("permitted", ffi.c_uint32), ("inheritable", ffi.c_uint32)])


_CAP_V3 = 0x20080522


def capset(effective, permitted, inheritable):
    h = _CapHeader(_CAP_V3, 0)
    d = (_CapData * 2)()
    for i, shift in ((0, 0), (1, 32)):
        d[i].effective = (effective >> shift) & 0xFFFFFFFF
        d[i].permitted = (permitted >> shift) & 0xFFFFFFFF
        d[i].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    syscall("capset", ffi.byref(h), d, what="capset")


def capget(pid=0):
    h = _CapHeader(_CAP_V3, pid)
    d = (_CapData * 2)()
    syscall("capget", ffi.byref(h), d, what="capget")
    return tuple(d[0].__getattribute__(f) | d[1].__getattribute__(f) << 32
                 for f in ("effective", "permitted", "inheritable"))


def setgroups(gids):
    arr = (ffi.c_uint32 * max(1, len(gids)))(*gids)
    _check(libc.setgroups(ffi.c_size_t(len(gids)), arr), "setgroups")


# ---------------------------------------------------------------- rootfs
# The new mount API (open_tree/move_mount/fsopen/fsconfig/fsmount/mount_setattr, Linux ≥ 5.12
# for everything used here) lets every mount be built detached, configured, and then attached
# onto an fd that was resolved inside the rootfs: no path string is ever resolved twice.

AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = os.O_CLOEXEC
MOVE_MOUNT_F_EMPTY_PATH = 0x04
MOVE_MOUNT_T_EMPTY_PATH = 0x40
FSOPEN_CLOEXEC = 1
FSMOUNT_CLOEXEC = 1
FSCONFIG_SET_FLAG = 0
FSCONFIG_SET_STRING = 1
FSCONFIG_CMD_CREATE = 6
FSCONFIG_CMD_RECONFIGURE = 7
FSPICK_CLOEXEC = 1
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MOUNT_ATTR__ATIME = 0x70
MOUNT_ATTR_RELATIME = 0x00
MOUNT_ATTR_NOATIME = 0x10
MOUNT_ATTR_STRICTATIME = 0x20
MOUNT_ATTR_NODIRATIME = 0x80
MOUNT_ATTR_IDMAP = 0x100000
MOUNT_ATTR_NOSYMFOLLOW = 0x200000
PROC_SUPER_MAGIC = 0x9FA0
TMPFS_MAGIC = 0x01021994


_MountAttr = ffi.LazyStruct("mount_attr", lambda: [
    ("attr_set", ffi.c_uint64), ("attr_clr", ffi.c_uint64),
    ("propagation", ffi.c_uint64), ("userns_fd", ffi.c_uint64)])


def open_tree(dirfd, path, flags, what=None):
    """A detached clone (OPEN_TREE_CLONE) of the mount at dirfd/path; returns a mount fd."""
    return syscall("open_tree", ffi.c_int(dirfd), _b(path), ffi.c_uint(flags),
                   what=what or path or f"fd {dirfd}")


def move_mount(from_fd, to_fd, what=None):
    """Attach the mount fd from_fd onto the inode to_fd refers to (both by fd, no paths)."""
    syscall("move_mount", ffi.c_int(from_fd), b"", ffi.c_int(to_fd), b"",
            ffi.c_uint(MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH),
            what=what or f"fd {to_fd}")


def mount_setattr(fd, attr_set=0, attr_clr=0, propagation=0, userns_fd=0, recursive=False,
                  what=None):
    """Change mount attributes of the mount fd refers to (and its children if recursive)."""
    a = _MountAttr(attr_set, attr_clr, propagation, userns_fd)
    flags = AT_EMPTY_PATH | (AT_RECURSIVE if recursive else 0)
    syscall("mount_setattr", ffi.c_int(fd), b"", ffi.c_uint(flags), ffi.byref(a),
            ffi.c_size_t(ffi.sizeof(a)), what=what or f"fd {fd}")


def _fs_log(fsfd):
    """The kernel's messages queued on an fs context fd ("e tmpfs: Bad value for 'mode'")."""
    msgs = []
    for _ in range(8):
        try:
            m = os.read(fsfd, 1024)
        except OSError:
            break
        if not m:
            break
        msgs.append(m.decode(errors="replace").strip())
    return "; ".join(msgs)


def fsmount_new(fstype, source=None, flags=(), strings=(), attr_flags=0, what=None,
                create=True):
    """fsopen + fsconfig + fsmount: a new detached mount of ``fstype``; returns the mount fd.
    ``flags`` are fsconfig SET_FLAG keys, ``strings`` (key, value) SET_STRING pairs.
    ``create=False`` only has the kernel parse the options (nothing is mounted), returns None."""
    what = what or fstype
    fsfd = syscall("fsopen", _b(fstype), ffi.c_uint(FSOPEN_CLOEXEC), what=what)
    try:
        def conf(cmd, key, value):
            if _syscall(NR["fsconfig"], ffi.c_int(fsfd), ffi.c_uint(cmd), _b(key),
                        _b(value), ffi.c_int(0)) == -1:
                e = ffi.get_errno()
                log = _fs_log(fsfd)
                arg = key if value is None else f"{key}={value}"
                detail = f"{what}: {arg}" + (f" ({log})" if log else "")
                raise OSError(e, os.strerror(e), detail)
        if source is not None:
            conf(FSCONFIG_SET_STRING, "source", source)
        for k in flags:
            conf(FSCONFIG_SET_FLAG, k, None)
        for k, v in strings:
            conf(FSCONFIG_SET_STRING, k, v)
        if not create:
            return None
        if _syscall(NR["fsconfig"], ffi.c_int(fsfd), ffi.c_uint(FSCONFIG_CMD_CREATE),
                    None, None, ffi.c_int(0)) == -1:
            e = ffi.get_errno()
            log = _fs_log(fsfd)
            raise OSError(e, os.strerror(e), what + (f" ({log})" if log else ""))
        return syscall("fsmount", ffi.c_int(fsfd), ffi.c_uint(FSMOUNT_CLOEXEC),
                       ffi.c_uint(attr_flags), what=what)
    finally:
        os.close(fsfd)


def fs_reconfigure(path, flags, what=None):
    """fspick + fsconfig: reconfigure the superblock mounted at ``path`` with exactly the
    SET_FLAG keys ``flags`` (per-mount flags such as nosuid are not touched)."""
    what = what or path
    fsfd = syscall("fspick", ffi.c_int(AT_FDCWD), _b(path), ffi.c_uint(FSPICK_CLOEXEC),
                   what=what)
    try:
        steps = [(FSCONFIG_SET_FLAG, k) for k in flags] + [(FSCONFIG_CMD_RECONFIGURE, None)]
        for cmd, key in steps:
            if _syscall(NR["fsconfig"], ffi.c_int(fsfd), ffi.c_uint(cmd), _b(key), None,
                        ffi.c_int(0)) == -1:
                e = ffi.get_errno()
                log = _fs_log(fsfd)
                raise OSError(e, os.strerror(e), what + (f" ({log})" if log else ""))
    finally:
        os.close(fsfd)


def fstatfs_type(fd):
    """f_type of the filesystem fd is on (PROC_SUPER_MAGIC, TMPFS_MAGIC, …)."""
    buf = ffi.create_string_buffer(128)   # struct statfs is 120 bytes on x86_64
    _check(libc.fstatfs(ffi.c_int(fd), buf), f"fstatfs fd {fd}")
    return ffi.c_long.from_buffer(buf).value


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


# struct sock_fprog: ``len`` instructions of 8 bytes each at ``filter``
SockFprog = ffi.LazyStruct("sock_fprog", lambda: [("len", ffi.c_ushort),
                                                  ("filter", ffi.c_void_p)])


def seccomp_set_mode_filter(prog, flags=0):
    """Install a classic-BPF filter (a SockFprog) on the calling thread; with
    SECCOMP_FILTER_FLAG_NEW_LISTENER the result is the notification fd, else 0."""
    return syscall("seccomp", ffi.c_uint(SECCOMP_SET_MODE_FILTER), ffi.c_uint(flags),
                   ffi.byref(prog), what="seccomp")


def seccomp_flag_supported(flag):
    """True if the kernel knows filter flag ``flag``: with a NULL program a known flag fails
    with EFAULT (nothing is installed), an unknown one with EINVAL."""
    r = _syscall(NR["seccomp"], ffi.c_uint(SECCOMP_SET_MODE_FILTER), ffi.c_uint(flag), None)
    return r == -1 and ffi.get_errno() == 14  # EFAULT


def seccomp_action_available(action):
    a = ffi.c_uint32(action)
    return _syscall(NR["seccomp"], ffi.c_uint(SECCOMP_GET_ACTION_AVAIL), ffi.c_uint(0),
                    ffi.byref(a)) == 0


# libseccomp's struct scmp_arg_cmp and struct scmp_version
ScmpArgCmp = ffi.LazyStruct("scmp_arg_cmp", lambda: [
    ("arg", ffi.c_uint), ("op", ffi.c_int), ("datum_a", ffi.c_uint64), ("datum_b", ffi.c_uint64)])
ScmpVersion = ffi.LazyStruct("scmp_version", lambda: [
    ("major", ffi.c_uint), ("minor", ffi.c_uint), ("micro", ffi.c_uint)])


_libseccomp = None


def libseccomp():
    """libseccomp.so.2, loaded by soname on first use (0.1 ms; find_library costs ~20 ms).
    Raises OSError if it is not installed."""
    global _libseccomp
    if _libseccomp is None:
        lib = ffi.CDLL("libseccomp.so.2")
        vp, u32, i, ui = ffi.c_void_p, ffi.c_uint32, ffi.c_int, ffi.c_uint
        for name, res, args in (
                ("seccomp_init", vp, [u32]),
                ("seccomp_release", None, [vp]),
                ("seccomp_arch_add", i, [vp, u32]),
                ("seccomp_arch_native", u32, []),
                ("seccomp_arch_resolve_name", u32, [ffi.c_char_p]),
                ("seccomp_syscall_resolve_name", i, [ffi.c_char_p]),
                ("seccomp_rule_add_array", i, [vp, u32, i, ui, ffi.POINTER(ScmpArgCmp.type)]),
                ("seccomp_attr_set", i, [vp, i, u32]),
                ("seccomp_export_bpf", i, [vp, i]),
                ("seccomp_version", ffi.POINTER(ScmpVersion.type), []),
                ("seccomp_api_get", ui, [])):
            f = getattr(lib, name)
            f.restype = res
            f.argtypes = args
        _libseccomp = lib
    return _libseccomp


# ---------------------------------------------------------------- wasm: Wasmtime C API
# The executors/wasm.py binding of the Wasmtime C API (wasm.h / wasmtime.h), over the native
# library shipped in the ``wasmtime`` PyPI package, loaded on first use by wasmtime_load().
# Why not ``import wasmtime``: the package binds its whole C API at import and pulls in
# pathlib, typing, platform, enum…: 45-75 ms per start here, against ~4 ms to load the library
# and bind the ~45 functions the executor calls. Only opaque pointers cross this boundary;
# the one C struct read is wasm_byte_vec_t (stable since the first wasm-c-api);
# wasmtime_func_t and wasmtime_instance_t are only passed by pointer to opaque, oversized
# buffers. The signatures are those of the WASMTIME_MAJOR C API: another major is refused.

WASMTIME_MAJOR = 50

_WP = ffi.c_void_p
_WSZ = ffi.c_size_t
_WBOOL = ffi.c_bool
_WI64 = ffi.c_int64
_WU64 = ffi.c_uint64
_WCP = ffi.c_char_p


def _vec_bytes(self):
    return ffi.string_at(self.data, self.size) if self.size else b""


# wasm_byte_vec_t (also wasm_name_t, wasm_message_t); opaque storage for a wasmtime_func_t
# and a wasmtime_instance_t (16 bytes each in the 50 C API; 64 reserved)
WasmByteVec = ffi.LazyStruct("wasm_byte_vec_t", lambda: [
    ("size", _WSZ), ("data", ffi.POINTER(ffi.c_ubyte))], {"bytes": _vec_bytes})
WasmtimeFunc = ffi.LazyStruct("wasmtime_func_t", lambda: [("_opaque", ffi.c_uint64 * 8)])
WasmtimeInstance = ffi.LazyStruct("wasmtime_instance_t",
                                  lambda: [("_opaque", ffi.c_uint64 * 8)])


def _wasmtime_sigs():
    """name: (restype, argtypes) of every function the executor calls."""
    _WBVP = ffi.POINTER(WasmByteVec.type)
    _WPP = ffi.POINTER(_WP)
    return {
        "wasm_config_new": (_WP, []),
        "wasmtime_config_epoch_interruption_set": (None, [_WP, _WBOOL]),
        "wasmtime_config_parallel_compilation_set": (None, [_WP, _WBOOL]),
        "wasmtime_config_signals_based_traps_set": (None, [_WP, _WBOOL]),
        "wasmtime_config_memory_reservation_set": (None, [_WP, _WU64]),
        "wasmtime_config_memory_guard_size_set": (None, [_WP, _WU64]),
        "wasmtime_config_memory_reservation_for_growth_set": (None, [_WP, _WU64]),
        "wasmtime_config_native_unwind_info_set": (None, [_WP, _WBOOL]),
        "wasm_engine_new_with_config": (_WP, [_WP]),
        "wasm_engine_delete": (None, [_WP]),
        "wasmtime_engine_increment_epoch": (None, [_WP]),
        "wasmtime_wat2wasm": (_WP, [_WCP, _WSZ, _WBVP]),
        "wasmtime_module_new": (_WP, [_WP, _WCP, _WSZ, _WPP]),
        "wasmtime_module_delete": (None, [_WP]),
        "wasmtime_module_serialize": (_WP, [_WP, _WBVP]),
        "wasmtime_module_deserialize": (_WP, [_WP, _WCP, _WSZ, _WPP]),
        "wasm_byte_vec_delete": (None, [_WBVP]),
        "wasmtime_error_message": (None, [_WP, _WBVP]),
        "wasmtime_error_exit_status": (_WBOOL, [_WP, ffi.POINTER(ffi.c_int)]),
        "wasmtime_error_delete": (None, [_WP]),
        "wasm_trap_message": (None, [_WP, _WBVP]),
        "wasm_trap_delete": (None, [_WP]),
        "wasmtime_store_new": (_WP, [_WP, _WP, _WP]),
        "wasmtime_store_context": (_WP, [_WP]),
        "wasmtime_store_limiter": (None, [_WP, _WI64, _WI64, _WI64, _WI64, _WI64]),
        "wasmtime_store_delete": (None, [_WP]),
        "wasmtime_context_set_epoch_deadline": (None, [_WP, _WU64]),
        "wasmtime_context_set_wasi": (_WP, [_WP, _WP]),
        "wasi_config_new": (_WP, []),
        "wasi_config_set_argv": (_WBOOL, [_WP, _WSZ, ffi.POINTER(_WCP)]),
        "wasi_config_set_env": (_WBOOL, [_WP, _WSZ, ffi.POINTER(_WCP), ffi.POINTER(_WCP)]),
        "wasi_config_inherit_stdin": (None, [_WP]),
        "wasi_config_inherit_stdout": (None, [_WP]),
        "wasi_config_inherit_stderr": (None, [_WP]),
        "wasi_config_preopen_dir": (_WBOOL, [_WP, _WCP, _WCP, _WBOOL]),
        "wasmtime_linker_new": (_WP, [_WP]),
        "wasmtime_linker_define_wasi": (_WP, [_WP]),
        "wasmtime_linker_module": (_WP, [_WP, _WP, _WCP, _WSZ, _WP]),
        "wasmtime_linker_get_default": (_WP, [_WP, _WP, _WCP, _WSZ, ffi.POINTER(WasmtimeFunc.type)]),
        "wasmtime_linker_delete": (None, [_WP]),
        "wasmtime_linker_instantiate_pre": (_WP, [_WP, _WP, _WPP]),
        "wasmtime_instance_pre_instantiate": (_WP, [_WP, _WP, ffi.POINTER(WasmtimeInstance.type), _WPP]),
        "wasmtime_instance_pre_delete": (None, [_WP]),
        "wasmtime_linker_define_instance": (_WP, [_WP, _WP, _WCP, _WSZ, ffi.POINTER(WasmtimeInstance.type)]),
        "wasmtime_func_call": (_WP, [_WP, ffi.POINTER(WasmtimeFunc.type), _WP, _WSZ, _WP, _WSZ, _WPP]),
    }


class WasmtimeError(Exception):
    """A wasmtime_error_t or wasm_trap_t turned into its message."""


class WasmtimeLib:
    """The loaded library: ``lib.fn(...)`` calls the C function ``fn``."""

    def __init__(self, path, version):
        self.path = path
        self.version = version
        dll = ffi.CDLL(path)  # CDLL releases the GIL during calls (epoch thread relies on it)
        for name, (res, args) in _wasmtime_sigs().items():
            f = getattr(dll, name)
            f.restype = res
            f.argtypes = args
            setattr(self, name, f)
        self._dll = dll

    # ---- errors
    def take_error(self, err):
        """Message of a wasmtime_error_t*, which is freed."""
        vec = WasmByteVec()
        self.wasmtime_error_message(err, ffi.byref(vec))
        msg = vec.bytes().decode("utf-8", "replace")
        self.wasm_byte_vec_delete(ffi.byref(vec))
        self.wasmtime_error_delete(err)
        return msg

    def check(self, err, what):
        if err:
            raise WasmtimeError(f"{what}: {self.take_error(err)}")

    def exit_status(self, err):
        """The WASI proc_exit status carried by an error, or None."""
        st = ffi.c_int()
        return st.value if self.wasmtime_error_exit_status(err, ffi.byref(st)) else None

    def take_trap(self, trap):
        vec = WasmByteVec()
        self.wasm_trap_message(trap, ffi.byref(vec))
        msg = vec.bytes().decode("utf-8", "replace")
        self.wasm_byte_vec_delete(ffi.byref(vec))
        self.wasm_trap_delete(trap)
        return msg

    def take_vec(self, vec):
        b = vec.bytes()
        self.wasm_byte_vec_delete(ffi.byref(vec))
        return b

    # ---- wrappers used by the executor
    def wat2wasm(self, text):
        vec = WasmByteVec()
        self.check(self.wasmtime_wat2wasm(text, len(text), ffi.byref(vec)), "wat")
        return self.take_vec(vec)

    def module_new(self, engine, wasm):
        out = _WP()
        self.check(self.wasmtime_module_new(engine, wasm, len(wasm), ffi.byref(out)),
                   "compile")
        return out

    def module_serialize(self, module):
        vec = WasmByteVec()
        self.check(self.wasmtime_module_serialize(module, ffi.byref(vec)), "serialize")
        return self.take_vec(vec)

    def module_deserialize(self, engine, data):
        out = _WP()
        self.check(self.wasmtime_module_deserialize(engine, data, len(data), ffi.byref(out)),
                   "deserialize")
        return out


def wasmtime_find_library():
    """(path of the wasmtime shared library, version) from the installed ``wasmtime`` package,
    found on sys.path without importing it. Raises FileNotFoundError."""
    import sys
    machine = os.uname().machine
    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(machine.lower(), machine)
    rel = os.path.join("wasmtime", f"linux-{machine}", "_libwasmtime.so")
    for d in sys.path:
        p = os.path.join(d or ".", rel)
        if os.path.exists(p):
            version = "unknown"
            try:
                for n in os.listdir(d or "."):
                    if n.startswith("wasmtime-") and n.endswith((".dist-info", ".egg-info")):
                        version = n[len("wasmtime-"):].rsplit(".", 1)[0]
                        break
            except OSError:
                pass
            return p, version
    raise FileNotFoundError(f"{rel} not found on sys.path (pip install wasmtime)")


_wasmtime = None


def wasmtime_load():
    """The process-wide Lib (loaded once). Raises WasmtimeError if missing or unsupported."""
    global _wasmtime
    if _wasmtime is None:
        try:
            path, version = wasmtime_find_library()
        except FileNotFoundError as e:
            raise WasmtimeError(str(e)) from None
        major = version.split(".", 1)[0]
        if major != str(WASMTIME_MAJOR):
            raise WasmtimeError(f"wasmtime {version} at {path}: ocirun binds the wasmtime "
                                f"{WASMTIME_MAJOR}.x C API (pip install 'wasmtime=="
                                f"{WASMTIME_MAJOR}.*')")
        _wasmtime = WasmtimeLib(path, version)
    return _wasmtime
