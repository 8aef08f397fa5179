"""Container state on disk: ``<root>/<id>/state.json`` (+ ``exec.fifo`` while created), a
per-container lock (flock on the directory), and the status rules of the runtime-spec:
creating → created → running → stopped (+ paused)."""
import errno
from . import osfast as os
import time

from . import DEFAULT_ROOT, STATE, jsonfast  # noqa: F401 - DEFAULT_ROOT is state's API too
from .errors import ContainerExists, ContainerNotFound, InvalidID

FIFO = "exec.fifo"
_ID_OK = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.")


def validate_id(cid):
    if not cid:
        raise InvalidID("container id cannot be empty")
    if cid in (".", "..") or not set(cid) <= _ID_OK or len(cid) > 1024:
        raise InvalidID(f"invalid container id format: {cid}")
    return cid


def boot_id():
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return ""


def proc_stat(pid):
    """(state letter, start time in clock ticks) of pid, or None if it does not exist."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    rest = data[data.rfind(b")") + 2:].split()
    return rest[0].decode(), int(rest[19])


def rfc3339nano(ns=None):
    ns = time.time_ns() if ns is None else ns
    s, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s)) + f".{frac:09d}Z"


class Container:
    """One container's on-disk record. ``data`` is the persisted dict; ``status()`` is live."""

    def __init__(self, root, cid):
        self.root = root
        self.id = cid
        self.dir = os.path.join(root, cid)
        self.data = None
        self._lockfd = -1

    # ---------------------------------------------------------------- lifecycle of the record
    @classmethod
    def new(cls, root, cid):
        validate_id(cid)
        os.makedirs(root, mode=0o711, exist_ok=True)
        c = cls(root, cid)
        try:
            os.mkdir(c.dir, 0o711)
        except FileExistsError:
            raise ContainerExists(cid) from None
        c.lock()
        return c

    @classmethod
    def load(cls, root, cid, lock=False):
        validate_id(cid)
        c = cls(root, cid)
        if lock:
            try:
                c.lock()
            except FileNotFoundError:
                raise ContainerNotFound(cid) from None
        try:
            with open(os.path.join(c.dir, STATE), "rb") as f:
                c.data = jsonfast.loads(f.read())
        except FileNotFoundError:
            if not os.path.isdir(c.dir):
                c.unlock()
                raise ContainerNotFound(cid) from None
            c.data = None  # a create killed before it wrote state: "creating"/partial
        except ValueError:
            c.data = None
        return c

    def lock(self):
        import fcntl   # here: state, list and kill never lock (an extension module to load)
        fd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        fcntl.flock(fd, fcntl.LOCK_EX)
        self._lockfd = fd

    def unlock(self):
        if self._lockfd >= 0:
            os.close(self._lockfd)
            self._lockfd = -1

    def save(self):
        tmp = os.path.join(self.dir, STATE + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, jsonfast.dumps(self.data).encode())
        finally:
            os.close(fd)
        os.rename(tmp, os.path.join(self.dir, STATE))

    def remove(self):
        for name in (FIFO, STATE, STATE + ".tmp"):
            try:
                os.unlink(os.path.join(self.dir, name))
            except FileNotFoundError:
                pass
        try:
            os.rmdir(self.dir)
        except FileNotFoundError:
            pass
        except OSError as e:
            if e.errno == errno.ENOTEMPTY:  # leftovers of another tool: remove our dir anyway
                import shutil
                shutil.rmtree(self.dir, ignore_errors=True)
            else:
                raise
        self.unlock()

    # ---------------------------------------------------------------- status
    @property
    def pid(self):
        return (self.data or {}).get("pid", 0)

    def init_alive(self):
        d = self.data
        if not d or not d.get("pid"):
            return False
        if d.get("boot_id") and d["boot_id"] != boot_id():
            return False  # state from a previous boot: the pid means nothing now
        st = proc_stat(d["pid"])
        if st is None or st[0] in ("Z", "X"):
            return False
        return st[1] == d.get("start_time", st[1])

    def status(self):
        d = self.data
        if d is None:
            return "creating"
        if d.get("status") == "creating":
            return "creating" if self.init_alive() or not d.get("pid") else "stopped"
        if not self.init_alive():
            return "stopped"
        if d.get("paused"):
            return "paused"
        if os.path.exists(os.path.join(self.dir, FIFO)):
            return "created"
        return "running"

    def state_json(self):
        """The runtime-spec state object (plus runc's extra fields clients read)."""
        d = self.data or {}
        st = self.status()
        out = {
            "ociVersion": d.get("ociVersion", "1.3.0"),
            "id": self.id,
            "pid": d.get("pid", 0) if st in ("created", "running", "paused", "creating") else 0,
            "status": st,
            "bundle": d.get("bundle", ""),
            "rootfs": d.get("rootfs", ""),
            "created": d.get("created", ""),
            "owner": d.get("owner", ""),
        }
        if d.get("annotations"):
            out["annotations"] = d["annotations"]
        return out


def list_ids(root):
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if os.path.isdir(os.path.join(root, n)))
