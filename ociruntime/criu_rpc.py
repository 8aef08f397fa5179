"""CRIU's RPC (``criu swrk FD``), for every checkpoint and restore: criu can be started before
its request is ready (checkpoint describes the container while criu starts), and it notifies
(restore runs hooks at ``setup-namespaces``; for a terminal, CRIU recreates the pty pair and
hands the new master back with ``orphan-pts-master``, which ocirun sends to the console
socket). docs/checkpoint.md explains the choice.

The requests are built from the same argv the CLI path uses (``from_argv``), so both paths
describe the container to CRIU identically. Protocol buffers are encoded by hand: the few
fields of images/rpc.proto that ocirun sets (field numbers below, from CRIU 4.1's rpc.proto).
"""
import os

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
def run(argv, preexec=None, on_pts_master=None, on_started=None, on_notify=None):
    """Run the request over ``criu swrk``. Returns the restored pid (restore) or 0; raises
    CriuError(errmsg) when CRIU reports failure. ``on_pts_master(fd)`` gets the new master;
    ``on_started(pid)`` runs once criu is forked, before the request is sent;
    ``on_notify(script, pid)`` at each of CRIU's notifications (an exception there stops
    the restore: criu gets no answer)."""
    w = Swrk(argv[0], from_argv(argv)[4], preexec)
    try:
        if on_started is not None:
            on_started(w.pid)
        return w.call(argv, on_pts_master, on_notify=on_notify)
    finally:
        w.close()


class Swrk:
    """A ``criu swrk`` process, started before its request is ready: checkpoint forks it
    first and describes the container while CRIU starts (exec, dynamic linking, its own
    set-up: ~3-5 ms here that would otherwise add to the runtime's overhead). ``fds``: our
    fds CRIU inherits (--inherit-fd, --status-fd); ``quiet``: its stdin and stdout are
    /dev/null and its stderr a memory file (what it says before its log exists, e.g. about
    a bad config file: ``stderr_line()``). ``close()`` ends it (EOF on its socket) and reaps
    it."""

    def __init__(self, criu, fds=(), preexec=None, quiet=False):
        import _socket
        self.criu = criu
        self.err_fd = os.memfd_create("criu-stderr", os.MFD_CLOEXEC) if quiet else -1
        self.sock, child = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
        try:
            pid = os.fork()
        except OSError:
            self.sock.close()
            child.close()
            raise
        if pid == 0:
            try:
                self.sock.close()
                if quiet:
                    null = os.open("/dev/null", os.O_RDWR)
                    os.dup2(null, 0)
                    os.dup2(null, 1)
                    os.dup2(self.err_fd, 2)
                c = child.fileno()
                os.set_inheritable(c, True)
                for fd in fds:
                    if fd > 2:
                        os.set_inheritable(fd, True)
                if preexec is not None:
                    preexec()
                os.execv(criu, [criu, "swrk", str(c)])
            finally:
                os._exit(127)
        child.close()
        self.pid = pid

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
