"""``ocirun update`` and ``ocirun events`` logic over a Manager (not on the hot path).

``merge`` is runc's update rule: a field that is absent, null or 0 (as in runc's
``update -r`` template of zeros) is left alone; the result is merged into the resources saved
in the state, and the manager is given the new fields plus the old values a cgroup file needs
together with them (cpu quota+period in v2 ``cpu.max``; memory limit for the v2 swap
conversion)."""
from ... import osfast as os

from ...errors import OciError, Unsupported

# fields where 0 means "unchanged" (runc: plain integers, 0 = unset); burst/idle are pointers
_ZERO_UNSET = {
    "memory": ("limit", "reservation", "swap", "kernel", "kernelTCP"),
    "cpu": ("shares", "quota", "period", "realtimeRuntime", "realtimePeriod"),
    "blockIO": ("weight", "leafWeight"),
    "pids": ("limit",),
}
_EMPTY_UNSET = {"cpu": ("cpus", "mems")}


def normalize(new):
    """Drop the fields of an update that mean "leave it alone"."""
    out = {}
    for k, v in (new or {}).items():
        if v is None:
            continue
        if isinstance(v, dict) and k in ("memory", "cpu", "blockIO", "pids"):
            sec = {}
            for f, x in v.items():
                if x is None:
                    continue
                if f in _ZERO_UNSET.get(k, ()) and x == 0 and not isinstance(x, bool):
                    continue
                if f in _EMPTY_UNSET.get(k, ()) and x == "":
                    continue
                sec[f] = x
            if sec:
                out[k] = sec
        else:
            out[k] = v
    return out


def merge(saved, new, mode="v1"):
    """-> (merged resources to save, resources to apply now, warnings). Kernel memory limits
    are dropped with runc 1.1's warning."""
    saved = saved or {}
    todo = normalize(new)
    merged = {k: (dict(v) if isinstance(v, dict) else v) for k, v in saved.items()}
    for k, v in todo.items():
        if isinstance(v, dict) and isinstance(merged.get(k), dict) and \
                k in ("memory", "cpu", "blockIO", "pids"):
            merged[k].update(v)
        else:
            merged[k] = v
    old_cpu = saved.get("cpu") or {}
    cpu = todo.get("cpu")
    if cpu is not None and ("quota" in cpu) != ("period" in cpu):
        # quota and period live in one v2 file (cpu.max) and constrain each other on v1
        other = "period" if "quota" in cpu else "quota"
        if old_cpu.get(other):
            cpu[other] = old_cpu[other]
    old_mem = saved.get("memory") or {}
    mem = todo.get("memory")
    if mem is not None and mode == "v2":
        if "swap" in mem and "limit" not in mem and old_mem.get("limit"):
            mem["limit"] = old_mem["limit"]      # memory.swap.max = swap - limit
        elif "limit" in mem and "swap" not in mem and old_mem.get("swap") and \
                mem["limit"] != -1:
            mem["swap"] = old_mem["swap"]
    if mem is not None and "checkBeforeUpdate" not in mem and \
            old_mem.get("checkBeforeUpdate") is not None:
        mem["checkBeforeUpdate"] = old_mem["checkBeforeUpdate"]
    warnings = []
    for k in ("kernel", "kernelTCP"):
        if mem is not None and k in mem:
            del mem[k]
            merged["memory"].pop(k, None)
            warnings = [KMEM_IGNORED]
    if mem is not None and not mem:
        del todo["memory"]
    return merged, todo, warnings


KMEM_IGNORED = "Kernel memory settings are ignored and will be removed"


def check_rdt(l3_cache_schema, mem_bw_schema):
    """runc's errors for Intel RDT flags on a host without resctrl (this one)."""
    if l3_cache_schema and not os.path.isdir("/sys/fs/resctrl/info/L3"):
        raise OciError("Intel RDT/CAT: l3 cache schema is not enabled")
    if mem_bw_schema and not os.path.isdir("/sys/fs/resctrl/info/MB"):
        raise OciError("Intel RDT/MBA: memory bandwidth schema is not enabled")
    if l3_cache_schema or mem_bw_schema:
        raise Unsupported("Intel RDT (resctrl) is not supported by ocirun")


def event_stream(c, mgr, interval):
    """Generator behind ``ocirun events``: stats every ``interval`` s, an ``oom`` event for
    each new OOM kill (v1: eventfd on memory.oom_control; v2: inotify on memory.events);
    stops when the container's init exits or its cgroup is removed."""
    import select
    import time
    from .. import syscalls as sc
    cid = c.id
    try:
        watcher = mgr.oom_watcher()
    except (Unsupported, OciError):
        watcher = None          # no memory controller: stats only
    try:
        pidfd = sc.pidfd_open(c.pid)
    except OSError:
        pidfd = -1
    try:
        p = select.poll()
        if watcher is not None:
            p.register(watcher.fileno(), select.POLLIN)
        if pidfd >= 0:
            p.register(pidfd, select.POLLIN)
        due = time.monotonic() + interval
        while True:
            left = max(0.0, due - time.monotonic())
            ready = {fd for fd, _ in p.poll(int(left * 1000) + (1 if left else 0))}
            if watcher is not None:
                if watcher.fileno() in ready:
                    watcher.drain()
                for _ in range(watcher.poll()):
                    yield {"type": "oom", "id": cid}
            if pidfd in ready or not mgr.exists():
                return
            if time.monotonic() >= due:
                try:
                    data = mgr.stats()
                except OSError:     # the cgroup went away under us: the loop ends next
                    data = None
                if data is not None:
                    yield {"type": "stats", "id": cid, "data": data}
                due += interval
                if due < time.monotonic():
                    due = time.monotonic() + interval
    finally:
        if watcher is not None:
            watcher.close()
        if pidfd >= 0:
            os.close(pidfd)
