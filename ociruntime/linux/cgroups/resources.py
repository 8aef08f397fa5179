"""``linux.resources`` as typed objects. ``None`` always means "not set: leave the kernel's
value alone"; parsing validates types and ranges and names the JSON path of a bad field."""
from ...errors import ConfigError


class _Slots:
    __slots__ = ()

    def __init__(self, **kw):
        for k in self.__slots__:
            setattr(self, k, kw.get(k))

    def __repr__(self):
        fields = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__
                           if getattr(self, k) is not None)
        return f"{type(self).__name__}({fields})"

    def __eq__(self, other):
        return type(self) is type(other) and all(
            getattr(self, k) == getattr(other, k) for k in self.__slots__)

    def is_empty(self):
        return all(getattr(self, k) in (None, [], {}) for k in self.__slots__)


class DeviceRule(_Slots):
    """One device cgroup rule. ``major``/``minor`` None = wildcard ``*``; ``type`` is
    "a", "c" or "b"; ``access`` a subset of "rwm"."""
    __slots__ = ("allow", "type", "major", "minor", "access")

    def v1_line(self):
        maj = "*" if self.major is None else self.major
        mnr = "*" if self.minor is None else self.minor
        if self.type == "a":
            return "a"
        return f"{self.type} {maj}:{mnr} {self.access}"

    def matches_all(self):
        return self.type == "a" and self.major is None and self.minor is None and \
            set(self.access) >= set("rwm")


class Memory(_Slots):
    __slots__ = ("limit", "reservation", "swap", "kernel", "kernel_tcp", "swappiness",
                 "disable_oom_killer", "use_hierarchy", "check_before_update")


class Cpu(_Slots):
    __slots__ = ("shares", "quota", "burst", "period", "realtime_runtime", "realtime_period",
                 "cpus", "mems", "idle")


class WeightDevice(_Slots):
    __slots__ = ("major", "minor", "weight", "leaf_weight")


class ThrottleDevice(_Slots):
    __slots__ = ("major", "minor", "rate")


class BlockIO(_Slots):
    __slots__ = ("weight", "leaf_weight", "weight_device", "throttle_read_bps",
                 "throttle_write_bps", "throttle_read_iops", "throttle_write_iops")


class Network(_Slots):
    __slots__ = ("class_id", "priorities")  # priorities: list of (ifname, prio)


class Resources(_Slots):
    """``hugepage_limits``: list of (pageSize like "2MB", limit bytes); ``rdma``: dict
    device -> (hcaHandles|None, hcaObjects|None); ``unified``: dict file -> value;
    ``devices``: list of DeviceRule as given in the config (defaults are added by
    :func:`devices.effective_rules`)."""
    __slots__ = ("memory", "cpu", "pids", "block_io", "hugepage_limits", "network", "rdma",
                 "unified", "devices")


def _device_rule(o, allow_required=True):
    t = o.str("type", "a")
    if t not in ("a", "b", "c"):
        raise o.error("type", f'invalid device type "{t}" (want "a", "b" or "c")')
    access = o.str("access", "rwm")
    if not access or any(c not in "rwm" for c in access):
        raise o.error("access", f'invalid access "{access}" (a subset of "rwm")')
    maj = o.int64("major")
    mnr = o.int64("minor")
    return DeviceRule(allow=o.bool("allow", required=allow_required), type=t,
                      major=None if maj is None or maj < 0 else maj,
                      minor=None if mnr is None or mnr < 0 else mnr,
                      access="".join(c for c in "rwm" if c in access))


def _throttle(o, key):
    out = []
    for d in o.objs(key):
        out.append(ThrottleDevice(major=d.int64("major", required=True),
                                  minor=d.int64("minor", required=True),
                                  rate=d.uint64("rate", required=True)))
    return out or None


def _weight(o, key):
    w = o.int(key, min=0, max=65535)
    if w is not None and w != 0 and not 10 <= w <= 1000:
        raise o.error(key, f"invalid weight {w}: must be 0 or between 10 and 1000")
    return w or None


def parse(o):
    """``o`` wraps ``linux.resources`` -> Resources."""
    r = Resources()
    m = o.obj("memory")
    if m is not None:
        sw = m.uint64("swappiness")
        if sw is not None and sw > 100:
            raise m.error("swappiness", f"invalid value {sw}: must be between 0 and 100")
        r.memory = Memory(limit=m.int64("limit"), reservation=m.int64("reservation"),
                          swap=m.int64("swap"), kernel=m.int64("kernel"),
                          kernel_tcp=m.int64("kernelTCP"), swappiness=sw,
                          disable_oom_killer=m.bool("disableOOMKiller", None),
                          use_hierarchy=m.bool("useHierarchy", None),
                          check_before_update=m.bool("checkBeforeUpdate", None))
    c = o.obj("cpu")
    if c is not None:
        r.cpu = Cpu(shares=c.uint64("shares"), quota=c.int64("quota"), burst=c.uint64("burst"),
                    period=c.uint64("period"), realtime_runtime=c.int64("realtimeRuntime"),
                    realtime_period=c.uint64("realtimePeriod"), cpus=c.str("cpus"),
                    mems=c.str("mems"), idle=c.int64("idle"))
        if r.cpu.idle is not None and r.cpu.idle not in (0, 1):
            raise c.error("idle", f"invalid value {r.cpu.idle}: must be 0 or 1")
    p = o.obj("pids")
    if p is not None:
        r.pids = p.int64("limit")
    b = o.obj("blockIO")
    if b is not None:
        wd = []
        for d in b.objs("weightDevice"):
            wd.append(WeightDevice(major=d.int64("major", required=True),
                                   minor=d.int64("minor", required=True),
                                   weight=_weight(d, "weight"),
                                   leaf_weight=_weight(d, "leafWeight")))
        r.block_io = BlockIO(weight=_weight(b, "weight"), leaf_weight=_weight(b, "leafWeight"),
                             weight_device=wd or None,
                             throttle_read_bps=_throttle(b, "throttleReadBpsDevice"),
                             throttle_write_bps=_throttle(b, "throttleWriteBpsDevice"),
                             throttle_read_iops=_throttle(b, "throttleReadIOPSDevice"),
                             throttle_write_iops=_throttle(b, "throttleWriteIOPSDevice"))
    hl = []
    for h in o.objs("hugepageLimits"):
        size = h.str("pageSize", required=True)
        if not _page_size_ok(size):
            raise h.error("pageSize", f'invalid page size "{size}" (e.g. "2MB", "1GB")')
        hl.append((size, h.uint64("limit", required=True)))
    r.hugepage_limits = hl or None
    n = o.obj("network")
    if n is not None:
        prios = [(x.str("name", required=True), x.uint32("priority", required=True))
                 for x in n.objs("priorities")]
        r.network = Network(class_id=n.uint32("classID"), priorities=prios or None)
    rd = o.obj("rdma")
    if rd is not None:
        r.rdma = {}
        for dev in rd.keys():
            x = rd.obj(dev, required=True)
            r.rdma[dev] = (x.uint32("hcaHandles"), x.uint32("hcaObjects"))
    if o.has("unified"):
        u = o.strmap("unified")
        for k in u:
            if "/" in k or k in (".", "..") or "." not in k:
                raise ConfigError(o.sub("unified") + f".{k}",
                                  f'invalid cgroup file name "{k}" (want "<controller>.<file>")')
        r.unified = u
    r.devices = [_device_rule(d) for d in o.objs("devices")] or None
    return r


def _page_size_ok(s):
    i = 0
    while i < len(s) and s[i].isdigit():
        i += 1
    return 0 < i and s[i:] in ("KB", "MB", "GB", "TB", "PB")


def parse_memory_value(s):
    """A cgroup memory/limit file value -> int (``max`` -> -1)."""
    s = s.strip()
    return -1 if s == "max" else int(s)
