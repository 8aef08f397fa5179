"""config.json → a typed, validated ``Spec``, once. Every error names the JSON path of the bad
field; nothing downstream reads raw dicts. Sections owned by a concern module are parsed by that
module (``seccomp.parse``, ``cgroups.parse_resources``) — imported only when present."""
from .. import osfast as os

from ..errors import ConfigError
from .reader import Obj

SUPPORTED_MAJOR = 1
NAMESPACE_TYPES = ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time")
HOOK_KINDS = (("prestart", "prestart"), ("createRuntime", "create_runtime"),
              ("createContainer", "create_container"), ("startContainer", "start_container"),
              ("poststart", "poststart"), ("poststop", "poststop"))
RLIMITS = ("RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_DATA", "RLIMIT_STACK", "RLIMIT_CORE",
           "RLIMIT_RSS", "RLIMIT_NPROC", "RLIMIT_NOFILE", "RLIMIT_MEMLOCK", "RLIMIT_AS",
           "RLIMIT_LOCKS", "RLIMIT_SIGPENDING", "RLIMIT_MSGQUEUE", "RLIMIT_NICE",
           "RLIMIT_RTPRIO", "RLIMIT_RTTIME")
CAP_SETS = ("bounding", "effective", "permitted", "inheritable", "ambient")


class _S:
    __slots__ = ()

    def __repr__(self):
        return "%s(%s)" % (type(self).__name__, ", ".join(
            f"{k}={getattr(self, k, None)!r}" for k in self.__slots__))


class Root(_S):
    __slots__ = ("path", "readonly")


class IDMap(_S):
    __slots__ = ("container_id", "host_id", "size")


class Mount(_S):
    __slots__ = ("destination", "type", "source", "options", "uid_mappings", "gid_mappings",
                 "where")


class User(_S):
    __slots__ = ("uid", "gid", "umask", "additional_gids", "username")


class Capabilities(_S):
    __slots__ = CAP_SETS


class Process(_S):
    __slots__ = ("terminal", "console_size", "cwd", "env", "args", "command_line", "user",
                 "rlimits", "capabilities", "no_new_privileges", "apparmor_profile",
                 "selinux_label", "oom_score_adj", "scheduler", "io_priority",
                 "exec_cpu_affinity")


class Namespace(_S):
    __slots__ = ("type", "path")


class Device(_S):
    __slots__ = ("path", "type", "major", "minor", "file_mode", "uid", "gid")


class Hook(_S):
    __slots__ = ("path", "args", "env", "timeout")


class Hooks(_S):
    __slots__ = tuple(n for _, n in HOOK_KINDS)


class Linux(_S):
    __slots__ = ("namespaces", "uid_mappings", "gid_mappings", "devices", "cgroups_path",
                 "resources", "rootfs_propagation", "masked_paths", "readonly_paths", "sysctl",
                 "seccomp", "mount_label", "personality", "intel_rdt", "time_offsets",
                 "net_devices")

    def ns(self, typ):
        for n in self.namespaces:
            if n.type == typ:
                return n
        return None


class Spec(_S):
    __slots__ = ("oci_version", "bundle", "root", "process", "hostname", "domainname",
                 "mounts", "hooks", "annotations", "linux", "raw")


# ---------------------------------------------------------------------------- parsing

def _idmaps(o, key):
    out = []
    for m in o.objs(key):
        x = IDMap()
        x.container_id = m.uint32("containerID", required=True)
        x.host_id = m.uint32("hostID", required=True)
        x.size = m.uint32("size", required=True)
        out.append(x)
    return out


def parse_user(o):
    u = User()
    u.uid = o.uint32("uid", 0)
    u.gid = o.uint32("gid", 0)
    u.umask = o.uint32("umask")
    u.additional_gids = o.ints("additionalGids")
    u.username = o.str("username")
    return u


def parse_capabilities(o):
    c = Capabilities()
    from ..linux.capabilities import CAPS  # name → number table, no heavy imports
    for s in CAP_SETS:
        if o is None or not o.has(s):
            setattr(c, s, None)
            continue
        names = o.strs(s)
        for i, n in enumerate(names):
            if n.upper() not in CAPS:
                raise ConfigError(f"{o.sub(s)}[{i}]", f"unknown capability {n!r}")
        setattr(c, s, [n.upper() for n in names])
    return c


def parse_process(o):
    p = Process()
    p.terminal = o.bool("terminal")
    cs = o.obj("consoleSize")
    p.console_size = (cs.uint32("height", 0), cs.uint32("width", 0)) if cs else None
    p.cwd = o.str("cwd", "/")
    if not p.cwd.startswith("/"):
        raise ConfigError(o.sub("cwd"), "cwd must be an absolute path")
    p.env = o.strs("env")
    p.args = o.strs("args")
    p.command_line = o.str("commandLine")
    if not p.args and not p.command_line:
        raise ConfigError(o.sub("args"), "args must not be empty")
    uo = o.obj("user")
    p.user = parse_user(uo if uo else Obj({}, o.sub("user")))
    p.rlimits = []
    seen = set()
    for r in o.objs("rlimits"):
        t = r.str("type", required=True)
        if t not in RLIMITS:
            raise ConfigError(r.sub("type"), f"unknown rlimit type {t!r}")
        if t in seen:
            raise ConfigError(r.sub("type"), f"duplicate rlimit type {t!r}")
        seen.add(t)
        p.rlimits.append((t, r.uint64("soft", required=True), r.uint64("hard", required=True)))
    p.capabilities = parse_capabilities(o.obj("capabilities"))
    p.no_new_privileges = o.bool("noNewPrivileges")
    p.apparmor_profile = o.str("apparmorProfile")
    p.selinux_label = o.str("selinuxLabel")
    p.oom_score_adj = o.int("oomScoreAdj", None, min=-1000, max=1000)
    sch = o.obj("scheduler")
    p.scheduler = None
    if sch:
        p.scheduler = {"policy": sch.str("policy", required=True), "nice": sch.int("nice", 0),
                       "priority": sch.int("priority", 0), "flags": sch.strs("flags"),
                       "runtime": sch.uint64("runtime", 0), "deadline": sch.uint64("deadline", 0),
                       "period": sch.uint64("period", 0), "where": sch.path}
    io = o.obj("ioPriority")
    p.io_priority = None
    if io:
        cls = io.str("class", required=True)
        if cls not in ("IOPRIO_CLASS_RT", "IOPRIO_CLASS_BE", "IOPRIO_CLASS_IDLE"):
            raise ConfigError(io.sub("class"), f"unknown class {cls!r}")
        p.io_priority = (cls, io.int("priority", 0, min=0, max=7))
    aff = o.obj("execCPUAffinity")
    p.exec_cpu_affinity = (aff.str("initial"), aff.str("final")) if aff else None
    return p


def parse_mount(m):
    x = Mount()
    x.where = m.path
    x.destination = m.str("destination", required=True)
    if not x.destination.startswith("/"):
        raise ConfigError(m.sub("destination"),
                          f"mount destination {x.destination} not absolute")
    x.type = m.str("type")
    x.source = m.str("source")
    x.options = m.strs("options")
    x.uid_mappings = _idmaps(m, "uidMappings")
    x.gid_mappings = _idmaps(m, "gidMappings")
    return x


def parse_hooks(o):
    h = Hooks()
    for key, attr in HOOK_KINDS:
        lst = []
        for e in (o.objs(key) if o else []):
            k = Hook()
            k.path = e.str("path", required=True)
            if not k.path.startswith("/"):
                raise ConfigError(e.sub("path"), "hook path must be absolute")
            k.args = e.strs("args")
            k.env = e.strs("env")
            k.timeout = e.int("timeout", None, min=1)
            lst.append(k)
        setattr(h, attr, lst)
    return h


DEVICE_TYPES = ("c", "b", "u", "p")


def parse_linux(o, spec_root):
    lx = Linux()
    lx.namespaces = []
    seen = set()
    for n in o.objs("namespaces"):
        ns = Namespace()
        ns.type = n.str("type", required=True)
        if ns.type not in NAMESPACE_TYPES:
            raise ConfigError(n.sub("type"), f"unknown namespace type {ns.type!r}")
        if ns.type in seen:
            raise ConfigError(n.sub("type"), f"duplicate namespace {ns.type!r}")
        seen.add(ns.type)
        ns.path = n.str("path")
        if ns.path is not None and not ns.path.startswith("/"):
            raise ConfigError(n.sub("path"), "namespace path must be absolute")
        lx.namespaces.append(ns)
    lx.uid_mappings = _idmaps(o, "uidMappings")
    lx.gid_mappings = _idmaps(o, "gidMappings")
    if (lx.uid_mappings or lx.gid_mappings) and "user" not in seen:
        raise ConfigError(o.sub("uidMappings"), "user namespaces are required for id mappings")
    lx.devices = []
    for d in o.objs("devices"):
        x = Device()
        x.path = d.str("path", required=True)
        if not x.path.startswith("/dev/"):
            raise ConfigError(d.sub("path"), f"device path {x.path} must be under /dev")
        x.type = d.str("type", required=True)
        if x.type not in DEVICE_TYPES:
            raise ConfigError(d.sub("type"), f"unknown device type {x.type!r}")
        x.major = d.int64("major", required=x.type != "p")
        x.minor = d.int64("minor", required=x.type != "p")
        x.file_mode = d.uint32("fileMode")
        x.uid = d.uint32("uid")
        x.gid = d.uint32("gid")
        lx.devices.append(x)
    lx.cgroups_path = o.str("cgroupsPath")
    ro = o.obj("resources")
    lx.resources = None
    if ro is not None:
        from ..linux import cgroups
        lx.resources = cgroups.parse_resources(ro)
    lx.rootfs_propagation = o.str("rootfsPropagation")
    if lx.rootfs_propagation not in (None, "", "shared", "slave", "private", "unbindable",
                                     "rshared", "rslave", "rprivate", "runbindable"):
        raise ConfigError(o.sub("rootfsPropagation"),
                          f"unknown propagation {lx.rootfs_propagation!r}")
    lx.masked_paths = o.strs("maskedPaths")
    lx.readonly_paths = o.strs("readonlyPaths")
    lx.sysctl = o.strmap("sysctl")
    so = o.obj("seccomp")
    lx.seccomp = None
    if so is not None:
        from ..linux import seccomp
        lx.seccomp = seccomp.parse(so)
    lx.mount_label = o.str("mountLabel")
    pers = o.obj("personality")
    lx.personality = None
    if pers:
        dom = pers.str("domain", required=True)
        if dom not in ("LINUX", "LINUX32"):
            raise ConfigError(pers.sub("domain"), f"unknown personality domain {dom!r}")
        lx.personality = dom
    lx.intel_rdt = o.obj("intelRdt")
    if lx.intel_rdt is not None:
        raise ConfigError(o.sub("intelRdt"), "intelRdt is not supported on this host")
    lx.time_offsets = {}
    to = o.obj("timeOffsets")
    if to:
        for clk in to.keys():
            if clk not in ("monotonic", "boottime"):
                raise ConfigError(to.sub(clk), "unknown clock")
            c = to.obj(clk)
            lx.time_offsets[clk] = (c.int64("secs", 0), c.uint32("nanosecs", 0))
        if "time" not in seen:
            raise ConfigError(o.sub("timeOffsets"), "timeOffsets requires a time namespace")
    lx.net_devices = o.obj("netDevices")
    if lx.net_devices is not None and lx.net_devices.d:
        raise ConfigError(o.sub("netDevices"), "netDevices is not supported")
    return lx


def parse_spec(doc, bundle):
    o = Obj(doc, "")
    s = Spec()
    s.raw = doc
    s.bundle = bundle
    s.oci_version = o.str("ociVersion", required=True)
    major = s.oci_version.split(".", 1)[0]
    if not major.isdigit() or int(major) != SUPPORTED_MAJOR:
        raise ConfigError("ociVersion", f"unsupported spec version {s.oci_version!r}")
    r = o.obj("root")
    s.root = Root()
    if r is None:
        raise ConfigError("root", "is required")
    path = r.str("path", required=True)
    s.root.path = os.path.normpath(os.path.join(bundle, path))
    s.root.readonly = r.bool("readonly")
    po = o.obj("process")
    s.process = parse_process(po) if po else None
    s.hostname = o.str("hostname")
    s.domainname = o.str("domainname")
    s.mounts = [parse_mount(m) for m in o.objs("mounts")]
    s.hooks = parse_hooks(o.obj("hooks"))
    s.annotations = o.strmap("annotations")
    lo = o.obj("linux")
    s.linux = parse_linux(lo if lo else Obj({}, "linux"), s.root.path)
    if s.hostname and not s.linux.ns("uts"):
        raise ConfigError("hostname", "unable to set hostname without a new UTS namespace")
    return s


def load_bundle(bundle):
    """Read and validate ``<bundle>/config.json``. Raises ConfigError / OciError."""
    from .reader import read_config
    bundle = os.path.abspath(bundle)
    spec = parse_spec(read_config(bundle), bundle)
    if not os.path.isdir(spec.root.path):
        raise ConfigError("root.path", f"rootfs ({spec.root.path}) does not exist")
    return spec
