"""``pause``, ``resume``, ``update`` and ``events``: flags as runc 1.1's, values parsed as runc
parses them (memory sizes like ``64m``/``1.5GiB``, Go durations like ``500ms``)."""
import sys

from ..errors import OciError
from .parser import UsageError

_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def ram_in_bytes(s):
    """docker/go-units RAMInBytes: "64m", "1.5g", "512KiB", "100" (binary multiples)."""
    t = s.strip()
    low = t.lower()
    for suf in ("ib", "b", "i"):
        if low.endswith(suf) and len(low) > len(suf):
            low = low[:-len(suf)]
            break
    unit = ""
    if low and low[-1] in "kmgtp":
        unit, low = low[-1], low[:-1]
    low = low.rstrip(" ")
    try:
        if not low or not all(c.isdigit() or c == "." for c in low) or low[0] == "." or \
                low[-1] == ".":
            raise ValueError
        v = float(low)
    except ValueError:
        raise OciError(f"invalid size: '{s}'") from None
    return int(v * _UNITS[unit])


_DUR = {"ns": 1e-9, "us": 1e-6, "\u00b5s": 1e-6, "\u03bcs": 1e-6, "ms": 1e-3, "s": 1.0,
        "m": 60.0, "h": 3600.0}


def go_duration(s):
    """Go's time.ParseDuration -> seconds ("5s", "1m30s", "250ms", "0")."""
    orig, t, sign = s, s, 1.0
    if t[:1] in "+-" and t:
        sign, t = (-1.0 if t[0] == "-" else 1.0), t[1:]
    if t == "0":
        return 0.0
    if not t:
        raise OciError(f'time: invalid duration "{orig}"')
    total = 0.0
    while t:
        i = 0
        while i < len(t) and (t[i].isdigit() or t[i] == "."):
            i += 1
        num, t = t[:i], t[i:]
        if not num or num == "." or num.count(".") > 1:
            raise OciError(f'time: invalid duration "{orig}"')
        j = 0
        while j < len(t) and not (t[j].isdigit() or t[j] == "."):
            j += 1
        unit, t = t[:j], t[j:]
        if not unit:
            raise OciError(f'time: missing unit in duration "{orig}"')
        if unit not in _DUR:
            raise OciError(f'time: unknown unit "{unit}" in duration "{orig}"')
        total += float(num) * _DUR[unit]
    return sign * total


def _warn(ctx, msg):
    from .main import log_line
    g = ctx.g or {}
    if g.get("log"):
        log_line(g, "warning", msg)
    else:
        sys.stderr.write(f"ocirun: warning: {msg}\n")


def do_pause(ctx, v, pos):
    ctx.rt.pause(pos[0])


def do_resume(ctx, v, pos):
    ctx.rt.resume(pos[0])


def _int(v, name, unsigned=False):
    try:
        n = int(v, 10)
    except ValueError:
        n = None
    if n is None or (unsigned and n < 0):
        raise OciError(f"invalid value for {name}: strconv.Parse{'Uint' if unsigned else 'Int'}:"
                       f' parsing "{v}": invalid syntax')
    return n


def resources_from_flags(v):
    """runc's per-field update flags -> (linux.resources dict, warnings)."""
    r = {}
    warnings = []
    cpu, mem = {}, {}
    if v["blkio_weight"]:
        r["blockIO"] = {"weight": v["blkio_weight"]}
    if v["cpuset_cpus"]:
        cpu["cpus"] = v["cpuset_cpus"]
    if v["cpuset_mems"]:
        cpu["mems"] = v["cpuset_mems"]
    if v["cpu_idle"]:
        cpu["idle"] = _int(v["cpu_idle"], "cpu-idle")
    for opt, key in (("cpu-burst", "burst"), ("cpu-period", "period"),
                     ("cpu-rt-period", "realtimePeriod"), ("cpu-share", "shares")):
        x = v[opt.replace("-", "_")]
        if x:
            cpu[key] = _int(x, opt, unsigned=True)
    for opt, key in (("cpu-quota", "quota"), ("cpu-rt-runtime", "realtimeRuntime")):
        x = v[opt.replace("-", "_")]
        if x:
            cpu[key] = _int(x, opt)
    for opt, key in (("memory", "limit"), ("memory-swap", "swap"),
                     ("memory-reservation", "reservation")):
        x = v[opt.replace("-", "_")]
        if x:
            if x.strip() == "-1":
                mem[key] = -1
            else:
                try:
                    mem[key] = ram_in_bytes(x)
                except OciError as e:
                    raise OciError(f"invalid value for {opt}: {e}") from None
    if v["kernel_memory"] or v["kernel_memory_tcp"]:
        from ..linux.cgroups.update import KMEM_IGNORED
        warnings.append(KMEM_IGNORED)
    if cpu:
        r["cpu"] = cpu
    if mem:
        r["memory"] = mem
    if v["pids_limit"]:
        r["pids"] = {"limit": v["pids_limit"]}
    return r, warnings


def read_resources(path):
    from .. import jsonfast
    data = jsonfast.read_arg(path)
    try:
        r = jsonfast.loads(data)
    except ValueError as e:
        raise OciError(f"invalid resources JSON in {path}: {e}") from None
    if not isinstance(r, dict):
        raise OciError(f"invalid resources JSON in {path}: want an object")
    return r


def do_update(ctx, v, pos):
    warnings = []
    if v["resources"]:
        r = read_resources(v["resources"])
    else:
        r, warnings = resources_from_flags(v)
    warnings += ctx.rt.update(pos[0], r, l3_cache_schema=v["l3_cache_schema"],
                              mem_bw_schema=v["mem_bw_schema"])
    for w in dict.fromkeys(warnings):
        _warn(ctx, w)


def do_events(ctx, v, pos):
    from .. import jsonfast
    try:
        interval = go_duration(v["interval"])
    except OciError as e:
        raise UsageError(f'invalid value "{v["interval"]}" for flag -interval: {e}') from None
    out = sys.stdout
    import gc
    gc.enable()   # a long-lived loop: entry() turned the cycle collector off for start-up
    for ev in ctx.rt.events(pos[0], interval=interval, stats=v["stats"]):
        out.write(jsonfast.dumps(ev) + "\n")
        out.flush()
