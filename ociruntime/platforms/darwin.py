"""macOS backend: one sandboxed process per container.

``prepare`` turns config.json into a ``ProcSpec`` and a Seatbelt profile (SBPL) that denies
by default and allows only: reading the rootfs and read-only bind sources, writing writable
bind sources, the per-container directories that stand in for tmpfs mounts (and the rootfs
when ``root.readonly`` is false), exec of files inside the rootfs, and the network only when
the config has no network namespace. The process runs as ``sandbox-exec -p PROFILE ARGV``
(sandbox-exec applies the profile to itself, then execs, so the pid is the container's) with
rlimits, cwd, env, umask and, when ocirun is root, uid/gid/additionalGids.

There is no chroot and no mount namespace: paths are *not* remapped. ``process.args[0]``,
``process.cwd`` and the ``PATH`` entries are resolved inside the rootfs; bind mounts give
access to their *source* path; a tmpfs at /tmp or /var/tmp sets ``TMPDIR``. See
docs/platforms.md for what is enforced, approximated and dropped.
"""
import os

from .base import Plan
from .common import (drop_capabilities, drop_hooks_and_names, drop_linux, drop_namespaces,
                     drop_process_extras, parse_rlimits, require_process, resource_limit)
from .posix import PosixPlatform, ProcSpec
from ..config.reader import Obj
from ..errors import ConfigError

NAME = "darwin"
SANDBOX_EXEC = "/usr/bin/sandbox-exec"

# rlimits macOS has (<sys/resource.h>); RLIMIT_RSS is an alias of RLIMIT_AS there.
RLIMITS = frozenset({"RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_DATA", "RLIMIT_STACK", "RLIMIT_CORE",
                     "RLIMIT_AS", "RLIMIT_RSS", "RLIMIT_MEMLOCK", "RLIMIT_NPROC",
                     "RLIMIT_NOFILE"})

# What any macOS binary needs to start: dyld and its shared cache, libSystem, zoneinfo.
SYSTEM_READ = ("/usr/lib", "/usr/share", "/System", "/Library/Apple", "/private/var/db/dyld",
               "/private/var/db/timezone")
SYSTEM_READ_LITERAL = ("/", "/private", "/private/etc/localtime", "/dev/random",
                       "/dev/urandom")
SYSTEM_RW_LITERAL = ("/dev/null", "/dev/zero", "/dev/dtracehelper", "/dev/tty")
DYLD_CLOSURES = r"^/private/var/folders/[^/]+/[^/]+/C/com\.apple\.dyld/"
TMP_DESTS = ("/tmp", "/var/tmp")
# Features a linux.resources field maps to, as approximations.
APPROX = {
    "linux.resources.memory.limit": "RLIMIT_AS (address space, not resident memory)",
    "linux.resources.pids.limit": "RLIMIT_NPROC (counts every process of the user, "
                                  "not only the container's)",
}


class Sandbox:
    """Input of ``sbpl()``: real (symlink-free) host paths."""

    __slots__ = ("rootfs", "rootfs_writable", "read", "write", "network", "deny", "deny_write")

    def __init__(self, rootfs, rootfs_writable=False, read=(), write=(), network=False,
                 deny=(), deny_write=()):
        self.rootfs, self.rootfs_writable = rootfs, rootfs_writable
        self.read, self.write = list(read), list(write)
        self.network = network
        self.deny, self.deny_write = list(deny), list(deny_write)


def quote(path):
    """An SBPL string literal."""
    if any(ord(c) < 0x20 or c == "\x7f" for c in path):
        raise ValueError(f"control character in path {path!r}")
    return '"' + path.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _rule(action, ops, filters):
    if not filters:
        return []
    if len(filters) == 1:
        return [f"({action} {ops} {filters[0]})"]
    return [f"({action} {ops}"] + [f"  {f}" for f in filters[:-1]] + [f"  {filters[-1]})"]


def sbpl(sb: Sandbox) -> str:
    """The Seatbelt profile for a Sandbox. Pure; last matching rule wins in SBPL, so the
    masked/read-only denials come last."""
    sub = lambda p: f"(subpath {quote(p)})"  # noqa: E731
    lit = lambda p: f"(literal {quote(p)})"  # noqa: E731
    out = ["(version 1)", "(deny default)",
           "; processes of this container",
           "(allow process-fork)",
           "(allow signal (target same-sandbox))",
           "(allow process-info* (target same-sandbox))",
           "(allow sysctl-read)",
           "; names, sizes and times of host files are visible; contents are not",
           "(allow file-read-metadata)",
           "; what every macOS binary needs: dyld, its caches, libSystem, zoneinfo"]
    out += _rule("allow", "file-read*", [sub(p) for p in SYSTEM_READ] +
                 [lit(p) for p in SYSTEM_READ_LITERAL] + [f'(regex #"{DYLD_CLOSURES}")'])
    out += _rule("allow", "file-read* file-write-data", [lit(p) for p in SYSTEM_RW_LITERAL])
    out += ["; the rootfs: read, exec" + (", write" if sb.rootfs_writable else "")]
    out += _rule("allow", "file-read*", [sub(sb.rootfs)])
    out += _rule("allow", "process-exec", [sub(sb.rootfs)])
    if sb.rootfs_writable:
        out += _rule("allow", "file-write*", [sub(sb.rootfs)])
    if sb.read:
        out += ["; read-only mounts"] + _rule("allow", "file-read*", [sub(p) for p in sb.read])
    if sb.write:
        out += ["; writable mounts and per-container tmpfs directories"]
        out += _rule("allow", "file-read* file-write*", [sub(p) for p in sb.write])
    if sb.network:
        out += ["; no network namespace in the config: host network",
                "(allow network*)",
                '(allow mach-lookup (global-name "com.apple.dnssd.service"))']
    else:
        out += ["; network namespace in the config: no network"]
    if sb.deny:
        out += ["; linux.maskedPaths"] + _rule("deny", "file-read* file-write*",
                                               [sub(p) for p in sb.deny])
    if sb.deny_write:
        out += ["; linux.readonlyPaths"] + _rule("deny", "file-write*",
                                                 [sub(p) for p in sb.deny_write])
    return "\n".join(out) + "\n"


def in_root(rootfs, path):
    """A container path as a host path under rootfs (lexically; no '..' escape)."""
    parts = []
    for p in path.split("/"):
        if p in ("", "."):
            continue
        if p == "..":
            if parts:
                parts.pop()
            continue
        parts.append(p)
    return os.path.join(rootfs, *parts) if parts else rootfs


def resolve_in_root(rootfs, path, readlink=os.readlink):
    """Follow symlinks as if rootfs were / (an absolute link restarts at rootfs, '..' stops
    there): the host path the container path names, never outside rootfs."""
    todo = [p for p in path.split("/") if p not in ("", ".")]
    todo.reverse()
    parts, hops = [], 0
    while todo:
        p = todo.pop()
        if p == "..":
            if parts:
                parts.pop()
            continue
        cur = os.path.join(rootfs, *parts, p)
        try:
            target = readlink(cur)
        except OSError:
            parts.append(p)
            continue
        hops += 1
        if hops > 40:
            raise ConfigError("", f"too many levels of symbolic links in {path}")
        if target.startswith("/"):
            parts = []
        more = [x for x in target.split("/") if x not in ("", ".")]
        todo.extend(reversed(more))
    return os.path.join(rootfs, *parts) if parts else rootfs


def _resolve_entry(rootfs, arg0, path_env, isfile, readlink):
    if "/" in arg0:
        cands = [arg0 if arg0.startswith("/") else "/" + arg0]
    else:
        cands = [d + "/" + arg0 for d in path_env.split(":") if d]
    for c in cands:
        real = resolve_in_root(rootfs, c, readlink)
        if isfile(real):
            return real
    raise ConfigError("process.args[0]", f"{arg0}: not found in the rootfs")


def plan(config: dict, bundle: str, state_dir: str, *, euid=None, realpath=os.path.realpath,
         isfile=os.path.isfile, isdir=os.path.isdir, readlink=os.readlink) -> Plan:
    """config.json → (ProcSpec with the SBPL profile, dropped items). Reads the filesystem
    (through ``realpath``/``isfile``/``isdir``/``readlink``, injectable for tests) but
    changes nothing."""
    euid = os.geteuid() if euid is None else euid
    o = Obj(config)
    dropped = []
    proc = require_process(o)
    root = o.obj("root", required=True)
    rootfs = root.str("path", required=True)
    rootfs = realpath(os.path.join(bundle, rootfs))
    if not isdir(rootfs):
        raise ConfigError("root.path", f"{rootfs}: not a directory")
    state_dir = realpath(state_dir)

    # namespaces: only "network" has a counterpart (deny the network)
    kept = drop_namespaces(o, NAME, dropped, keep=("network",))
    network = "network" not in kept
    handled = {"namespaces", "maskedPaths", "readonlyPaths", "resources.memory.limit",
               "resources.pids.limit", "resources.devices"}
    lin = o.obj("linux")
    if lin is not None and lin.obj("resources") is not None:
        for d in lin.obj("resources").objs("devices"):
            if d.bool("allow"):
                dropped.append(f"{d.path}: device access is not granted on {NAME}")
    drop_linux(o, NAME, handled, dropped)
    drop_hooks_and_names(o, NAME, dropped)
    drop_process_extras(proc, NAME, dropped)

    # user
    user = proc.obj("user")
    uid = gid = None
    groups = []
    umask = None
    if user is not None:
        ruid, rgid = user.uint32("uid", 0), user.uint32("gid", 0)
        umask = user.uint32("umask")
        groups = user.ints("additionalGids")
        if user.str("username"):
            dropped.append(f"{user.sub('username')}: Windows-only field")
        if euid == 0:
            uid, gid = ruid, rgid
        elif ruid != euid:
            dropped.append(f"{user.sub('uid')}: not root, runs as uid {euid} instead of {ruid}")
    run_uid = uid if uid is not None else euid
    drop_capabilities(proc, NAME, dropped, root_user=run_uid == 0)

    # rlimits, and the resources that map onto rlimits
    limits = {}
    for name, soft, hard, path in parse_rlimits(proc):
        if name not in RLIMITS:
            dropped.append(f"{path}: {name} does not exist on {NAME}")
        else:
            limits[name] = (soft, hard)
    for key, rname in (("memory", "RLIMIT_AS"), ("pids", "RLIMIT_NPROC")):
        v = resource_limit(o, key, "limit")
        if v is not None:
            soft, hard = limits.get(rname, (v, v))
            limits[rname] = (min(soft, v), min(hard, v))

    # env, entrypoint, cwd
    env = proc.strs("env")
    path_env = "/usr/local/bin:/usr/bin:/bin"
    for i, kv in enumerate(env):
        if kv.startswith("PATH="):
            path_env = kv[5:]
            env[i] = "PATH=" + ":".join(resolve_in_root(rootfs, d, readlink)
                                        for d in path_env.split(":") if d)
    args = proc.strs("args", required=True)
    entry = _resolve_entry(rootfs, args[0], path_env, isfile, readlink)
    cwd = proc.str("cwd", required=True)
    if not cwd.startswith("/"):
        raise ConfigError("process.cwd", "must be an absolute path")

    # mounts
    read, write, dirs = [], [], []
    for i, m in enumerate(o.objs("mounts")):
        dest = m.str("destination", required=True)
        typ = m.str("type", "")
        opts = m.strs("options")
        if m.list("uidMappings") or m.list("gidMappings"):
            dropped.append(f"{m.path}: id-mapped mounts are not supported on {NAME}")
        if typ == "bind" or "bind" in opts or "rbind" in opts:
            src = m.str("source", required=True)
            src = realpath(os.path.join(bundle, src))
            (read if "ro" in opts else write).append(src)
        elif typ == "tmpfs":
            d = os.path.join(state_dir, "tmpfs", f"{i}" + dest.replace("/", "_"))
            dirs.append(d)
            write.append(d)
            if dest.rstrip("/") in TMP_DESTS and not any(e.startswith("TMPDIR=") for e in env):
                env.append(f"TMPDIR={d}")
        else:
            dropped.append(f"{m.path}: {typ or 'untyped'} mount at {dest} is not realized "
                           f"on {NAME}")

    deny, deny_write = [], []
    if lin is not None:
        deny = [resolve_in_root(rootfs, p, readlink) for p in lin.strs("maskedPaths")]
        deny_write = [resolve_in_root(rootfs, p, readlink) for p in lin.strs("readonlyPaths")]
    try:
        profile = sbpl(Sandbox(rootfs, not root.bool("readonly"), read, write, network,
                               deny, deny_write))
    except ValueError as e:
        raise ConfigError("", str(e)) from None
    spec = ProcSpec(entry, args, env, resolve_in_root(rootfs, cwd, readlink), sorted(
        (n, s, h) for n, (s, h) in limits.items()), uid, gid, groups, umask, dirs, profile)
    return Plan(NAME, spec, dropped)


class DarwinPlatform(PosixPlatform):
    name = NAME

    def prepare(self, config, bundle, state_dir):
        return plan(config, bundle, state_dir)

    def exec_argv(self, spec):
        if not os.path.exists(SANDBOX_EXEC):
            from ..errors import Unsupported
            raise Unsupported(f"{SANDBOX_EXEC} not found: cannot confine a container on this "
                              "macOS")
        # sandbox-exec execs its arguments as they are: argv[0] becomes the resolved path
        return SANDBOX_EXEC, [SANDBOX_EXEC, "-p", spec.profile, spec.path, *spec.argv[1:]]

    def features(self):
        return features()


def features():
    from ..spec import OCI_VERSION
    return {
        "ociVersionMin": "1.0.0", "ociVersionMax": OCI_VERSION,
        "hooks": [], "mountOptions": ["bind", "rbind", "ro", "rw"],
        "annotations": {"run.oci.best-effort": "true"},
        "platform": {
            "os": NAME,
            "enforced": {
                "filesystem": "sandbox profile: deny by default; rootfs read+exec, bind "
                              "sources read or read-write, tmpfs as per-container directories",
                "network": "denied when linux.namespaces has a network namespace",
                "maskedPaths": "denied (inside the rootfs)",
                "readonlyPaths": "write-denied (inside the rootfs)",
                "root.readonly": "rootfs write-denied",
                "process.rlimits": sorted(RLIMITS),
                "process.user": "uid, gid, additionalGids when ocirun runs as root",
                "devices": "none accessible but /dev/null, zero, random, urandom, tty",
            },
            "approximated": APPROX,
            "notEnforced": ["namespaces other than network", "seccomp", "capabilities",
                            "noNewPrivileges", "cgroups (cpu, blockIO, hugepages, rdma…)",
                            "linux.devices", "sysctl", "apparmor", "selinux", "hooks",
                            "hostname", "kernel filesystems (proc, sysfs, devpts, mqueue)",
                            "terminal"],
        },
    }
