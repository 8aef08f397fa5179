"""CRIU's RPC (``criu swrk FD``), for every checkpoint and restore: criu can be started before
its request is ready (checkpoint describes the container while criu starts), and it notifies
(restore runs hooks at ``setup-namespaces``; for a terminal, CRIU recreates the pty pair and
hands the new master back with ``orphan-pts-master``, which ocirun sends to the console
socket). docs/checkpoint.md explains the choice.

The requests are built from the same argv the CLI path uses (criu_proto.py, protocol
buffers encoded by hand), so both paths describe the container to CRIU identically.
"""
from . import osfast as os

from .criu import CriuError

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
    from . import STATE, jsonfast
    from .criu import find_criu
    from .errors import OciError
    if not cid or "/" in cid or cid in (".", ".."):   # a name in root, nothing else
        return None
    try:
        criu = find_criu(explicit)
        with open(os.path.join(root, cid, STATE), "rb") as f:
            d = jsonfast.loads(f.read())
        return Swrk(criu, join=criu_cgroups(d.get("cgroup"), only=CRIU_JOINS), quiet=True)
    except (OSError, ValueError, AttributeError, TypeError, OciError):
        return None


def run(argv, join=None, on_pts_master=None, on_started=None, on_notify=None):
    """Run the request over ``criu swrk``. Returns the restored pid (restore) or 0; raises
    CriuError(errmsg) when CRIU reports failure. ``join``: as for Swrk; ``on_pts_master(fd)``
    gets the new master; ``on_started(pid)`` runs once criu is started, before the request
    is sent; ``on_notify(script, pid)`` at each of CRIU's notifications (an exception there
    stops the restore: criu gets no answer)."""
    from .criu_proto import from_argv
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
        from .criu_proto import _f_int, from_argv
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
        from .criu_proto import NOTIFY, RESTORE, _decode, _f_bytes, _f_int
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
    hierarchy whose way back cannot be found is not joined.

    It parses /proc/self/cgroup and writes ``tasks`` itself rather than through
    linux/cgroups/fs.py (``own_cgroups``, ``write``): a checkpoint spawns criu before it
    imports ``ociruntime.linux.cgroups`` (1.9 M instructions, ~0.45 ms; criu's own start is
    the critical path of the dump's overhead). A cgroup mount whose root is not the
    hierarchy's (a bind of a subtree) gives a way back that does not exist: not joined."""

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
