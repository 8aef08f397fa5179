"""The OCI ``windows`` section (config-windows.md), parsed with ``Obj`` so errors name the JSON
path. Only what the Job Object backend can use is kept typed; everything else it cannot
realize is listed in ``dropped``. Hyper-V isolation is refused outright: a config that asks
for a VM boundary must never silently get a process boundary."""
from ..config.reader import Obj
from ..errors import Unsupported
from .common import present


class WindowsConfig:
    __slots__ = ("memory_limit", "cpu_count", "cpu_shares", "cpu_maximum", "dropped")

    def __init__(self):
        self.memory_limit = self.cpu_count = self.cpu_shares = self.cpu_maximum = None
        self.dropped = []


def parse(o: Obj | None, plat="windows") -> WindowsConfig:
    """``o`` wraps config["windows"] (or is None)."""
    w = WindowsConfig()
    if o is None:
        return w
    if "hyperv" in o.d and o.d["hyperv"] is not None:
        o.obj("hyperv")  # type check: an object
        raise Unsupported("windows.hyperv: Hyper-V isolation is not supported by ocirun "
                          "(only process isolation with Job Objects); remove windows.hyperv")
    res = o.obj("resources")
    if res is not None:
        mem = res.obj("memory")
        if mem is not None:
            w.memory_limit = mem.uint64("limit")
        cpu = res.obj("cpu")
        if cpu is not None:
            w.cpu_count = cpu.uint64("count")
            w.cpu_shares = cpu.int("shares", min=0, max=10000)
            w.cpu_maximum = cpu.int("maximum", min=0, max=10000)
            if w.cpu_count == 0:
                raise cpu.error("count", "must be >= 1")
            if w.cpu_maximum == 0:
                raise cpu.error("maximum", "must be >= 1")
        storage = res.obj("storage")
        if storage is not None:
            for k, v in storage.d.items():
                if present(v):
                    w.dropped.append(f"{storage.sub(k)}: storage limits are not enforced "
                                     f"on {plat}")
        for k, v in res.d.items():
            if k not in ("memory", "cpu", "storage") and present(v):
                w.dropped.append(f"{res.sub(k)}: not enforced on {plat}")
    if o.strs("layerFolders"):
        w.dropped.append(f"{o.sub('layerFolders')}: image layers are not mounted on {plat}; "
                         "root.path is used as a plain directory")
    for k in ("network", "credentialSpec"):
        if present(o.d.get(k)):
            w.dropped.append(f"{o.sub(k)}: not supported on {plat}")
    for d in o.objs("devices"):
        w.dropped.append(f"{d.path}: device assignment is not supported on {plat}")
    for k in ("servicing", "ignoreFlushesDuringBoot"):
        if o.bool(k):
            w.dropped.append(f"{o.sub(k)}: not supported on {plat}")
    known = {"layerFolders", "resources", "network", "credentialSpec", "devices", "servicing",
             "ignoreFlushesDuringBoot", "hyperv"}
    for k, v in o.d.items():
        if k not in known and present(v):
            w.dropped.append(f"{o.sub(k)}: unknown field, not enforced on {plat}")
    return w
