"""Small file helpers for cgroupfs and the Manager base class shared by v1 and v2."""
from ... import osfast as os

from ...errors import OciError, SetupError

_W = os.O_WRONLY | os.O_CLOEXEC


class CgroupError(SetupError):
    """Writing a limit or managing a cgroup failed; the message names the file."""


def write(path, value):
    data = value if isinstance(value, bytes) else str(value).encode()
    try:
        fd = os.open(path, _W)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
    except OSError as e:
        raise CgroupError(f'failed to write "{data.decode(errors="replace")}" to "{path}": '
                          f'{e.strerror.lower() if e.strerror else e}') from None


def read(path):
    with open(path, "rb") as f:
        return f.read().decode()


def read_or(path, default=None):
    try:
        with open(path, "rb") as f:
            return f.read().decode()
    except OSError:
        return default


def read_int(path, default=0):
    s = read_or(path)
    if s is None:
        return default
    s = s.strip()
    if s == "max":
        return -1
    try:
        return int(s)
    except ValueError:
        return default


def read_kv(path):
    """A flat-keyed file ("key value" lines) -> dict of ints."""
    out = {}
    s = read_or(path)
    if s:
        for line in s.splitlines():
            k, _, v = line.partition(" ")
            try:
                out[k] = int(v)
            except ValueError:
                pass
    return out


def procs(path, recursive=True):
    """Pids in cgroup ``path`` (and its descendants)."""
    out = []
    s = read_or(os.path.join(path, "cgroup.procs"))
    if s is None:
        return out
    out.extend(int(x) for x in s.split())
    if recursive:
        try:
            with os.scandir(path) as it:
                for e in it:
                    if e.is_dir(follow_symlinks=False):
                        out.extend(procs(e.path))
        except OSError:
            pass
    return out


def rmtree(path):
    """rmdir ``path`` and its sub-cgroups, deepest first. Returns silently when it is gone;
    raises OSError (EBUSY while tasks remain). A cgroup without sub-cgroups (the usual case)
    goes with one rmdir: its directory is listed only when that fails."""
    try:
        os.rmdir(path)
        return
    except FileNotFoundError:
        return
    except OSError:
        pass        # EBUSY: sub-cgroups, or tasks (the rmdir below says which)
    try:
        with os.scandir(path) as it:
            subs = [e.path for e in it if e.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return
    for s in subs:
        rmtree(s)
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass


def remove_paths(paths, timeout=2.0):
    """Remove every cgroup dir in ``paths`` ({name: dir}), retrying while the kernel still
    counts exiting tasks (a dying pid namespace can take a while under load: runc retries
    too). Raises runc's "Failed to remove paths: map[...]"."""
    import time
    left = dict(paths)
    delay = 0.002
    end = time.monotonic() + timeout
    while True:
        for k, p in list(left.items()):
            try:
                rmtree(p)
                del left[k]
            except OSError:
                pass
        if not left or time.monotonic() >= end:
            break
        time.sleep(delay)
        delay = min(delay * 2, 0.1)
    if left:
        items = " ".join(f"{k}:{v}" for k, v in sorted(left.items()))
        raise OciError(f"Failed to remove paths: map[{items}]")


def mountinfo_cgroups():
    """[(mountpoint, mount_root, fstype, super_options)] for cgroup and cgroup2 mounts."""
    out = []
    with open("/proc/self/mountinfo", "rb") as f:
        data = f.read().decode(errors="replace")
    for line in data.splitlines():
        if " - cgroup" not in line:
            continue
        pre, _, post = line.partition(" - ")
        fields = pre.split(" ")
        ptype, _src, sopts = (post.split(" ") + ["", ""])[:3]
        if ptype not in ("cgroup", "cgroup2"):
            continue
        out.append((_unescape(fields[4]), _unescape(fields[3]), ptype, sopts))
    return out


def _unescape(s):
    if "\\" not in s:
        return s
    return s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n") \
        .replace("\\134", "\\")


def own_cgroups(pid="self"):
    """/proc/<pid>/cgroup -> {controller-or-"": path}; "" is the v2 (unified) entry."""
    out = {}
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _id, ctrls, path = line.rstrip("\n").split(":", 2)
            if not ctrls:
                out[""] = path
            else:
                for c in ctrls.split(","):
                    out[c] = path
    return out


def join(mountpoint, mount_root, own, cgroups_path):
    """The directory for ``cgroups_path`` in one hierarchy: an absolute path is taken from
    the hierarchy's root; a relative one from this process's own cgroup (runc)."""
    if cgroups_path.startswith("/"):
        rel = cgroups_path
    else:
        base = own or "/"
        if mount_root != "/" and (base == mount_root or base.startswith(mount_root + "/")):
            base = base[len(mount_root):] or "/"
        rel = base.rstrip("/") + "/" + cgroups_path
    rel = os.path.normpath("/" + rel.lstrip("/"))
    return mountpoint.rstrip("/") + ("" if rel == "/" else rel)


class OomWatcher:
    """A pollable fd that becomes readable on OOM events; ``wait(timeout)`` returns the number
    of new OOM kills (0 on timeout)."""

    def __init__(self, fd, count_fn, drain):
        self.fd = fd
        self._count = count_fn
        self._drain = drain
        self.last = count_fn()

    def fileno(self):
        return self.fd

    def poll(self):
        n = self._count()
        new, self.last = n - self.last, n
        return max(new, 0)

    def drain(self):
        """Consume the pending notification(s) on the fd (after poll() said readable)."""
        self._drain(self.fd)

    def wait(self, timeout=None):
        import select
        import time
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            new = self.poll()
            if new:
                return new
            left = None if end is None else end - time.monotonic()
            if left is not None and left <= 0:
                return 0
            r, _, _ = select.select([self.fd], [], [], left)
            if r:
                self._drain(self.fd)

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


class Manager:
    """Interface shared by the v1 (also hybrid) and v2 managers; see docs/cgroups.md."""
    mode = None
    freeze_tries = 200    # ~4 s: 0.2 ms doubling up to 20 ms per try

    def __init__(self):
        self.warnings = []
        self.dropped_defaults = []   # default device paths linux.devices redefines (for update)
        self.default_devices = True

    def _dev_state(self, d):
        if self.dropped_defaults:
            d["dropped_default_devices"] = list(self.dropped_defaults)
        if not self.default_devices:
            d["default_devices"] = False
        return d

    def _dev_from(self, d):
        self.dropped_defaults = list(d.get("dropped_default_devices", ()))
        self.default_devices = d.get("default_devices", True)
        return self

    @classmethod
    def from_state(cls, d):
        """Rebuild the right manager (v1/hybrid or v2) from ``to_state()``; no scans."""
        from . import from_state
        return from_state(d)

    def warn(self, msg):
        self.warnings.append(msg)

    def wait_oom(self, timeout=None):
        with self.oom_watcher() as w:
            return w.wait(timeout)

    def freeze_wait(self, read_state, want, what):
        import time
        delay = 0.0002
        for _ in range(self.freeze_tries):
            if read_state() == want:
                return
            time.sleep(delay)
            delay = min(delay * 2, 0.02)
        state = read_state()
        if what == "freeze":
            try:   # do not leave it half frozen (FREEZING), as runc
                self.thaw()
            except OciError:
                pass
        raise CgroupError(f"unable to {what} the cgroup {self.path}: still {state}")

    def kill_all(self, sig):
        """Signal every process in the container's cgroup. SIGKILL uses cgroup.kill where
        the kernel has it; otherwise the cgroup is frozen so nothing forks away while each
        pid is signalled, then thawed. A cgroup that was frozen before stays frozen, except
        after SIGKILL: it is thawed so the kill takes effect (a v1-frozen task does not die
        while frozen)."""
        import _signal as signal
        can_freeze = self.can_freeze()
        was_frozen = can_freeze and self.is_frozen()
        kill_file = self._kill_file()
        if sig == signal.SIGKILL and kill_file:
            write(kill_file, "1")
        else:
            if can_freeze and not was_frozen:
                self.freeze()
            try:
                for pid in self.pids():
                    try:
                        os.kill(pid, sig)
                    except ProcessLookupError:
                        pass
            finally:
                if can_freeze and not was_frozen:
                    self.thaw()
        if was_frozen and sig == signal.SIGKILL:
            self.thaw()

    def _kill_file(self):
        return None

    def can_freeze(self):
        return True
