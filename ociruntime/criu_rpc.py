"""CRIU's RPC (``criu swrk FD``), for every checkpoint and restore: criu can be started before
its request is ready (checkpoint describes the container while criu starts), and it notifies
(restore runs hooks at ``setup-namespaces``; for a terminal, CRIU recreates the pty pair and
hands the new master back with ``orphan-pts-master``, which ocirun sends to the console
socket). docs/checkpoint.md explains the choice.

The requests are built from the same argv the CLI path uses (``from_argv``), so both paths
describe the container to CRIU identically. Protocol buffers are encoded by hand: the few
fields of images/rpc.proto that ocirun sets (field numbers below, from CRIU 4.1's rpc.proto).
"""
from . import osfast as os

from .criu import CriuError

# criu_req_type
DUMP, RESTORE, PRE_DUMP, NOTIFY = 1, 2, 4, 6
# criu_cg_mode
CG_MODES = {"ignore": 0, "props": 2, "soft": 3, "full": 4, "strict": 5}
CLONE_NEWNET = 0x40000000


# ------------------------------------------------------------------------------ protobuf
def _varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _f_int(num, v):
    return _varint(num << 3) + _varint(int(v))


def _f_bytes(num, b):
    if isinstance(b, str):
        b = b.encode()
    return _varint((num << 3) | 2) + _varint(len(b)) + b


def _decode(buf):
    """{field number: [values]}; length-delimited values stay bytes."""
    out = {}
    i = 0
    while i < len(buf):
        key, i = _read_varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _read_varint(buf, i)
        elif wt == 2:
            n, i = _read_varint(buf, i)
            v, i = buf[i:i + n], i + n
        elif wt == 5:
            v, i = int.from_bytes(buf[i:i + 4], "little"), i + 4
        elif wt == 1:
            v, i = int.from_bytes(buf[i:i + 8], "little"), i + 8
        else:
            raise CriuError(f"criu rpc: bad wire type {wt}")
        out.setdefault(num, []).append(v)
    return out


def _read_varint(buf, i):
    n = shift = 0
    while True:
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        if not b & 0x80:
            return n, i
        shift += 7


# ------------------------------------------------------------------------------ opts
def from_argv(argv):
    """criu_opts bytes + request type from a ``criu dump|pre-dump|restore ...`` argv (the
    subset checkpoint.py emits). Returns (type, opts, images_dir, work_dir, pass_fds)."""
    action = argv[1]
    typ = {"dump": DUMP, "pre-dump": PRE_DUMP, "restore": RESTORE}[action]
    o = bytearray()
    work = images = None
    fds = []
    i = 2
    while i < len(argv):
        a = argv[i]
        name, eq, val = a.partition("=")

        def nxt():
            nonlocal i
            i += 1
            return argv[i]
        if a == "--tree":
            o += _f_int(2, nxt())
        elif a == "--images-dir":
            images = nxt()      # passed as an fd: CRIU 4.1's images_dir string path is broken
        elif a == "--work-dir":
            work = nxt()
        elif a == "--log-file":
            o += _f_bytes(10, nxt())
        elif a.startswith("-v"):
            o += _f_int(9, a[2:] or 2)
        elif a == "--config":
            o += _f_bytes(51, nxt())
        elif a in _BOOLS:
            o += _f_int(_BOOLS[a], 1)
        elif name == "--manage-cgroups":
            o += _f_int(34, CG_MODES.get(val or "soft", 3))
        elif a == "--prev-images-dir":
            o += _f_bytes(14, nxt())
        elif a == "--page-server":
            addr = port = None
            while i + 1 < len(argv) and argv[i + 1] in ("--address", "--port"):
                k = nxt()
                if k == "--address":
                    addr = nxt()
                else:
                    port = nxt()
            ps = bytearray()
            if addr:
                ps += _f_bytes(1, addr)
            if port:
                ps += _f_int(2, port)
            o += _f_bytes(11, bytes(ps))
        elif a == "--status-fd":
            fd = int(nxt())
            o += _f_int(49, fd)
            fds.append(fd)
        elif a == "--empty-ns":
            if nxt() == "net":
                o += _f_int(38, CLONE_NEWNET)
        elif a == "--freeze-cgroup":
            o += _f_bytes(44, nxt())
        elif a == "--external":
            o += _f_bytes(37, nxt())
        elif a == "--root":
            o += _f_bytes(13, nxt())
        elif a == "--cgroup-root":
            v = nxt()
            ctrl, sep, path = v.rpartition(":") if not v.startswith("/") else ("", "", v)
            m = (_f_bytes(1, ctrl) if ctrl else b"") + _f_bytes(2, path)
            o += _f_bytes(25, m)
        elif a == "--inherit-fd":
            v = nxt()                    # fd[N]:KEY
            n, _, key = v[3:].partition("]:")
            o += _f_bytes(27, _f_bytes(1, key) + _f_int(2, int(n)))
            fds.append(int(n))
        elif a == "--lsm-profile":
            o += _f_bytes(53, nxt())
        elif a == "--lsm-mount-context":
            o += _f_bytes(63, nxt())
        elif a in ("--restore-detached", "--pidfile"):
            if a == "--pidfile":
                nxt()
        else:
            raise CriuError(f"criu rpc: option {a} has no RPC translation")
        i += 1
    o += _f_int(12, 1)                   # notify_scripts: the orphan-pts-master fd arrives
    o += _f_int(50, 1)                   # orphan_pts_master
    if typ == RESTORE:
        o += _f_int(26, 1)               # rst_sibling: the restored init is our child
    return typ, o, images, work, fds


_BOOLS = {"--leave-running": 3, "--ext-unix-sk": 4, "--tcp-established": 5,
          "--shell-job": 7, "--file-locks": 8, "--track-mem": 15, "--auto-dedup": 16,
          "--lazy-pages": 48}


# ------------------------------------------------------------------------------ swrk
# v1 controllers criu joins: its work is charged to the container there (the page cache of
# the images it writes or reads, their I/O), and nothing of the container's limits stops it
# (in `pids` a container at its limit made criu's forks fail: "fork() failed: Resource
# temporarily unavailable"; `devices`, `cpuset`, `cpu` would only restrict or slow it).
# CRIU moves the tasks it restores into their cgroups itself, except with
# --manage-cgroups-mode ignore: then criu joins every hierarchy, the tasks inherit them
CRIU_JOINS = ("memory", "blkio")


def criu_cgroups(state, only=None):
    """{controller: directory} of the container's cgroups criu itself works in: the page
    cache of the images it writes and the memory it restores are the container's, not the
    caller's (a busy caller cgroup made a 512 MiB dump 2-3x slower here). Never a freezer
    that is or may become frozen with criu in it. ``only``: these v1 controllers, else all
    (restore with --manage-cgroups-mode ignore: the restored tasks stay in criu's cgroups).
    ``state``: the cgroup manager's ``to_state()``, read directly (checkpoint does not
    import the managers before criu starts)."""
    if not state or state.get("mode") == "v2":
        # pure v2: one cgroup for everything; CRIU then takes the container's tasks for
        # part of its own cgroup set and does not dump it ("No set 1 found" at restore)
        return {}
    paths = state.get("paths") or {}
    if only is not None:
        return {k: paths[k] for k in only if k in paths}
    fz = paths.get("freezer")
    return {k: p for k, p in paths.items() if p != fz}


def start_dump(explicit, root, cid):
    """``criu swrk`` for dumping container ``cid`` of the state directory ``root``, started
    before the rest of the runtime is imported (the CLI does: criu's exec and dynamic
    linking, ~3 ms, then overlap those imports and the container's description), or None
    when it cannot start this early (no such container, no criu, ...: the checkpoint then
    reports why, or starts criu itself). The state file is read without the container's
    lock, only for the cgroups criu is born in; the checkpoint checks the container."""
    from . import jsonfast
    from .criu import find_criu
    from .errors import OciError
    from .state import STATE, validate_id
    try:
        validate_id(cid)
        criu = find_criu(explicit)
        with open(os.path.join(root, cid, STATE), "rb") as f:
            d = jsonfast.loads(f.read())
        return Swrk(criu, join=criu_cgroups(d.get("cgroup"), only=CRIU_JOINS), quiet=True)
    except (OSError, ValueError, AttributeError, TypeError, OciError):
        return None


def run(argv, join=(), on_pts_master=None, on_started=None, on_notify=None):
    """Run the request over ``criu swrk``. Returns the restored pid (restore) or 0; raises
    CriuError(errmsg) when CRIU reports failure. ``join``: as for Swrk; ``on_pts_master(fd)``
    gets the new master; ``on_started(pid)`` runs once criu is started, before the request
    is sent; ``on_notify(script, pid)`` at each of CRIU's notifications (an exception there
    stops the restore: criu gets no answer)."""
    w = Swrk(argv[0], from_argv(argv)[4], join)
    try:
        if on_started is not None:
            on_started(w.pid)
        return w.call(argv, on_pts_master, on_notify=on_notify)
    finally:
        w.close()


class Swrk:
    """A ``criu swrk`` process, started before its request is ready: checkpoint starts it
    first and describes the container while CRIU starts (exec, dynamic linking: ~3 ms that
    would otherwise add to the runtime's overhead). It is spawned (vfork + exec: no copy of
    this interpreter, no Python code in the child, which cost 1-4 ms before exec), so what
    the child must be is arranged around the spawn: ``join`` ({v1 controller: directory}):
    criu is born in these cgroups (see ``_born_in``); ``fds``: our fds CRIU inherits
    (--inherit-fd, --status-fd); ``quiet``: its stdin and stdout are /dev/null and its
    stderr a memory file (what it says before its log exists, e.g. about a bad config file:
    ``stderr_line()``). ``close()`` ends it (EOF on its socket) and reaps it."""

    def __init__(self, criu, fds=(), join=None, quiet=False):
        import _socket
        self.criu = criu
        self.err_fd = os.memfd_create("criu-stderr", os.MFD_CLOEXEC) if quiet else -1
        self.sock, child = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
        try:
            c = child.fileno()
            os.set_inheritable(c, True)
            for fd in fds:
                if fd > 2:
                    os.set_inheritable(fd, True)
            acts = [(os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDWR, 0),
                    (os.POSIX_SPAWN_DUP2, 0, 1),
                    (os.POSIX_SPAWN_DUP2, self.err_fd, 2)] if quiet else None
            with _born_in(join):
                self.pid = os.posix_spawn(criu, [criu, "swrk", str(c)], os.exec_environ(),
                                          file_actions=acts)
        except OSError as e:
            self.sock.close()
            self.sock = None
            if self.err_fd >= 0:
                os.close(self.err_fd)
            raise CriuError(f"cannot start {criu}: {e.strerror}") from None
        finally:
            child.close()

    def call(self, argv, on_pts_master=None, on_sent=None, on_notify=None):
        """Send the request ``argv`` describes; returns as ``run`` does. ``on_sent()`` runs
        once the request is on its way."""
        typ, opts, images, work, _fds = from_argv(argv)
        # CRIU opens these as /proc/<peer>/fd/N: they stay open here until it is done
        own = []
        try:
            ifd = os.open(images or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            own.append(ifd)
            opts = _f_int(1, ifd) + opts
            if work:
                wfd = os.open(work, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                own.append(wfd)
                opts += _f_int(17, wfd)
            return self._exchange(typ, opts, on_pts_master, on_sent, on_notify)
        finally:
            for fd in own:
                os.close(fd)

    def _exchange(self, typ, opts, on_pts_master, on_sent, on_notify):
        import _socket
        sock = self.sock
        try:
            sock.send(_f_int(1, typ) + _f_bytes(2, bytes(opts)))
        except OSError as e:
            raise CriuError(f"criu swrk ({self.criu}) is gone: {e.strerror}") from None
        if on_sent is not None:
            on_sent()
        while True:
            msg, anc, _flags, _addr = sock.recvmsg(1 << 16, _socket.CMSG_SPACE(4 * 4))
            if not msg:
                raise CriuError(f"criu swrk ({self.criu}) exited without an answer")
            got = []
            for level, t, data in anc:
                if level == _socket.SOL_SOCKET and t == _socket.SCM_RIGHTS:
                    got.extend(int.from_bytes(data[k:k + 4], "little", signed=True)
                               for k in range(0, len(data) - len(data) % 4, 4))
            r = _decode(msg)
            rtype = r.get(1, [0])[0]
            ok = bool(r.get(2, [0])[0])
            if rtype == NOTIFY:
                note = _decode(r.get(5, [b""])[0])
                script = note.get(1, [b""])[0].decode()
                try:
                    if script == "orphan-pts-master" and got and on_pts_master is not None:
                        on_pts_master(got[0])
                    if on_notify is not None:
                        on_notify(script, note.get(2, [0])[0])
                finally:
                    for fd in got:
                        os.close(fd)
                sock.send(_f_int(1, NOTIFY) + _f_int(3, 1))
                continue
            for fd in got:
                os.close(fd)
            if not ok:
                err = r.get(9, [b""])[0].decode(errors="replace")
                raise CriuError(err or f"criu reported failure (errno {r.get(7, [0])[0]})")
            if rtype == RESTORE:
                return _decode(r.get(4, [b""])[0]).get(1, [0])[0]
            return 0

    def stderr_line(self):
        """The first line criu wrote on its stderr (``quiet``), or ""."""
        if self.err_fd < 0:
            return ""
        text = os.pread(self.err_fd, 1 << 16, 0).decode(errors="replace").strip()
        return text.splitlines()[0] if text else ""

    def close(self):
        if self.err_fd >= 0:
            os.close(self.err_fd)
            self.err_fd = -1
        if self.sock is None:
            return
        self.sock.close()
        self.sock = None
        while True:
            try:
                os.waitpid(self.pid, 0)
                break
            except InterruptedError:
                continue
            except ChildProcessError:
                break


class _born_in:
    """``with _born_in({controller: dir}):`` this process is in those v1 cgroups, and back in
    its own afterwards: what it spawns meanwhile is born there. CRIU works in the container's
    memory and blkio cgroups (CRIU_JOINS) and a vfork child cannot move itself
    before exec. Each move writes "0" to ``tasks``: it moves the calling thread (this process
    has one) without the kernel's threadgroup lock, whose first use after a quiet spell waits
    ~10 ms for an RCU grace period (a ``cgroup.procs`` write, or another task's pid, takes
    it). The way back is this process's own cgroup (/proc/self/cgroup) under the mount of
    the hierarchy, found by walking up from the target while st_dev stays the same; a
    hierarchy whose way back cannot be found is not joined."""

    def __init__(self, join):
        self.moves = []
        if not join:
            return
        own = {}
        with open("/proc/self/cgroup") as f:
            for line in f:
                _n, ctrls, rel = line.rstrip("\n").split(":", 2)
                for ctrl in ctrls.split(","):
                    own[ctrl] = rel
        for ctrl, d in join.items():
            rel = own.get(ctrl)
            if rel is None:
                continue
            try:
                back = _hierarchy_mount(d) + ("" if rel == "/" else rel)
            except OSError:       # gone (the container is being deleted): nothing to join
                continue
            if os.path.isdir(back) and os.path.normpath(back) != os.path.normpath(d):
                self.moves.append((d + "/tasks", back + "/tasks"))

    def __enter__(self):
        self.entered = []
        for into, back in self.moves:
            try:
                _write0(into)
            except OSError:   # criu then works in our cgroup there: slower, not wrong
                continue
            self.entered.append(back)
        return self

    def __exit__(self, *exc):
        for back in self.entered:
            _write0(back)


def _write0(tasks):
    fd = os.open(tasks, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, b"0")
    finally:
        os.close(fd)


def _hierarchy_mount(d):
    """The mount point of the cgroup hierarchy directory ``d`` belongs to."""
    d = os.path.normpath(d)
    dev = os.stat(d).st_dev
    while True:
        up = os.path.dirname(d)
        if up == d or os.stat(up).st_dev != dev:
            return d
        d = up
