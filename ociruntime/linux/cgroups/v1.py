"""cgroup v1 manager, also used in hybrid mode (v1 controllers plus a cgroup2 mount at
/sys/fs/cgroup/unified): like runc it creates the container's cgroup in every v1 hierarchy
and in the unified one, writes limits into the v1 controllers and, in hybrid mode, uses the
unified cgroup for cgroup.kill and ``unified`` keys of controllers that live there."""
from ... import osfast as os

from ...errors import ConfigError, Unsupported
from . import fs
from .fs import CgroupError, read_int, read_or, write

UNIFIED = ""   # key of the unified (cgroup2) directory in ``paths``


class V1Manager(fs.Manager):
    mode = "v1"

    def __init__(self, paths, hybrid=False):
        """``paths``: {controller: dir} (co-mounted controllers share a dir; "name=systemd"
        too), plus "" -> the unified dir in hybrid mode."""
        super().__init__()
        self.paths = dict(paths)
        self.hybrid = hybrid
        if hybrid:
            self.mode = "hybrid"

    # ------------------------------------------------------------------ construction
    @classmethod
    def for_path(cls, cgroups_path, hybrid):
        mounts = fs.mountinfo_cgroups()
        own = fs.own_cgroups() if not cgroups_path.startswith("/") else {}
        paths = {}
        for mnt, root, typ, sopts in mounts:
            if typ == "cgroup2":
                if hybrid and UNIFIED not in paths:
                    paths[UNIFIED] = fs.join(mnt, root, own.get(""), cgroups_path)
                continue
            ctrls = [o for o in sopts.split(",") if o not in ("rw", "ro") and
                     not o.startswith(("release_agent=", "clone_children", "noprefix",
                                       "xattr", "cpuset_v2_mode", "favordynmods"))]
            for c in ctrls:
                if c not in paths:
                    paths[c] = fs.join(mnt, root, own.get(c), cgroups_path)
        if not any(k for k in paths):
            raise Unsupported("no cgroup v1 hierarchy is mounted")
        return cls(paths, hybrid)

    def to_state(self):
        return self._dev_state({"mode": self.mode, "paths": self.paths})

    @classmethod
    def from_state(cls, d):
        return cls(d["paths"], d.get("mode") == "hybrid")._dev_from(d)

    @property
    def path(self):
        """A representative directory (the memory one, else any)."""
        return self.paths.get("memory") or self.paths.get("devices") or \
            next(iter(self.paths.values()))

    def dirs(self):
        """Unique directories, each once: {dir: first key}."""
        out = {}
        for k, p in self.paths.items():
            out.setdefault(p, k)
        return out

    def cgroupns_path(self):
        return self.paths.get(UNIFIED) or self.path

    def exists(self):
        return os.path.isdir(self.path)

    # ------------------------------------------------------------------ lifecycle
    def create(self):
        cpuset = self.paths.get("cpuset")
        for d in self.dirs():
            try:
                _mkdir(d, d == cpuset)
            except OSError as e:
                raise CgroupError(f"cannot create cgroup {d}: {e.strerror}") from None

    def add(self, pid):
        b = str(pid).encode()
        for d in self.dirs():
            write(d + "/cgroup.procs", b)

    def open_tasks(self):
        """O_WRONLY fds of the ``tasks`` file of each v1 hierarchy (not the unified one): a
        single-threaded process moves itself in by writing "0" to each. Writing "0" (the
        calling thread) is the one migration the kernel does without its threadgroup lock,
        whose first use after a quiet spell waits for an RCU grace period (6-25 ms here;
        writing another process's pid, even to ``tasks``, takes it)."""
        uni = self.paths.get(UNIFIED)
        fds = []
        try:
            for d in self.dirs():
                if d != uni:
                    fds.append(os.open(d + "/tasks", os.O_WRONLY | os.O_CLOEXEC))
        except OSError as e:
            for fd in fds:
                os.close(fd)
            raise CgroupError(f"cannot open {d}/tasks: {e.strerror}") from None
        return fds

    def unified_dir(self):
        """The hybrid host's unified (cgroup2) directory, or None."""
        return self.paths.get(UNIFIED)

    def pids(self):
        return sorted(set(fs.procs(self.paths.get("devices") or
                                   self.paths.get("freezer") or self.path)))

    def can_freeze(self):
        return "freezer" in self.paths

    def freeze(self):
        p = self._freezer()
        write(p + "/freezer.state", "FROZEN")
        self.freeze_wait(lambda: read_or(p + "/freezer.state", "").strip(), "FROZEN", "freeze")

    def thaw(self):
        p = self._freezer()
        write(p + "/freezer.state", "THAWED")
        self.freeze_wait(lambda: read_or(p + "/freezer.state", "").strip(), "THAWED", "thaw")

    def is_frozen(self):
        p = self.paths.get("freezer")
        return p is not None and read_or(p + "/freezer.state", "").strip() == "FROZEN"

    def _freezer(self):
        p = self.paths.get("freezer")
        if p is None:
            raise Unsupported("cgroup v1 freezer controller is not mounted")
        return p

    def _kill_file(self):
        u = self.paths.get(UNIFIED)
        if u and os.path.exists(u + "/cgroup.kill"):
            return u + "/cgroup.kill"
        return None

    def destroy(self):
        fs.remove_paths({k: p for p, k in self.dirs().items()})

    # ------------------------------------------------------------------ OOM
    def oom_count(self):
        p = self.paths.get("memory")
        return fs.read_kv(p + "/memory.oom_control").get("oom_kill", 0) if p else 0

    def oom_watcher(self):
        """eventfd registered on memory.oom_control through cgroup.event_control."""
        p = self.paths.get("memory")
        if p is None:
            raise Unsupported("cgroup v1 memory controller is not mounted")
        efd = os.eventfd(0, os.EFD_CLOEXEC)
        try:
            ofd = os.open(p + "/memory.oom_control", os.O_RDONLY | os.O_CLOEXEC)
            try:
                write(p + "/cgroup.event_control", f"{efd} {ofd}")
            finally:
                os.close(ofd)
        except BaseException:
            os.close(efd)
            raise
        return fs.OomWatcher(efd, self.oom_count, lambda fd: os.eventfd_read(fd))

    # ------------------------------------------------------------------ limits
    def apply(self, r, spec_devices=(), default_devices=True, update=False):
        """Write every limit in Resources ``r`` (None: only the device rules) and read the
        values back. Device rules are always applied on create (deny all, ``r.devices``, runc's
        defaults minus those ``spec_devices`` (linux.devices) redefine); on update only when
        ``r.devices`` is set."""
        from . import devices as dv
        if r is not None:
            if r.memory is not None:
                self._memory(r.memory, update)
            if r.cpu is not None:
                self._cpu(r.cpu)
            if r.pids is not None:
                self._set("pids", "pids.max", "max" if r.pids <= 0 else r.pids,
                          "linux.resources.pids.limit")
            if r.block_io is not None:
                self._blkio(r.block_io)
            if r.hugepage_limits:
                self._hugetlb(r.hugepage_limits)
            if r.network is not None:
                self._network(r.network)
            if r.rdma:
                p = self._need("rdma", "linux.resources.rdma")
                for dev, (h, o) in r.rdma.items():
                    write(p + "/rdma.max", _rdma_line(dev, h, o))
            if r.unified:
                self._unified(r.unified)
        if "devices" in self.paths and (not update or (r is not None and r.devices is not None)):
            if not update:
                self.dropped_defaults = dv.overridden_defaults(spec_devices)
                self.default_devices = default_devices
            rules = dv.effective_rules(r.devices if r is not None else None,
                                       self.dropped_defaults, self.default_devices)
            p = self.paths["devices"]
            writes = dv.v1_update_writes(read_or(p + "/devices.list", ""), rules) if update \
                else None
            for f, line in writes if writes is not None else dv.v1_writes(rules):
                write(f"{p}/{f}", line)

    def update(self, r):
        self.apply(r, update=True)

    def _need(self, ctrl, field):
        p = self.paths.get(ctrl)
        if p is None:
            raise Unsupported(f"{field}: the cgroup v1 {ctrl} controller is not mounted")
        return p

    def _set(self, ctrl, name, value, field, check=True):
        p = self._need(ctrl, field)
        f = f"{p}/{name}"
        write(f, value)
        if check:
            got = read_or(f, "").strip()
            want = str(value)
            if got != want and not (want == "-1" and got in ("max", "9223372036854771712")):
                raise CgroupError(f"{field}: wrote {want} to {f} but it reads {got}")
        return f

    def _memory(self, m, update):
        f = "linux.resources.memory"
        p = self._need("memory", f)
        if m.check_before_update and update and m.limit is not None and m.limit > 0:
            usage = read_int(p + "/memory.usage_in_bytes")
            if usage > m.limit:
                raise CgroupError(f"rejecting memory limit {m.limit} below current usage "
                                  f"{usage}")
        has_memsw = os.path.exists(p + "/memory.memsw.limit_in_bytes")
        limit, swap = m.limit, m.swap
        if limit == -1 and swap is None and has_memsw:
            swap = -1
        if swap is not None and not has_memsw:
            if swap not in (-1, 0):
                self.warn("memory.swap is ignored: the kernel has no swap accounting "
                          "(memory.memsw.*)")
            swap = None
        def mem():
            if limit is not None:
                self._set("memory", "memory.limit_in_bytes", limit, f + ".limit", check=False)

        def sw():
            if swap is not None:
                self._set("memory", "memory.memsw.limit_in_bytes", swap, f + ".swap",
                          check=False)
        if limit is not None and swap is not None:
            cur = read_int(p + "/memory.limit_in_bytes", -1)
            if swap == -1 or cur < swap:
                sw(); mem()   # noqa: E702 -- raise memsw first so the new limit fits
            else:
                mem(); sw()   # noqa: E702
        else:
            mem(); sw()       # noqa: E702
        if m.reservation is not None:
            self._set("memory", "memory.soft_limit_in_bytes", m.reservation,
                      f + ".reservation", check=False)
        if m.kernel is not None:
            try:
                write(p + "/memory.kmem.limit_in_bytes", m.kernel)
            except CgroupError as e:
                self.warn(f"{f}.kernel is ignored: {e}")
        if m.kernel_tcp is not None:
            self._set("memory", "memory.kmem.tcp.limit_in_bytes", m.kernel_tcp,
                      f + ".kernelTCP", check=False)
        if m.swappiness is not None:
            self._set("memory", "memory.swappiness", m.swappiness, f + ".swappiness")
        if m.disable_oom_killer:
            write(p + "/memory.oom_control", "1")
        if m.use_hierarchy is not None:
            try:
                write(p + "/memory.use_hierarchy", "1" if m.use_hierarchy else "0")
            except CgroupError:
                if read_or(p + "/memory.use_hierarchy", "").strip() != \
                        ("1" if m.use_hierarchy else "0"):
                    raise ConfigError(f + ".useHierarchy", "this kernel always uses the "
                                      "memory hierarchy (memory.use_hierarchy is 1)") from None
        # read back the limits: the kernel rounds to pages, so compare within a page
        for name, want, fld in (("memory.limit_in_bytes", limit, "limit"),
                                ("memory.memsw.limit_in_bytes", swap, "swap"),
                                ("memory.soft_limit_in_bytes", m.reservation, "reservation")):
            if want is not None and want >= 0:
                got = read_int(f"{p}/{name}")
                if abs(got - want) >= 4096:
                    raise CgroupError(f"{f}.{fld}: wrote {want} to {p}/{name} but it reads {got}")

    def _cpu(self, c):
        f = "linux.resources.cpu"
        if c.shares is not None and c.shares != 0:
            cf = self._set("cpu", "cpu.shares", c.shares, f + ".shares", check=False)
            got = read_int(cf)
            if c.shares > got:
                raise CgroupError(f"the maximum allowed cpu-shares is {got}")
            if c.shares < got:
                raise CgroupError(f"the minimum allowed cpu-shares is {got}")
        if c.period is not None and c.period != 0:
            try:
                self._set("cpu", "cpu.cfs_period_us", c.period, f + ".period")
            except CgroupError:
                if c.quota is None:
                    raise
                # the old quota may not fit the new period: write the quota first
                self._set("cpu", "cpu.cfs_quota_us", c.quota, f + ".quota")
                self._set("cpu", "cpu.cfs_period_us", c.period, f + ".period")
        if c.quota is not None and c.quota != 0:
            self._set("cpu", "cpu.cfs_quota_us", c.quota, f + ".quota")
        if c.burst is not None:
            self._set("cpu", "cpu.cfs_burst_us", c.burst, f + ".burst")
        if c.realtime_period is not None and c.realtime_period != 0:
            self._set("cpu", "cpu.rt_period_us", c.realtime_period, f + ".realtimePeriod")
        if c.realtime_runtime is not None and c.realtime_runtime != 0:
            self._set("cpu", "cpu.rt_runtime_us", c.realtime_runtime, f + ".realtimeRuntime")
        if c.idle is not None:
            self._set("cpu", "cpu.idle", c.idle, f + ".idle")
        if c.cpus:
            self._set("cpuset", "cpuset.cpus", c.cpus, f + ".cpus", check=False)
        if c.mems:
            self._set("cpuset", "cpuset.mems", c.mems, f + ".mems", check=False)

    def _blkio(self, b):
        f = "linux.resources.blockIO"
        p = self._need("blkio", f)
        bfq = not os.path.exists(p + "/blkio.weight")
        pre = "blkio.bfq." if bfq else "blkio."
        if (b.weight or any(wd.weight for wd in b.weight_device or ())) and \
                bfq and not os.path.exists(p + "/blkio.bfq.weight"):
            raise Unsupported(f"{f}.weight: this kernel has no blkio weight file (neither "
                              "blkio.weight nor blkio.bfq.weight: no CFQ/BFQ I/O scheduler)")
        if b.weight:
            self._set("blkio", pre + "weight", b.weight, f + ".weight", check=False)
        if b.leaf_weight:
            if not os.path.exists(p + "/blkio.leaf_weight"):
                self.warn(f"{f}.leafWeight is ignored: the kernel has no blkio.leaf_weight "
                          "(CFQ is gone)")
            else:
                write(p + "/blkio.leaf_weight", b.leaf_weight)
        for wd in b.weight_device or ():
            if wd.weight:
                write(p + f"/{pre}weight_device", f"{wd.major}:{wd.minor} {wd.weight}")
            if wd.leaf_weight:
                if os.path.exists(p + "/blkio.leaf_weight_device"):
                    write(p + "/blkio.leaf_weight_device",
                          f"{wd.major}:{wd.minor} {wd.leaf_weight}")
                else:
                    self.warn(f"{f}.weightDevice.leafWeight is ignored: no "
                              "blkio.leaf_weight_device")
        for lst, name in ((b.throttle_read_bps, "read_bps_device"),
                          (b.throttle_write_bps, "write_bps_device"),
                          (b.throttle_read_iops, "read_iops_device"),
                          (b.throttle_write_iops, "write_iops_device")):
            for t in lst or ():
                write(f"{p}/blkio.throttle.{name}", f"{t.major}:{t.minor} {t.rate}")

    def _hugetlb(self, limits):
        f = "linux.resources.hugepageLimits"
        p = self.paths.get("hugetlb")
        if p is None:
            raise Unsupported(f"{f}: the hugetlb controller is not available as cgroup v1 "
                              "controller on this host" +
                              (" (it is only in the unified hierarchy)" if self.hybrid else ""))
        for size, limit in limits:
            self._set("hugetlb", f"hugetlb.{size}.limit_in_bytes", limit, f, check=False)

    def _network(self, n):
        f = "linux.resources.network"
        if n.class_id is not None:
            if "net_cls" not in self.paths:
                self.warn(f"{f}.classID is ignored: the net_cls controller is not mounted")
            else:
                self._set("net_cls", "net_cls.classid", n.class_id, f + ".classID")
        if n.priorities:
            if "net_prio" not in self.paths:
                self.warn(f"{f}.priorities is ignored: the net_prio controller is not mounted")
            else:
                for name, prio in n.priorities:
                    write(self.paths["net_prio"] + "/net_prio.ifpriomap", f"{name} {prio}")

    def _unified(self, u):
        f = "linux.resources.unified"
        udir = self.paths.get(UNIFIED)
        ctrls = set()
        if udir:
            ctrls = set((read_or(udir + "/cgroup.controllers", "") or "").split())
        for k, v in u.items():
            ctrl = k.split(".", 1)[0]
            if udir is None or (ctrl != "cgroup" and ctrl not in ctrls):
                raise Unsupported(f'{f}.{k}: cannot set "{k}": this host uses cgroup v1 and '
                                  f'the "{ctrl}" controller is not in the unified hierarchy')
            write(f"{udir}/{k}", v)

    # ------------------------------------------------------------------ stats
    def stats(self):
        from . import stats
        return stats.v1(self)


def _mkdir(d, cpuset):
    """mkdir -p; in the cpuset hierarchy copy cpus/mems from the parent into each new level
    (a v1 cpuset cgroup starts empty and accepts no task until they are set)."""
    try:
        os.mkdir(d, 0o755)
    except FileExistsError:
        return
    except FileNotFoundError:
        _mkdir(os.path.dirname(d), cpuset)
        try:
            os.mkdir(d, 0o755)
        except FileExistsError:
            return
    if cpuset:
        parent = os.path.dirname(d)
        for name in ("cpuset.cpus", "cpuset.mems"):
            if not read_or(f"{d}/{name}", "").strip():
                write(f"{d}/{name}", read_or(f"{parent}/{name}", "").strip() or "\n")


def _rdma_line(dev, h, o):
    parts = [dev]
    if h is not None:
        parts.append(f"hca_handle={h}")
    if o is not None:
        parts.append(f"hca_object={o}")
    return " ".join(parts)
