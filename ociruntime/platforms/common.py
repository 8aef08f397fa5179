"""Config scanning shared by the non-Linux backends: everything in config.json that a backend
does not map is reported in ``Plan.dropped``, each item naming its JSON path. Parsing uses
``ociruntime.config.reader.Obj`` so malformed values fail with their path too."""
from ..config.reader import Obj
from ..errors import ConfigError

# Linux keys that only name things and restrict nothing: never reported as dropped.
NAMING_ONLY = frozenset({"cgroupsPath", "rootfsPropagation"})
RLIM_INFINITY_OCI = (1 << 64) - 1


def present(v):
    """A config value that asks for something: not null, not an empty list/object."""
    return v is not None and v != [] and v != {}


def drop_linux(root: Obj, plat: str, handled, dropped: list):
    """Report every set key of ``linux`` (and of ``linux.resources``, one level deeper)
    that is not in ``handled`` (dotted keys: ``resources.memory.limit``, ``seccomp``…).
    Namespaces are the backend's business (``namespaces`` is usually in ``handled``)."""
    lin = root.obj("linux")
    if lin is None:
        return
    for k, v in lin.d.items():
        if k in NAMING_ONLY or k in handled or not present(v):
            continue
        if k == "resources":
            res = lin.obj("resources")
            for rk, rv in res.d.items():
                if rk in handled or f"resources.{rk}" in handled or not present(rv):
                    continue
                if isinstance(rv, dict):
                    for sk, sv in rv.items():
                        if present(sv) and f"resources.{rk}.{sk}" not in handled:
                            dropped.append(f"linux.resources.{rk}.{sk}: not enforced on {plat}")
                else:
                    dropped.append(f"linux.resources.{rk}: not enforced on {plat}")
            continue
        dropped.append(f"linux.{k}: not enforced on {plat}")


def drop_namespaces(root: Obj, plat: str, dropped: list, keep=()):
    """Drop every namespace except the types in ``keep``; return {type: Obj} of those kept."""
    lin = root.obj("linux")
    kept = {}
    if lin is None:
        return kept
    for ns in lin.objs("namespaces"):
        t = ns.str("type", required=True)
        if t in keep and not ns.has("path"):
            kept[t] = ns
        elif ns.has("path"):
            dropped.append(f"{ns.path}: cannot join a {t} namespace ({ns.str('path')}) on {plat}")
        else:
            dropped.append(f"{ns.path}: no {t} namespace on {plat}")
    return kept


def drop_process_extras(proc: Obj | None, plat: str, dropped: list):
    """process fields with no counterpart off Linux."""
    if proc is None:
        return
    for key in ("apparmorProfile", "selinuxLabel", "oomScoreAdj", "scheduler", "ioPriority",
                "execCPUAffinity"):
        if present(proc.d.get(key)):
            dropped.append(f"{proc.sub(key)}: not enforced on {plat}")
    if proc.bool("noNewPrivileges"):
        dropped.append(f"{proc.sub('noNewPrivileges')}: not enforced on {plat}")
    if proc.bool("terminal"):
        dropped.append(f"{proc.sub('terminal')}: no pty on {plat}; the process inherits stdio")


def drop_capabilities(proc: Obj | None, plat: str, dropped: list, root_user: bool):
    if proc is None:
        return
    caps = proc.obj("capabilities")
    if caps is None:
        return
    sets = {k: caps.strs(k) for k in ("bounding", "effective", "permitted", "inheritable",
                                      "ambient")}
    if root_user:
        dropped.append(f"{caps.path}: {plat} cannot confine root by capabilities")
    elif sets["effective"] or sets["ambient"]:
        dropped.append(f"{caps.path}: {plat} cannot grant capabilities to a non-root user")


def drop_hooks_and_names(root: Obj, plat: str, dropped: list):
    hooks = root.obj("hooks")
    if hooks is not None:
        for k, v in hooks.d.items():
            if present(v):
                dropped.append(f"hooks.{k}: hooks are not run on {plat}")
    for k in ("hostname", "domainname"):
        if root.str(k):
            dropped.append(f"{k}: no UTS namespace on {plat}")


def parse_rlimits(proc: Obj | None):
    """[(name, soft, hard, path)] in config order; duplicates are a config error."""
    out, seen = [], set()
    if proc is None:
        return out
    for r in proc.objs("rlimits"):
        name = r.str("type", required=True)
        if not name.startswith("RLIMIT_"):
            raise r.error("type", f"unknown rlimit {name!r}")
        if name in seen:
            raise r.error("type", f"duplicate rlimit {name}")
        seen.add(name)
        soft, hard = r.uint64("soft", required=True), r.uint64("hard", required=True)
        if soft > hard:
            raise r.error("soft", "must be <= hard")
        out.append((name, soft, hard, r.path))
    return out


def resource_limit(root: Obj, section: str, key: str):
    """``linux.resources.<section>.<key>`` as an int, or None (negative = unlimited = None)."""
    lin = root.obj("linux")
    res = lin.obj("resources") if lin is not None else None
    sec = res.obj(section) if res is not None else None
    if sec is None:
        return None
    v = sec.int64(key)
    return None if v is None or v < 0 else v


def require_process(root: Obj) -> Obj:
    proc = root.obj("process")
    if proc is None:
        raise ConfigError("process", "is required to run a container")
    if not proc.strs("args", required=True):
        raise ConfigError("process.args", "must not be empty")
    return proc
