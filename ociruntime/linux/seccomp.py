"""``linux.seccomp``: the OCI seccomp object, compiled with libseccomp, loaded as raw BPF.

Three steps, because the container init compiles while the host's libraries are still visible
and loads at the very end, after no_new_privs, right before execve::

    profile = parse(Obj(config["linux"]["seccomp"], "linux.seccomp"))   # pure, no libseccomp
    prepared = profile.prepare(cache_dir)   # before pivot_root: libseccomp → BPF (cached on disk)
    load(prepared)                          # last step before execve: one seccomp(2) call

``prepare`` builds the filter with libseccomp (loaded by soname, see ``syscalls.libseccomp``),
exports the BPF program with ``seccomp_export_bpf`` into a memfd and keeps its bytes. The BPF is
cached under ``cache_dir`` keyed by the sha256 of the canonical profile plus the libseccomp
version and native architecture; a cache file is verified (header, key, digest of the program,
owner, mode) before use and recompiled otherwise. ``load`` needs nothing but the seccomp(2)
syscall: it works after pivot_root and in a single-threaded forked child.

What we do as runc does: syscall names libseccomp cannot resolve on this architecture are
skipped; a rule whose action equals the default action is skipped (libseccomp refuses it);
several conditions on the same argument index are added as separate rules (libseccomp allows
one comparison per argument in a rule), so they are OR-ed.

``SCMP_ACT_NOTIFY`` (a seccomp agent at ``listenerPath``) is refused unless the caller passes
``parse(o, allow_notify=True)``, which it may do once the init hands the fd that ``load``
returns to the runtime, and the runtime passes it on with ``send_to_listener`` (see
docs/seccomp.md).
"""
from .. import osfast as os

from ..errors import ConfigError, SetupError, Unsupported

# outside every --root: a directory there would be listed as a container
DEFAULT_CACHE_DIR = "/run/ocirun-cache/seccomp"
EPERM = 1

# kernel SECCOMP_RET_* values, which are libseccomp's SCMP_ACT_* (the low 16 bits carry data)
ACT_KILL_THREAD = 0x00000000
ACT_KILL_PROCESS = 0x80000000
ACT_TRAP = 0x00030000
ACT_ERRNO = 0x00050000
ACT_TRACE = 0x7FF00000
ACT_LOG = 0x7FFC0000
ACT_ALLOW = 0x7FFF0000
ACT_NOTIFY = 0x7FC00000

ACTIONS = {
    "SCMP_ACT_KILL": ACT_KILL_THREAD,
    "SCMP_ACT_KILL_THREAD": ACT_KILL_THREAD,
    "SCMP_ACT_KILL_PROCESS": ACT_KILL_PROCESS,
    "SCMP_ACT_TRAP": ACT_TRAP,
    "SCMP_ACT_ERRNO": ACT_ERRNO,
    "SCMP_ACT_TRACE": ACT_TRACE,
    "SCMP_ACT_ALLOW": ACT_ALLOW,
    "SCMP_ACT_LOG": ACT_LOG,
}
NOTIFY_ACTIONS = {"SCMP_ACT_NOTIFY": ACT_NOTIFY}
_WITH_ERRNO = (ACT_ERRNO, ACT_TRACE)  # actions that carry errnoRet in their low 16 bits

# enum scmp_compare
OPERATORS = {
    "SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4,
    "SCMP_CMP_GE": 5, "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7,
}

# OCI architecture names → libseccomp's names (seccomp_arch_resolve_name)
ARCHES = {f"SCMP_ARCH_{n.upper()}": n for n in (
    "x86", "x86_64", "x32", "arm", "aarch64", "loongarch64", "m68k", "mips", "mips64",
    "mips64n32", "mipsel", "mipsel64", "mipsel64n32", "ppc", "ppc64", "ppc64le", "s390",
    "s390x", "parisc", "parisc64", "riscv64", "sh", "sheb")}

FLAG_TSYNC = 1
FLAG_LOG = 2
FLAG_SPEC_ALLOW = 4
FLAG_NEW_LISTENER = 8
FLAG_WAIT_KILLABLE_RECV = 32
FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": FLAG_TSYNC,
    "SECCOMP_FILTER_FLAG_LOG": FLAG_LOG,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": FLAG_SPEC_ALLOW,
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": FLAG_WAIT_KILLABLE_RECV,
}

_MAX_INSNS = 4096          # BPF_MAXINSNS
_MAGIC = b"ocirun-seccomp-bpf-1\n"


def _sha256(data):
    """sha256 hex digest without ``hashlib`` (whose OpenSSL import costs ~4 ms here)."""
    try:
        from _sha2 import sha256            # CPython >= 3.12
    except ImportError:
        try:
            from _sha256 import sha256      # CPython <= 3.11
        except ImportError:
            from hashlib import sha256
    return sha256(data).hexdigest()


class Arg:
    __slots__ = ("index", "value", "value_two", "op")

    def __init__(self, index, value, value_two, op):
        self.index, self.value, self.value_two, self.op = index, value, value_two, op

    def key(self):
        return (self.index, self.value, self.value_two, self.op)


class Rule:
    """One ``syscalls[i]`` entry; ``action`` is the full SECCOMP_RET value (errno included)."""
    __slots__ = ("names", "action", "args", "where")

    def __init__(self, names, action, args, where):
        self.names, self.action, self.args, self.where = names, action, args, where


class Profile:
    __slots__ = ("default_action", "architectures", "flags", "listener_path",
                 "listener_metadata", "syscalls", "where", "uses_notify")

    def __init__(self):
        self.default_action = ACT_ALLOW
        self.architectures = []   # OCI names, e.g. "SCMP_ARCH_X86_64"
        self.flags = 0            # SECCOMP_FILTER_FLAG_* passed to seccomp(2)
        self.listener_path = None
        self.listener_metadata = None
        self.syscalls = []        # [Rule]
        self.where = "linux.seccomp"
        self.uses_notify = False  # some rule is SCMP_ACT_NOTIFY: load() returns a listener fd

    def prepare(self, cache_dir=DEFAULT_CACHE_DIR):
        return prepare(self, cache_dir)

    def canonical(self):
        """A stable text form of everything that decides the compiled program."""
        rules = tuple((tuple(r.names), r.action, tuple(a.key() for a in r.args))
                      for r in self.syscalls)
        return repr((self.default_action, tuple(self.architectures), rules))


class Prepared:
    """A compiled filter, ready for ``load``: ``bpf`` (bytes, 8 per instruction), ``flags``
    for seccomp(2), ``key`` (cache key), ``cached`` (True if read from the cache);
    ``listener_path``/``listener_metadata`` for ``send_to_listener``."""
    __slots__ = ("bpf", "flags", "key", "cached", "skipped", "listener_path",
                 "listener_metadata", "_buf", "_prog")

    def __init__(self, bpf, flags, key, cached, skipped=(), listener_path=None,
                 listener_metadata=None):
        from . import syscalls as sc
        from . import ffi
        if not bpf or len(bpf) % 8 or len(bpf) // 8 > _MAX_INSNS:
            raise SetupError(f"seccomp: invalid BPF program of {len(bpf)} bytes")
        self.bpf, self.flags, self.key, self.cached = bpf, flags, key, cached
        self.skipped = list(skipped)
        self.listener_path, self.listener_metadata = listener_path, listener_metadata
        # everything load() touches is allocated here, before fork/pivot_root
        self._buf = ffi.create_string_buffer(bpf, len(bpf))
        self._prog = sc.SockFprog(len(bpf) // 8, ffi.addressof(self._buf))

    @property
    def instructions(self):
        return len(self.bpf) // 8


# ---------------------------------------------------------------- parse (pure, no libseccomp)

def _action(o, key, errno_key, required, allow_notify=False, default_errno=EPERM):
    name = o.str(key, required=required)
    if name is None:
        return None
    if name in NOTIFY_ACTIONS:
        if not allow_notify:
            raise Unsupported(f"{o.sub(key)}: {name} is not supported by ocirun "
                              f"(no seccomp notify agent support)")
        act = NOTIFY_ACTIONS[name]
    else:
        act = ACTIONS.get(name)
    if act is None:
        raise o.error(key, f'unknown action "{name}"')
    errno = o.uint32(errno_key)
    if act in _WITH_ERRNO:
        if errno is None:
            errno = default_errno
        if errno > 0xFFFF:
            raise o.error(errno_key, "must be <= 65535")
        return act | errno
    if errno is not None:
        raise o.error(errno_key, f"is not allowed with action {name}")
    return act


def parse(o, allow_notify=False):
    """Parse ``linux.seccomp`` (an Obj) into a Profile; errors name the JSON path.
    ``allow_notify``: accept SCMP_ACT_NOTIFY and listenerPath (the caller forwards the fd)."""
    p = Profile()
    p.where = o.path or "linux.seccomp"
    p.default_action = _action(o, "defaultAction", "defaultErrnoRet", True, allow_notify)
    if p.default_action == ACT_NOTIFY:
        # the init itself would block on its own listener before anyone could answer
        raise o.error("defaultAction", "SCMP_ACT_NOTIFY cannot be the default action")
    for i, a in enumerate(o.strs("architectures")):
        if a not in ARCHES:
            raise ConfigError(f"{o.sub('architectures')}[{i}]", f'unknown architecture "{a}"')
        if a not in p.architectures:
            p.architectures.append(a)
    for i, f in enumerate(o.strs("flags")):
        v = FLAGS.get(f)
        if v is None:
            raise ConfigError(f"{o.sub('flags')}[{i}]", f'unknown flag "{f}"')
        p.flags |= v
    p.listener_path = o.str("listenerPath")
    p.listener_metadata = o.str("listenerMetadata")
    if p.listener_path is not None:
        if not allow_notify:
            raise Unsupported(f"{o.sub('listenerPath')}: seccomp notify agents are not "
                              f"supported by ocirun")
        if not p.listener_path.startswith("/"):
            raise o.error("listenerPath", "must be an absolute path")
    for r in o.objs("syscalls"):
        names = r.strs("names", required=True)
        if not names:
            raise r.error("names", "must not be empty")
        for j, n in enumerate(names):
            if not n:
                raise ConfigError(f"{r.sub('names')}[{j}]", "must not be empty")
        action = _action(r, "action", "errnoRet", True, allow_notify)
        if action == ACT_NOTIFY:
            p.uses_notify = True
        args = []
        for a in r.objs("args"):
            op_name = a.str("op", required=True)
            op = OPERATORS.get(op_name)
            if op is None:
                raise a.error("op", f'unknown operator "{op_name}"')
            args.append(Arg(a.int("index", required=True, min=0, max=5),
                            a.uint64("value", 0), a.uint64("valueTwo", 0), op))
        p.syscalls.append(Rule(names, action, args, r.path))
    if p.uses_notify and p.listener_path is None:
        raise o.error("listenerPath", "is required when a rule uses SCMP_ACT_NOTIFY")
    return p


# ---------------------------------------------------------------- compile (libseccomp)

def libseccomp_version():
    from . import syscalls as sc
    v = sc.libseccomp().seccomp_version().contents
    return (v.major, v.minor, v.micro)


def _lib():
    from . import syscalls as sc
    try:
        return sc.libseccomp()
    except OSError as e:
        raise Unsupported(f"seccomp: libseccomp.so.2 is not available ({e})") from None


def cache_key(profile):
    lib = _lib()
    head = f"{libseccomp_version()} {lib.seccomp_arch_native():#x}\n"
    return _sha256((head + profile.canonical()).encode())


def _rule_err(where, name, rc):
    return SetupError(f'{where}: seccomp rule for "{name}": {os.strerror(-rc)}')


def compile_bpf(profile):
    """Build the filter with libseccomp and export it: (bpf bytes, skipped syscall names)."""
    from . import ffi
    from . import syscalls as sc
    lib = _lib()
    ctx = lib.seccomp_init(profile.default_action)
    if not ctx:
        raise SetupError(f"{profile.where}.defaultAction: libseccomp refused the action")
    skipped = []
    try:
        # the kernel gets these flags from load(); keep libseccomp from acting on its own
        lib.seccomp_attr_set(ctx, 3, 0)  # SCMP_FLTATR_CTL_NNP
        for a in profile.architectures:
            tok = lib.seccomp_arch_resolve_name(ARCHES[a].encode())
            if not tok:
                raise Unsupported(f'{profile.where}.architectures: "{a}" is not known to '
                                  f"libseccomp {'.'.join(map(str, libseccomp_version()))}")
            rc = lib.seccomp_arch_add(ctx, tok)
            if rc < 0 and rc != -17:  # -EEXIST: the native arch is always there
                raise SetupError(f'{profile.where}.architectures: adding "{a}": '
                                 f"{os.strerror(-rc)}")
        for rule in profile.syscalls:
            if rule.action == profile.default_action:
                continue
            n = len(rule.args)
            arr = (sc.ScmpArgCmp * max(n, 1))(
                *[sc.ScmpArgCmp(a.index, a.op, a.value, a.value_two) for a in rule.args])
            indexes = [a.index for a in rule.args]
            split = len(set(indexes)) != n   # same index twice: one rule per condition
            for name in rule.names:
                nr = lib.seccomp_syscall_resolve_name(name.encode())
                if nr == -1:  # __NR_SCMP_ERROR: unknown here, skipped as runc does
                    skipped.append(name)
                    continue
                if split:
                    for k in range(n):
                        rc = lib.seccomp_rule_add_array(ctx, rule.action, nr, 1,
                                                        ffi.byref(arr[k]))
                        if rc < 0:
                            raise _rule_err(rule.where, name, rc)
                else:
                    rc = lib.seccomp_rule_add_array(ctx, rule.action, nr, n, arr)
                    if rc < 0:
                        raise _rule_err(rule.where, name, rc)
        fd = os.memfd_create("ocirun-seccomp", os.MFD_CLOEXEC)
        try:
            rc = lib.seccomp_export_bpf(ctx, fd)
            if rc < 0:
                raise SetupError(f"{profile.where}: exporting the BPF program: "
                                 f"{os.strerror(-rc)}")
            size = os.lseek(fd, 0, os.SEEK_CUR)
            bpf = os.pread(fd, size, 0)
        finally:
            os.close(fd)
    finally:
        lib.seccomp_release(ctx)
    return bpf, skipped


# ---------------------------------------------------------------- cache

def _cache_read(path, key):
    """The cached program for ``key`` or None; a file that fails any check is removed."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        data = os.read(fd, st.st_size + 1)
    finally:
        os.close(fd)
    hl = len(_MAGIC) + 64 + 1 + 64 + 1
    ok = (st.st_uid == os.geteuid() and st.st_mode & 0o077 == 0 and len(data) == st.st_size
          and len(data) > hl and data.startswith(_MAGIC))
    if ok:
        head = data[len(_MAGIC):hl].decode("ascii", "replace")
        bpf = data[hl:]
        ok = (head == f"{key}\n{_sha256(bpf)}\n" and len(bpf) % 8 == 0
              and 0 < len(bpf) // 8 <= _MAX_INSNS)
    if ok:
        return bpf
    try:
        os.unlink(path)
    except OSError:
        pass
    return None


def _cache_write(cache_dir, path, key, bpf):
    """Atomic: a private temp file renamed over the entry. No fsync: a torn file after a
    crash fails verification and is recompiled."""
    try:
        os.makedirs(cache_dir, mode=0o700, exist_ok=True)
        st = os.stat(cache_dir, follow_symlinks=False)
        if st.st_uid != os.geteuid() or st.st_mode & 0o022:
            return False  # not ours, or writable by others: never trust or feed it
        tmp = f"{path}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600)
        try:
            os.fchmod(fd, 0o600)
            data = _MAGIC + f"{key}\n{_sha256(bpf)}\n".encode() + bpf
            if os.write(fd, data) != len(data):
                raise OSError("short write")
        finally:
            os.close(fd)
        os.rename(tmp, path)
        return True
    except OSError:
        try:
            os.unlink(tmp)
        except (OSError, UnboundLocalError):
            pass
        return False


def _cache_dir_trusted(cache_dir):
    try:
        st = os.stat(cache_dir, follow_symlinks=False)
    except OSError:
        return False
    import stat
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid() and not st.st_mode & 0o022


def prepare(profile, cache_dir=DEFAULT_CACHE_DIR):
    """Compile ``profile`` (or take it from the cache): a Prepared for ``load``.
    ``cache_dir=None`` disables the cache."""
    flags = profile.flags
    if profile.uses_notify:
        flags |= FLAG_NEW_LISTENER
    else:
        flags &= ~FLAG_WAIT_KILLABLE_RECV  # only meaningful with a listener (EINVAL without)
    listener = (profile.listener_path, profile.listener_metadata) if profile.uses_notify else ()
    key = cache_key(profile)
    if cache_dir:
        path = os.path.join(cache_dir, key + ".bpf")
        if _cache_dir_trusted(cache_dir):
            bpf = _cache_read(path, key)
            if bpf is not None:
                return Prepared(bpf, flags, key, True, (), *listener)
    bpf, skipped = compile_bpf(profile)
    if cache_dir:
        _cache_write(cache_dir, path, key, bpf)
    return Prepared(bpf, flags, key, False, skipped, *listener)


# ---------------------------------------------------------------- load (syscalls only)

def load(prepared):
    """Install the filter on the calling thread (all threads with TSYNC). The caller has set
    no_new_privs (or holds CAP_SYS_ADMIN). Only the seccomp(2) syscall is made.
    Returns the notify listener fd (close-on-exec) if the profile uses SCMP_ACT_NOTIFY,
    else None."""
    from . import syscalls as sc
    try:
        r = sc.seccomp_set_mode_filter(prepared._prog, prepared.flags)
    except OSError as e:
        raise SetupError(f"seccomp: loading the filter: {e.strerror}") from None
    if prepared.flags & FLAG_NEW_LISTENER:
        return r
    if r > 0 and prepared.flags & FLAG_TSYNC:  # the id of a thread that could not sync
        raise SetupError(f"seccomp: loading the filter: thread {r} cannot be synchronized")
    return None


def send_to_listener(prepared, listener_fd, state, oci_version="1.0.2"):
    """Runtime side of SCMP_ACT_NOTIFY: connect to ``listenerPath`` and send the container
    process state (runtime-spec config-linux "seccomp") with ``listener_fd`` attached
    (SCM_RIGHTS). ``state`` is the container's state document (``pid`` is the container
    process on the host)."""
    import socket
    from .. import jsonfast
    msg = {"ociVersion": oci_version, "fds": ["seccompFd"], "pid": state.get("pid"),
           "metadata": prepared.listener_metadata or "", "state": state}
    data = jsonfast.dumps(msg)
    data = data.encode() if isinstance(data, str) else data
    path = prepared.listener_path
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(path)
            socket.send_fds(s, [data], [listener_fd])
    except OSError as e:
        raise SetupError(f"seccomp: sending the listener fd to {path}: "
                         f"{e.strerror or e}") from None


# ---------------------------------------------------------------- features

def features(allow_notify=False):
    """``linux.seccomp`` of ``ocirun features``: what this kernel and libseccomp can do
    (``allow_notify``: as for ``parse``)."""
    from . import syscalls as sc
    try:
        lib = sc.libseccomp()
    except OSError:
        return {"enabled": False}
    enabled = sc.seccomp_action_available(ACT_ALLOW)  # fails without CONFIG_SECCOMP_FILTER
    known = dict(ACTIONS, **NOTIFY_ACTIONS) if allow_notify else ACTIONS
    actions = [n for n, v in known.items() if sc.seccomp_action_available(v)]
    archs = sorted(a for a, n in ARCHES.items() if lib.seccomp_arch_resolve_name(n.encode()))
    # WAIT_KILLABLE_RECV only acts on a notify listener (the kernel wants NEW_LISTENER with it)
    supported = [n for n, v in FLAGS.items()
                 if (v != FLAG_WAIT_KILLABLE_RECV and sc.seccomp_flag_supported(v))
                 or (v == FLAG_WAIT_KILLABLE_RECV and allow_notify
                     and sc.seccomp_flag_supported(v | FLAG_NEW_LISTENER))]
    return {
        "enabled": enabled,
        "actions": actions,
        "operators": list(OPERATORS),
        "archs": archs,
        "knownFlags": list(FLAGS),
        "supportedFlags": supported,
    }
