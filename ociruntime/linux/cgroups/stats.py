"""Container statistics in the shape of runc's ``events --stats`` "data" object (cpu, cpuset,
memory, pids, blkio, hugetlb, intel_rdt, network_interfaces), compared field by field with
runc 1.1's output on this host. Zero values that runc omits (``omitempty``) are omitted."""
from ... import osfast as os

from .fs import read_int, read_kv, read_or

_U64_MAX = (1 << 64) - 1
_TICKS = 100  # USER_HZ: cpuacct.stat counts in clock ticks
_OPS = {"read": "Read", "write": "Write", "sync": "Sync", "async": "Async",
        "discard": "Discard", "total": "Total"}


def _prune(d):
    return {k: v for k, v in d.items() if v not in (0, None, [], {})}


def _entry(limit, usage, mx, failcnt):
    e = {"limit": limit, "failcnt": failcnt}
    if usage:
        e["usage"] = usage
    if mx:
        e["max"] = mx
    return e


def _u64(v):
    return _U64_MAX if v < 0 else v


def _blkio_v1(path):
    out = {}
    for key, files in (("ioServiceBytesRecursive",
                        ("blkio.io_service_bytes_recursive", "blkio.bfq.io_service_bytes_recursive",
                         "blkio.throttle.io_service_bytes_recursive")),
                       ("ioServicedRecursive",
                        ("blkio.io_serviced_recursive", "blkio.bfq.io_serviced_recursive",
                         "blkio.throttle.io_serviced_recursive"))):
        for f in files:
            s = read_or(f"{path}/{f}")
            if s is None:
                continue
            entries = []
            for line in s.splitlines():
                p = line.split()
                if len(p) != 3 or ":" not in p[0]:
                    continue
                ma, mi = p[0].split(":")
                entries.append(_prune({"major": int(ma), "minor": int(mi),
                                       "op": _OPS.get(p[1].lower(), p[1]), "value": int(p[2])}))
            if entries:
                out[key] = entries
            break
    return out


def v1(m):
    p = m.paths
    data = {}
    cpu = {}
    acct = p.get("cpuacct")
    if acct:
        usage = {"total": read_int(acct + "/cpuacct.usage"),
                 "percpu": [int(x) for x in (read_or(acct + "/cpuacct.usage_percpu", "")
                                             .split())],
                 "percpu_kernel": [int(x) for x in (read_or(acct + "/cpuacct.usage_percpu_sys",
                                                            "").split())],
                 "percpu_user": [int(x) for x in (read_or(acct + "/cpuacct.usage_percpu_user",
                                                          "").split())]}
        st = read_kv(acct + "/cpuacct.stat")
        usage = _prune(usage)
        usage["kernel"] = st.get("system", 0) * (1_000_000_000 // _TICKS)
        usage["user"] = st.get("user", 0) * (1_000_000_000 // _TICKS)
        cpu["usage"] = usage
    if p.get("cpu"):
        st = read_kv(p["cpu"] + "/cpu.stat")
        cpu["throttling"] = _prune({"periods": st.get("nr_periods", 0),
                                    "throttledPeriods": st.get("nr_throttled", 0),
                                    "throttledTime": st.get("throttled_time", 0)})
    data["cpu"] = cpu
    cs = p.get("cpuset")
    if cs:
        c = {"cpus": _ints(read_or(cs + "/cpuset.cpus", "")),
             "cpu_exclusive": read_int(cs + "/cpuset.cpu_exclusive"),
             "mems": _ints(read_or(cs + "/cpuset.mems", ""))}
        for k in ("mem_hardwall", "mem_exclusive", "memory_migrate", "memory_spread_page",
                  "memory_spread_slab", "memory_pressure", "sched_load_balance",
                  "sched_relax_domain_level"):
            c[k] = read_int(f"{cs}/cpuset.{k}")
        data["cpuset"] = c
    mem = p.get("memory")
    if mem:
        raw = read_kv(mem + "/memory.stat")
        memory = {}
        if raw.get("cache"):
            memory["cache"] = raw["cache"]

        def e(prefix):
            return _entry(_u64(read_int(f"{mem}/{prefix}limit_in_bytes")),
                          read_int(f"{mem}/{prefix}usage_in_bytes"),
                          read_int(f"{mem}/{prefix}max_usage_in_bytes"),
                          read_int(f"{mem}/{prefix}failcnt"))
        memory["usage"] = e("memory.")
        if os.path.exists(mem + "/memory.memsw.usage_in_bytes"):
            memory["swap"] = e("memory.memsw.")
        if os.path.exists(mem + "/memory.kmem.usage_in_bytes"):
            memory["kernel"] = e("memory.kmem.")
        if os.path.exists(mem + "/memory.kmem.tcp.usage_in_bytes"):
            memory["kernelTCP"] = e("memory.kmem.tcp.")
        if raw:
            memory["raw"] = raw
        data["memory"] = memory
    if p.get("pids"):
        lim = read_int(p["pids"] + "/pids.max")
        data["pids"] = _prune({"current": read_int(p["pids"] + "/pids.current"),
                               "limit": 0 if lim < 0 else lim})
    data["blkio"] = _blkio_v1(p["blkio"]) if p.get("blkio") else {}
    hp = p.get("hugetlb") or p.get("")
    data["hugetlb"] = _hugetlb(hp, v1=bool(p.get("hugetlb")))
    data["intel_rdt"] = {}
    data["network_interfaces"] = None
    return data


def _ints(s):
    """A cpu/mem list ("0-2,4") -> [0, 1, 2, 4]."""
    out = []
    for part in s.strip().split(","):
        if not part:
            continue
        a, _, b = part.partition("-")
        out.extend(range(int(a), int(b or a) + 1))
    return out


def _hugetlb(path, v1):
    out = {}
    if not path:
        return out
    try:
        sizes = sorted(d[len("hugepages-"):] for d in os.listdir("/sys/kernel/mm/hugepages"))
    except OSError:
        return out
    for kb in sizes:
        n = int(kb.rstrip("kB"))
        name = f"{n // (1 << 20)}GB" if n >= 1 << 20 else f"{n // 1024}MB" if n >= 1024 \
            else f"{n}KB"
        if v1:
            f = f"{path}/hugetlb.{name}."
            if not os.path.exists(f + "usage_in_bytes"):
                continue
            out[name] = _prune({"usage": read_int(f + "usage_in_bytes"),
                                "max": read_int(f + "max_usage_in_bytes")})
            out[name]["failcnt"] = read_int(f + "failcnt")
        else:
            f = f"{path}/hugetlb.{name}."
            if not os.path.exists(f + "current"):
                continue
            out[name] = _prune({"usage": read_int(f + "current"),
                                "max": _u64(read_int(f + "max"))})
            out[name]["failcnt"] = read_kv(f + "events").get("max", 0)
    return out


def v2(m):
    path = m.path
    data = {}
    st = read_kv(path + "/cpu.stat")
    usage = {"total": st.get("usage_usec", 0) * 1000}
    usage = _prune(usage)
    usage["kernel"] = st.get("system_usec", 0) * 1000
    usage["user"] = st.get("user_usec", 0) * 1000
    data["cpu"] = {"usage": usage,
                   "throttling": _prune({"periods": st.get("nr_periods", 0),
                                         "throttledPeriods": st.get("nr_throttled", 0),
                                         "throttledTime": st.get("throttled_usec", 0) * 1000})}
    if os.path.exists(path + "/memory.current"):
        raw = read_kv(path + "/memory.stat")
        cur = read_int(path + "/memory.current")
        lim = _u64(read_int(path + "/memory.max"))
        ev = read_kv(path + "/memory.events")
        memory = {}
        if raw.get("file"):
            memory["cache"] = raw["file"]
        memory["usage"] = _entry(lim, cur, read_int(path + "/memory.peak"), ev.get("max", 0))
        if os.path.exists(path + "/memory.swap.current"):
            sw = read_int(path + "/memory.swap.current")
            swl = read_int(path + "/memory.swap.max")
            # as runc: v1-style memory+swap numbers
            memory["swap"] = _entry(_U64_MAX if swl < 0 or lim == _U64_MAX else swl + lim,
                                    sw + cur, 0, read_kv(path + "/memory.swap.events")
                                    .get("max", 0))
        if raw:
            memory["raw"] = raw
        data["memory"] = memory
    if os.path.exists(path + "/pids.current"):
        lim = read_int(path + "/pids.max")
        data["pids"] = _prune({"current": read_int(path + "/pids.current"),
                               "limit": 0 if lim < 0 else lim})
    blkio = {}
    s = read_or(path + "/io.stat")
    if s:
        sb, sv = [], []
        for line in s.splitlines():
            p = line.split()
            if not p or ":" not in p[0]:
                continue
            ma, mi = (int(x) for x in p[0].split(":"))
            kv = dict(x.split("=", 1) for x in p[1:] if "=" in x)
            for k, op, lst in (("rbytes", "Read", sb), ("wbytes", "Write", sb),
                               ("rios", "Read", sv), ("wios", "Write", sv)):
                if k in kv:
                    lst.append(_prune({"major": ma, "minor": mi, "op": op,
                                       "value": int(kv[k])}))
        if sb:
            blkio["ioServiceBytesRecursive"] = sb
        if sv:
            blkio["ioServicedRecursive"] = sv
    data["blkio"] = blkio
    data["hugetlb"] = _hugetlb(path, v1=False)
    if os.path.exists(path + "/cpuset.cpus.effective"):
        data["cpuset"] = {"cpus": _ints(read_or(path + "/cpuset.cpus.effective", "")),
                          "mems": _ints(read_or(path + "/cpuset.mems.effective", ""))}
    data["intel_rdt"] = {}
    data["network_interfaces"] = None
    return data
