"""cgroup v2 manager: one directory; controllers are enabled top-down in the ancestors'
cgroup.subtree_control (pure v2 only: in hybrid mode the unified mount root is shared with
the host and is left alone); device rules become a BPF program."""
from ... import osfast as os

from ...errors import ConfigError, Unsupported
from . import fs
from .fs import CgroupError, read_int, read_or, write

MOUNT = "/sys/fs/cgroup"


def shares_to_weight(shares):
    """runc's cpu.shares (2..262144) -> cpu.weight (1..10000) conversion."""
    if shares == 0:
        return 0
    return 1 + ((shares - 2) * 9999) // 262142


def blkio_weight_to_io_weight(w):
    """runc's blkio weight (10..1000) -> io.weight (1..10000)."""
    if w == 0:
        return 0
    return 1 + (w - 10) * 9999 // 990


def swap_to_v2(swap, memory):
    """runc's conversion of the v1 memory+swap limit to memory.swap.max (None: leave it)."""
    swap = swap or 0
    memory = memory or 0
    if memory == -1 and swap == 0:
        return -1
    if swap in (-1, 0):
        return None if swap == 0 else -1
    if memory in (0, -1):
        raise ConfigError("linux.resources.memory.swap",
                          "unable to set swap limit without memory limit")
    if memory < 0:
        raise ConfigError("linux.resources.memory.limit", f"invalid memory value: {memory}")
    if swap < memory:
        raise ConfigError("linux.resources.memory.swap",
                          "memory+swap limit should be >= memory limit")
    return swap - memory


def _max(v):
    return "max" if v is None or v < 0 else str(v)


class V2Manager(fs.Manager):
    mode = "v2"

    def __init__(self, path, mount=MOUNT, hybrid=False):
        super().__init__()
        self.path = path
        self.mount = mount
        self.hybrid = hybrid

    @classmethod
    def for_path(cls, cgroups_path, mount=MOUNT, hybrid=False):
        own = None if cgroups_path.startswith("/") else fs.own_cgroups().get("")
        return cls(fs.join(mount, "/", own, cgroups_path), mount, hybrid)

    def to_state(self):
        d = {"mode": "v2", "path": self.path}
        if self.mount != MOUNT:
            d["mount"] = self.mount
        if self.hybrid:
            d["hybrid"] = True
        return self._dev_state(d)

    @classmethod
    def from_state(cls, d):
        return cls(d["path"], d.get("mount", MOUNT), d.get("hybrid", False))._dev_from(d)

    @property
    def paths(self):
        return {"": self.path}

    def cgroupns_path(self):
        return self.path

    def exists(self):
        return os.path.isdir(self.path)

    # ------------------------------------------------------------------ lifecycle
    def create(self):
        if not self.hybrid:
            self._delegate(os.path.dirname(self.path))
        try:
            os.makedirs(self.path, 0o755, exist_ok=True)
        except OSError as e:
            raise CgroupError(f"cannot create cgroup {self.path}: {e.strerror}") from None

    def _delegate(self, parent):
        """Make every controller of the mount root available down to ``parent``."""
        rel = os.path.relpath(parent, self.mount)
        levels = [self.mount]
        if rel != ".":
            for part in rel.split("/"):
                levels.append(levels[-1] + "/" + part)
        for d in levels:
            if not os.path.isdir(d):
                os.mkdir(d, 0o755)
            avail = read_or(d + "/cgroup.controllers", "").split()
            have = set(read_or(d + "/cgroup.subtree_control", "").split())
            want = [c for c in avail if c not in have]
            if want:
                try:
                    write(d + "/cgroup.subtree_control", " ".join("+" + c for c in want))
                except CgroupError:
                    # one at a time, so one refusal (e.g. a threaded controller) costs only it
                    for c in want:
                        try:
                            write(d + "/cgroup.subtree_control", "+" + c)
                        except CgroupError as e:
                            self.warn(str(e))

    def add(self, pid):
        write(self.path + "/cgroup.procs", str(pid))

    def pids(self):
        return sorted(set(fs.procs(self.path)))

    def freeze(self):
        write(self.path + "/cgroup.freeze", "1")
        self.freeze_wait(self._frozen_state, "1", "freeze")

    def thaw(self):
        write(self.path + "/cgroup.freeze", "0")
        self.freeze_wait(self._frozen_state, "0", "thaw")

    def _frozen_state(self):
        return str(fs.read_kv(self.path + "/cgroup.events").get("frozen", "?"))

    def is_frozen(self):
        return read_or(self.path + "/cgroup.freeze", "0").strip() == "1"

    def can_freeze(self):
        return os.path.exists(self.path + "/cgroup.freeze")

    def _kill_file(self):
        f = self.path + "/cgroup.kill"
        return f if os.path.exists(f) else None

    def destroy(self):
        fs.remove_paths({"": self.path})

    # ------------------------------------------------------------------ OOM
    def oom_count(self):
        return fs.read_kv(self.path + "/memory.events").get("oom_kill", 0)

    def oom_watcher(self):
        from .. import syscalls as sc
        f = self.path + "/memory.events"
        if not os.path.exists(f):
            raise Unsupported(f"the memory controller is not enabled for {self.path}")
        ifd = sc.inotify_init1(sc.IN_CLOEXEC | sc.IN_NONBLOCK)
        try:
            sc.inotify_add_watch(ifd, f, sc.IN_MODIFY)
        except BaseException:
            os.close(ifd)
            raise
        return fs.OomWatcher(ifd, self.oom_count, _drain)

    # ------------------------------------------------------------------ limits
    def _w(self, name, value, field):
        f = f"{self.path}/{name}"
        try:
            write(f, value)
        except CgroupError:
            if not os.path.exists(f):
                ctrl = name.split(".", 1)[0]
                raise Unsupported(f'{field}: the cgroup v2 "{ctrl}" controller is not '
                                  f'available in {self.path} (no {name})') from None
            raise

    def apply(self, r, spec_devices=(), default_devices=True, update=False):
        from . import devices as dv
        if r is not None:
            if r.memory is not None:
                self._memory(r.memory, update)
            if r.cpu is not None:
                self._cpu(r.cpu)
            if r.pids is not None:
                self._w("pids.max", "max" if r.pids <= 0 else r.pids,
                        "linux.resources.pids.limit")
            if r.block_io is not None:
                self._io(r.block_io)
            for size, limit in r.hugepage_limits or ():
                self._w(f"hugetlb.{size}.max", limit, "linux.resources.hugepageLimits")
            if r.rdma:
                from .v1 import _rdma_line
                for dev, (h, o) in r.rdma.items():
                    self._w("rdma.max", _rdma_line(dev, h, o), "linux.resources.rdma")
            if r.network is not None and (r.network.class_id or r.network.priorities):
                self.warn("linux.resources.network is ignored: cgroup v2 has no net_cls/net_prio")
            for k, v in (r.unified or {}).items():   # last: overrides the converted values
                self._w(k, v, f"linux.resources.unified.{k}")
        if not update or (r is not None and r.devices is not None):
            if not update:
                self.dropped_defaults = dv.overridden_defaults(spec_devices)
                self.default_devices = default_devices
            rules = dv.effective_rules(r.devices if r is not None else None,
                                       self.dropped_defaults, self.default_devices)
            try:
                dv.attach_v2(self.path, rules)
            except OSError as e:
                raise CgroupError(f"cannot attach the device filter to {self.path}: "
                                  f"{e.strerror} ({e.filename})") from None

    def update(self, r):
        self.apply(r, update=True)

    def _memory(self, m, update):
        f = "linux.resources.memory"
        if m.check_before_update and update and m.limit is not None and m.limit > 0:
            usage = read_int(self.path + "/memory.current")
            if usage > m.limit:
                raise CgroupError(f"rejecting memory limit {m.limit} below current usage "
                                  f"{usage}")
        swap = swap_to_v2(m.swap, m.limit) if m.swap is not None or m.limit == -1 else None
        if swap is not None:
            if os.path.exists(self.path + "/memory.swap.max"):
                self._w("memory.swap.max", _max(swap), f + ".swap")
            elif swap != -1:
                self.warn(f"{f}.swap is ignored: no swap accounting (memory.swap.max)")
        if m.limit is not None and m.limit != 0:
            self._w("memory.max", _max(m.limit), f + ".limit")
            got = read_int(self.path + "/memory.max")
            if m.limit > 0 and abs(got - m.limit) >= 4096:
                raise CgroupError(f"{f}.limit: wrote {m.limit} but memory.max reads {got}")
        if m.reservation is not None and m.reservation != 0:
            self._w("memory.low", _max(m.reservation), f + ".reservation")
        if m.kernel is not None or m.kernel_tcp is not None:
            self.warn("kernel memory settings (memory.kernel, memory.kernelTCP) are ignored "
                      "on cgroup v2")
        if m.swappiness is not None:
            self.warn(f"{f}.swappiness is ignored on cgroup v2")
        if m.disable_oom_killer:
            self.warn(f"{f}.disableOOMKiller is ignored on cgroup v2")

    def _cpu(self, c):
        f = "linux.resources.cpu"
        if c.realtime_runtime or c.realtime_period:
            raise Unsupported(f"{f}.realtimeRuntime/realtimePeriod: realtime scheduling "
                              "limits are not supported on cgroup v2")
        if c.shares:
            w = shares_to_weight(c.shares)
            if not 1 <= w <= 10000:
                raise ConfigError(f + ".shares", f"invalid value {c.shares}: the weight "
                                  f"{w} is outside 1..10000")
            self._w("cpu.weight", w, f + ".shares")
        if c.quota or c.period:
            s = str(c.quota) if c.quota and c.quota > 0 else "max"
            if c.period:
                s += f" {c.period}"
            self._w("cpu.max", s, f + ".quota")
        if c.burst is not None:
            self._w("cpu.max.burst", c.burst, f + ".burst")
        if c.idle is not None:
            self._w("cpu.idle", c.idle, f + ".idle")
        if c.cpus:
            self._w("cpuset.cpus", c.cpus, f + ".cpus")
        if c.mems:
            self._w("cpuset.mems", c.mems, f + ".mems")

    def _io(self, b):
        f = "linux.resources.blockIO"
        bfq = os.path.exists(self.path + "/io.bfq.weight")
        if b.weight:
            if bfq:
                self._w("io.bfq.weight", b.weight, f + ".weight")
            else:
                self._w("io.weight", blkio_weight_to_io_weight(b.weight), f + ".weight")
        if b.leaf_weight:
            self.warn(f"{f}.leafWeight is ignored on cgroup v2")
        for wd in b.weight_device or ():
            if wd.weight:
                if bfq:
                    self._w("io.bfq.weight", f"{wd.major}:{wd.minor} {wd.weight}",
                            f + ".weightDevice")
                else:
                    self._w("io.weight", f"{wd.major}:{wd.minor} "
                            f"{blkio_weight_to_io_weight(wd.weight)}", f + ".weightDevice")
        lines = {}
        for lst, key in ((b.throttle_read_bps, "rbps"), (b.throttle_write_bps, "wbps"),
                         (b.throttle_read_iops, "riops"), (b.throttle_write_iops, "wiops")):
            for t in lst or ():
                lines.setdefault(f"{t.major}:{t.minor}", []).append(
                    f"{key}={'max' if t.rate == 0 else t.rate}")
        for dev, kv in lines.items():
            self._w("io.max", f"{dev} {' '.join(kv)}", f + ".throttle")

    # ------------------------------------------------------------------ stats
    def stats(self):
        from . import stats
        return stats.v2(self)


def _drain(fd):
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass
