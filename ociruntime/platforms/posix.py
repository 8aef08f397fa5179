"""A container as one plain POSIX process: the lifecycle shared by the macOS backend (and
usable on any POSIX host for tests). No namespaces, no cgroups: what confines the process is
the exec prefix a subclass puts in front of it (``sandbox-exec -p PROFILE`` on macOS) plus
rlimits and credentials set here.

create: fork; the child starts a new session, opens ``start.fifo`` (O_RDWR, so it is the
reader that ``start`` needs and never sees a spurious EOF), sets rlimits, umask, cwd and
credentials, reports "ok" on a pipe, then blocks reading the fifo. start: open the fifo
O_WRONLY|O_NONBLOCK (ENXIO = nobody reading = the process is gone), write one byte; the child
execs. The pid's identity is its start time (``/proc/PID/stat`` on Linux, libproc on macOS),
so a recycled pid is never mistaken for the container.
"""
import os

from .base import CREATED, RUNNING, STOPPED, Platform, Status
from ..errors import NoSuchProcess, SetupError, StateError

STATE_FILE = "platform.json"
FIFO = "start.fifo"


class ProcSpec:
    """Everything ``create`` needs, decided by ``prepare``. ``path`` (absolute) is exec'd with
    ``argv`` (whose argv[0] stays as the config gave it);
    ``rlimits`` are (name, soft, hard) with OCI values; ``uid``/``gid`` None = keep ours;
    ``dirs`` are per-container directories made at create and removed at delete."""

    __slots__ = ("path", "argv", "env", "cwd", "rlimits", "uid", "gid", "groups", "umask", "dirs",
                 "profile")

    def __init__(self, path, argv, env, cwd, rlimits=(), uid=None, gid=None, groups=(),
                 umask=None, dirs=(), profile=None):
        self.path = path
        self.argv, self.env, self.cwd = list(argv), list(env), cwd
        self.rlimits = list(rlimits)
        self.uid, self.gid, self.groups, self.umask = uid, gid, list(groups), umask
        self.dirs = list(dirs)
        self.profile = profile


# ---------------------------------------------------------------- process identity

def proc_identity(pid):
    """(start_time, zombie) of a live pid, or None when it does not exist."""
    if os.path.isdir("/proc/self"):
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                data = f.read()
        except (FileNotFoundError, ProcessLookupError):
            return None
        fields = data[data.rindex(b")") + 2:].split()
        return fields[19].decode(), fields[0] == b"Z"
    from . import _darwin_sys
    info = _darwin_sys.bsdinfo(pid)
    if info is not None:
        return info
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return "", False


def _exit_status(ws):
    code = os.waitstatus_to_exitcode(ws)
    return 128 - code if code < 0 else code


def _rlimit_value(v):
    import resource
    return resource.RLIM_INFINITY if v >= (1 << 63) - 1 else v


# ---------------------------------------------------------------- the backend

class PosixPlatform(Platform):
    name = "posix"

    def exec_argv(self, spec: ProcSpec):
        """(path, argv) actually exec'd; subclasses wrap them (sandbox-exec)."""
        return spec.path, spec.argv

    # -- state file
    def _load(self, state_dir):
        from .. import jsonfast
        try:
            with open(os.path.join(state_dir, STATE_FILE), "rb") as f:
                return jsonfast.loads(f.read())
        except FileNotFoundError:
            from ..errors import ContainerNotFound
            raise ContainerNotFound() from None

    def _save(self, state_dir, st):
        from .. import jsonfast
        path = os.path.join(state_dir, STATE_FILE)
        with open(path + ".tmp", "w") as f:
            f.write(jsonfast.dumps(st))
        os.replace(path + ".tmp", path)

    # -- lifecycle
    def create(self, cid, plan, state_dir, stdio=None):
        spec = plan.data
        path, argv = self.exec_argv(spec)
        os.makedirs(state_dir, 0o711, exist_ok=True)
        fifo = os.path.join(state_dir, FIFO)
        try:
            pid = self._spawn(spec, path, argv, fifo, stdio)
        except BaseException:
            _remove(fifo, spec.dirs)
            raise
        ident = proc_identity(pid)
        self._save(state_dir, {"platform": self.name, "id": cid, "pid": pid,
                               "start": ident[0] if ident else "", "started": False,
                               "dirs": spec.dirs})
        return pid

    def _spawn(self, spec, path, argv, fifo, stdio):
        import resource
        for d in spec.dirs:
            os.makedirs(d, 0o755, exist_ok=True)
            if spec.uid is not None and os.geteuid() == 0:
                os.chown(d, spec.uid, spec.gid if spec.gid is not None else -1)
        os.mkfifo(fifo, 0o600)
        env = {}
        for kv in spec.env:
            k, _, v = kv.partition("=")
            env[k] = v
        limits = [(name, getattr(resource, name), _rlimit_value(soft), _rlimit_value(hard))
                  for name, soft, hard in spec.rlimits]
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: nothing here may return into the caller's code
            try:
                os.close(r)
                _child(spec, path, argv, env, limits, fifo, stdio, w)
            finally:
                os._exit(127)
        os.close(w)
        msg = b""
        while True:
            chunk = os.read(r, 4096)
            if not chunk:
                break
            msg += chunk
        os.close(r)
        if msg != b"ok":
            os.waitpid(pid, 0)
            raise SetupError(msg.decode(errors="replace") or "container process died")
        return pid

    def _alive(self, st):
        ident = proc_identity(st["pid"])
        return ident is not None and not ident[1] and ident[0] == st["start"]

    def _reap(self, state_dir, st, block=False):
        """Collect the exit status when the process is our child (Python API use)."""
        if "exit" in st:
            return st["exit"]
        try:
            pid, ws = os.waitpid(st["pid"], 0 if block else os.WNOHANG)
        except ChildProcessError:
            return None
        if pid == 0:
            return None
        st["exit"] = _exit_status(ws)
        self._save(state_dir, st)
        return st["exit"]

    def state(self, state_dir):
        st = self._load(state_dir)
        if self._alive(st):
            return Status(RUNNING if st["started"] else CREATED, st["pid"])
        return Status(STOPPED, st["pid"], self._reap(state_dir, st))

    def start(self, state_dir):
        st = self._load(state_dir)
        if st["started"] or not self._alive(st):
            raise StateError("cannot start a container that is not created")
        fifo = os.path.join(state_dir, FIFO)
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as e:
            raise StateError(f"container process is gone ({e.strerror})") from None
        st["started"] = True
        self._save(state_dir, st)
        try:
            os.write(fd, b"1")
        finally:
            os.close(fd)
            os.unlink(fifo)

    def kill(self, state_dir, sig, all=False):
        st = self._load(state_dir)
        if not self._alive(st):
            raise StateError("container not running")
        try:
            (os.killpg if all else os.kill)(st["pid"], sig)
        except ProcessLookupError:
            raise NoSuchProcess() from None

    def wait(self, state_dir, timeout=None):
        import time
        st = self._load(state_dir)
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.002
        while True:
            code = self._reap(state_dir, st)
            if code is not None or not self._alive(st):
                return code if code is not None else self._reap(state_dir, st)
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"container {st['id']} still running after {timeout}s")
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def delete(self, state_dir, force=False):
        st = self._load(state_dir)
        if self._alive(st):
            if st["started"] and not force:
                raise StateError("container still running")
            try:
                os.killpg(st["pid"], 9)
            except ProcessLookupError:
                pass
            self.wait(state_dir, timeout=10)
        _remove(os.path.join(state_dir, FIFO), st.get("dirs", ()))
        try:
            os.unlink(os.path.join(state_dir, STATE_FILE))
        except FileNotFoundError:
            pass


def _remove(fifo, dirs):
    """The per-container files: the start fifo and the tmpfs stand-in directories."""
    import shutil
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)
        try:
            os.rmdir(os.path.dirname(d))
        except OSError:
            pass
    try:
        os.unlink(fifo)
    except FileNotFoundError:
        pass


def _child(spec, path, argv, env, limits, fifo, stdio, w):
    """Runs in the forked child. Errors before the "ok" go back on ``w``."""
    import signal
    try:
        for s in range(1, signal.NSIG):
            try:
                signal.signal(s, signal.SIG_DFL)
            except (OSError, ValueError):
                pass
        signal.pthread_sigmask(signal.SIG_SETMASK, ())
        os.setsid()
        fd = os.open(fifo, os.O_RDWR)
        if stdio:
            for target, (fname, flags) in enumerate(zip(stdio, (
                    os.O_RDONLY, os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                    os.O_WRONLY | os.O_CREAT | os.O_APPEND))):
                if fname is not None:
                    f = os.open(fname, flags, 0o644)
                    os.dup2(f, target)
                    os.close(f)
        try:
            os.chdir(spec.cwd)
        except OSError as e:
            raise OSError(e.errno, f"process.cwd {spec.cwd}: {e.strerror}") from None
        if spec.umask is not None:
            os.umask(spec.umask)
        import resource
        for name, res, soft, hard in limits:
            try:
                resource.setrlimit(res, (soft, hard))
            except (OSError, ValueError) as e:
                raise OSError(0, f"setrlimit {name} ({soft}, {hard}): {e}") from None
        if spec.uid is not None:
            os.setgroups(spec.groups)
            os.setgid(spec.gid)
            os.setuid(spec.uid)
        os.write(w, b"ok")
        os.close(w)
        w = -1
    except BaseException as e:
        os.write(w, str(e).encode() or type(e).__name__.encode())
        os._exit(127)
    if os.read(fd, 1) != b"1":
        os._exit(127)
    os.close(fd)
    try:
        os.execve(path, argv, env)
    except OSError as e:
        os.write(2, f"ocirun: exec {path}: {e.strerror}\n".encode())
    os._exit(127)
