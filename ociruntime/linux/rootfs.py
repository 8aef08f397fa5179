"""The container's filesystem: mounts, devices, pivot_root, masked and read-only paths.

Called by the container init (single-threaded, in its own mount namespace) in this order::

    rootfs.validate(spec)          # also by `create` before anything is forked
    rootfs.prepare(spec, no_pivot) # mounts + devices, then pivot_root; ends with cwd "/"
    rootfs.finish(spec)            # sysctls, readonlyPaths, maskedPaths, root.readonly

Secure by construction: every mount is built detached (``fsopen``/``fsmount`` or
``open_tree(OPEN_TREE_CLONE)``), configured with ``mount_setattr`` while nobody can see it, and
attached with ``move_mount`` onto an ``O_PATH`` fd resolved inside the rootfs with
``openat2(RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS)`` (``paths``). No mount target is ever a path
string, so a symlink in the image or a racing rename cannot move a mount outside the rootfs.
"""
from .. import osfast as os
import _stat as stat  # the C module stat.py re-exports (stat.py: 0.4 M instructions)

from ..errors import ConfigError, SetupError
from . import devices, mountopts, paths, sysctl
from . import syscalls as sc


class _State:
    """What prepare() keeps for finish(): fds opened while the host was still visible."""
    __slots__ = ("devnull", "proc", "propagation_after")

    def __init__(self):
        self.devnull = []      # detached clones of the host's verified /dev/null (mask sources)
        self.proc = None       # a private, never attached procfs mount (sysctl writes)
        self.propagation_after = None

    def close(self):
        for fd in self.devnull + [self.proc]:
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.devnull = []
        self.proc = None


_state = _State()


def _linux(spec):
    return getattr(spec, "linux", None)


def _lattr(spec, name, default=None):
    lin = _linux(spec)
    v = getattr(lin, name, None) if lin is not None else None
    return default if v is None else v


def _ns(spec, t):
    lin = _linux(spec)
    if lin is None:
        return None
    for n in getattr(lin, "namespaces", None) or ():
        if n.type == t:
            return n
    return None


def _where(m, i):
    return getattr(m, "where", None) or f"mounts[{i}]"


# ---------------------------------------------------------------- validate

def validate(spec):
    """Check everything about the filesystem part of the config that can be checked without
    touching it; raises ConfigError naming the field."""
    root = getattr(spec.root, "path", None)
    if not root or not os.path.isdir(root):
        raise ConfigError("root.path", f"rootfs ({root}) does not exist or is not a directory")
    mountopts.parse_propagation(_lattr(spec, "rootfs_propagation"))
    for i, m in enumerate(spec.mounts or ()):
        w = _where(m, i)
        if not m.destination or not m.destination.startswith("/"):
            raise ConfigError(f"{w}.destination",
                              f"must be an absolute path, got {m.destination!r}")
        o = mountopts.parse(m.options, w, m.type)
        if not o.bind and not m.type:
            raise ConfigError(f"{w}.type", "is required unless options contain bind or rbind")
        if o.bind:
            if not m.source:
                raise ConfigError(f"{w}.source", "is required for a bind mount")
            src = _source(spec, m)
            if not os.path.exists(src):
                raise ConfigError(f"{w}.source", f"bind source {src} does not exist")
        if o.idmap and (m.uid_mappings or m.gid_mappings):
            if not (m.uid_mappings and m.gid_mappings):
                raise ConfigError(w, "idmap needs both uidMappings and gidMappings")
        elif o.idmap and _ns(spec, "user") is None:
            raise ConfigError(f"{w}.options", "idmap without uidMappings/gidMappings needs "
                                              "a user namespace")
        if (m.uid_mappings or m.gid_mappings) and not o.idmap:
            raise ConfigError(w, "uidMappings/gidMappings need the idmap or ridmap option")
        if not o.bind and m.type in _PRECHECK and (o.data or o.sb_flags):
            _precheck(m, o, w)
    devices.validate(_lattr(spec, "devices", []))
    for key in ("masked_paths", "readonly_paths"):
        field = {"masked_paths": "linux.maskedPaths", "readonly_paths": "linux.readonlyPaths"}
        for i, p in enumerate(_lattr(spec, key, [])):
            if not isinstance(p, str) or not p.startswith("/"):
                raise ConfigError(f"{field[key]}[{i}]", f"must be an absolute path, got {p!r}")
    sysctl.validate(_lattr(spec, "sysctl", {}), _lattr(spec, "namespaces", []))


# filesystems that parse their options when they are given (fs_context): the kernel can tell
# us about a bad option before anything is forked
_PRECHECK = ("tmpfs", "proc", "mqueue", "devpts")


def _precheck(m, o, w):
    """Have the kernel parse a new mount's options (fsopen + fsconfig, no mount): a bad option
    becomes a ConfigError at create time. Skipped when fsopen is not allowed (rootless)."""
    flags, strings = mountopts.split_data(o.data)
    try:
        sc.fsmount_new(m.type, None, flags=o.sb_flags + flags, strings=strings, what=m.type,
                       create=False)
    except OSError as e:
        if e.errno == 22:   # EINVAL: the kernel refused an option; anything else waits for start
            raise ConfigError(f"{w}.options", f"{e.filename}: {e.strerror}") from None


def _source(spec, m):
    src = m.source
    if src and not src.startswith("/"):
        src = os.path.join(getattr(spec, "bundle", None) or os.getcwd(), src)
    return src


# ---------------------------------------------------------------- prepare

def prepare(spec, no_pivot=False, before_switch=None):
    """Mounts, devices and the switch into the rootfs. Ends with cwd "/" in the new root.
    ``before_switch(rootfd)`` runs once every mount is in place, before pivot_root: the moment
    for createContainer hooks and for loading the program (Wasm modules in volumes)."""
    _state.close()
    root = spec.root.path
    prop = mountopts.parse_propagation(_lattr(spec, "rootfs_propagation"))
    # Host mounts must not see ours: / becomes a slave (or what the config asks for; shared is
    # applied only after pivot_root, which refuses shared mounts).
    try:
        if prop is None or prop[0] == sc.MS_SHARED:
            _state.propagation_after = prop
            sc.mount(None, "/", None, sc.MS_SLAVE | sc.MS_REC)
        else:
            sc.mount(None, "/", None, prop[0] | (sc.MS_REC if prop[1] else 0))
        # the rootfs becomes a mount of its own (pivot_root needs one)
        sc.mount(root, root, None, sc.MS_BIND | sc.MS_REC)
        rootfd = paths.open_root(root)
    except OSError as e:
        raise SetupError(f"preparing rootfs {root}: {_oserr(e)}") from None
    try:
        try:
            _state.devnull = _devnull_clones(len(_lattr(spec, "masked_paths", [])))
        except OSError as e:
            raise SetupError(f"linux.maskedPaths: {_oserr(e)}") from None
        _state.proc = _private_proc()
        cg = None
        dev_bound = False
        for i, m in enumerate(spec.mounts or ()):
            w = _where(m, i)
            o = mountopts.parse(m.options, w, m.type)
            if paths.clean(m.destination) == "dev" and o.bind:
                dev_bound = True
            try:
                if m.type == "cgroup" and not o.bind:
                    if cg is None:
                        cg = _host_cgroups()
                    _mount_cgroup(rootfd, m, o, spec, cg)
                elif o.bind:
                    _mount_bind(rootfd, spec, m, o)
                else:
                    _mount_new(rootfd, m, o)
            except OSError as e:
                raise SetupError(f"{w}: mount {m.source or m.type} to {m.destination}: "
                                 f"{_oserr(e)}") from None
        if not dev_bound:
            try:
                devices.setup_dev(rootfd, _lattr(spec, "devices", []),
                                  bind=_ns(spec, "user") is not None)
            except OSError as e:
                raise SetupError(f"linux.devices: {_oserr(e)}") from None
        if before_switch is not None:
            before_switch(rootfd)
        try:
            if no_pivot:
                _move_root(rootfd)
            else:
                _pivot(rootfd)
        except OSError as e:
            raise SetupError(f"switching root to {root}: {_oserr(e)}") from None
    finally:
        os.close(rootfd)


def _oserr(e):
    s = e.strerror or str(e)
    return f"{e.filename}: {s}" if e.filename else s


def _devnull_clones(n):
    """n detached bind mounts of the host's /dev/null, verified to be char device 1:3: the
    sources for masking files after pivot_root, when the host's /dev is out of reach (a mount
    can only be cloned from our own namespace, and the container's /dev/null is not trusted)."""
    if not n:
        return []
    fd = os.open("/dev/null", os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISCHR(st.st_mode) or st.st_rdev != os.makedev(1, 3):
            raise OSError(19, "host /dev/null is not char device 1:3", "/dev/null")
        out = []
        try:
            for _ in range(n):
                out.append(sc.open_tree(fd, "", sc.OPEN_TREE_CLONE | sc.OPEN_TREE_CLOEXEC |
                                        sc.AT_EMPTY_PATH, what="/dev/null"))
        except BaseException:
            for m in out:
                os.close(m)
            raise
        return out
    finally:
        os.close(fd)


def _private_proc():
    """A procfs mount nobody else can see (never attached): sysctls are written through it."""
    try:
        return sc.fsmount_new("proc", "proc", attr_flags=sc.MOUNT_ATTR_NOSUID |
                              sc.MOUNT_ATTR_NODEV | sc.MOUNT_ATTR_NOEXEC)
    except OSError:
        return None


def _setattr(mfd, o, what, fresh=False):
    if o.attr_set or o.attr_clr:
        try:
            sc.mount_setattr(mfd, o.attr_set, o.attr_clr, what=what)
        except PermissionError:
            # flags locked by a less privileged mount namespace (user namespaces): keep them,
            # as runc does, and change only what may be changed
            locked = sc.MOUNT_ATTR_RDONLY | sc.MOUNT_ATTR_NOSUID | sc.MOUNT_ATTR_NODEV | \
                sc.MOUNT_ATTR_NOEXEC | sc.MOUNT_ATTR__ATIME
            if fresh or not (o.attr_clr & locked):
                raise
            sc.mount_setattr(mfd, o.attr_set, o.attr_clr & ~locked, what=what)
    if o.rattr_set or o.rattr_clr:
        sc.mount_setattr(mfd, o.rattr_set, o.rattr_clr, recursive=True, what=what)


def _attach(mfd, tfd, o, what):
    sc.move_mount(mfd, tfd, what=what)
    for flag, rec in o.propagation:
        sc.mount_setattr(mfd, propagation=flag, recursive=rec, what=what)


def _mount_bind(rootfd, spec, m, o):
    src = _source(spec, m)
    flags = sc.OPEN_TREE_CLONE | sc.OPEN_TREE_CLOEXEC | (sc.AT_RECURSIVE if o.recursive else 0)
    mfd = sc.open_tree(sc.AT_FDCWD, src, flags, what=src)
    try:
        is_dir = stat.S_ISDIR(os.fstat(mfd).st_mode)
        if o.idmap:
            _idmap(mfd, spec, m, o)
        _setattr(mfd, o, m.destination)
        tfd = paths.mount_target(rootfd, m.destination, is_dir)
        try:
            _attach(mfd, tfd, o, m.destination)
        finally:
            os.close(tfd)
    finally:
        os.close(mfd)


_ORDINARY = ("proc", "sysfs")


def _new_attr(o):
    """fsmount attr_flags for a new mount (it has no submounts: r* options apply to it)."""
    atime = 0
    if o.rattr_clr & sc.MOUNT_ATTR__ATIME:
        atime = o.rattr_set & sc.MOUNT_ATTR__ATIME
    elif o.attr_clr & sc.MOUNT_ATTR__ATIME:
        atime = o.attr_set & sc.MOUNT_ATTR__ATIME
    return ((o.attr_set | o.rattr_set) & ~sc.MOUNT_ATTR__ATIME) | atime


def _mount_new(rootfd, m, o):
    dest = paths.clean(m.destination)
    ordinary = m.type in _ORDINARY or dest in ("proc", "sys")
    flags, strings = mountopts.split_data(o.data)
    attr = _new_attr(o)
    tfd = paths.mount_target(rootfd, m.destination, True, ordinary=ordinary)
    try:
        try:
            mfd = sc.fsmount_new(m.type, m.source, flags=o.sb_flags + flags, strings=strings,
                                 attr_flags=attr, what=m.type)
        except PermissionError:
            if m.type != "sysfs":
                raise
            # sysfs needs a network namespace we own; without one, runc binds the host's
            mfd = sc.open_tree(sc.AT_FDCWD, "/sys", sc.OPEN_TREE_CLONE | sc.OPEN_TREE_CLOEXEC |
                               sc.AT_RECURSIVE, what="/sys")
            try:
                sc.mount_setattr(mfd, attr & ~sc.MOUNT_ATTR__ATIME, 0, recursive=True,
                                 what="/sys")
            except BaseException:
                os.close(mfd)
                raise
        try:
            if o.tmpcopyup:
                _copy_up(tfd, mfd, m.destination)
            _attach(mfd, tfd, o, m.destination)
        finally:
            os.close(mfd)
    finally:
        os.close(tfd)


def _copy_up(tfd, mfd, what):
    """tmpcopyup: copy the image's content at the destination into the new (still detached,
    so private) tmpfs. The source is walked by fds, one component at a time, without
    following symlinks; symlinks are copied as symlinks."""
    src = sc.openat2(tfd, ".", os.O_RDONLY | os.O_DIRECTORY, 0, paths.STRICT)
    try:
        _copy_dir(src, mfd, 0)
    except OSError as e:
        raise OSError(e.errno, f"tmpcopyup: {e.strerror}", e.filename or what) from None
    finally:
        os.close(src)


def _copy_dir(src, dst, depth):
    if depth > 64:
        raise OSError(40, "directory tree too deep")
    for e in os.scandir(src):
        name = e.name
        st = os.stat(name, dir_fd=src, follow_symlinks=False)
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            os.mkdir(name, 0o700, dir_fd=dst)
            s2 = sc.openat2(src, name, os.O_RDONLY | os.O_DIRECTORY, 0, paths.STRICT)
            try:
                d2 = sc.openat2(dst, name, os.O_PATH | os.O_DIRECTORY, 0, paths.STRICT)
                try:
                    _copy_dir(s2, d2, depth + 1)
                finally:
                    os.close(d2)
            finally:
                os.close(s2)
        elif stat.S_ISREG(st.st_mode):
            s2 = sc.openat2(src, name, os.O_RDONLY, 0, paths.STRICT)
            try:
                d2 = sc.openat2(dst, name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600,
                                paths.STRICT)
                try:
                    while os.sendfile(d2, s2, None, 1 << 30):
                        pass
                finally:
                    os.close(d2)
            finally:
                os.close(s2)
        elif stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(name, dir_fd=src), name, dir_fd=dst)
        else:
            try:
                os.mknod(name, st.st_mode, st.st_rdev, dir_fd=dst)
            except PermissionError:
                continue      # device nodes in a user namespace: skipped, as the kernel wants
        os.chown(name, st.st_uid, st.st_gid, dir_fd=dst, follow_symlinks=False)
        if not stat.S_ISLNK(st.st_mode):
            os.chmod(name, mode, dir_fd=dst)   # the detached tmpfs is ours alone


# ---------------------------------------------------------------- idmapped mounts

def _idmap(mfd, spec, m, o):
    if m.uid_mappings or m.gid_mappings:
        userns = _make_userns(m.uid_mappings, m.gid_mappings)
    else:
        userns = os.open("/proc/self/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    try:
        sc.mount_setattr(mfd, sc.MOUNT_ATTR_IDMAP, userns_fd=userns, recursive=o.ridmap,
                         what=m.destination)
    finally:
        os.close(userns)


def _fmt_map(maps):
    return "".join(f"{x.container_id} {x.host_id} {x.size}\n" for x in maps)


def _make_userns(uid_maps, gid_maps):
    """An fd of a new user namespace with these mappings (a short-lived child holds it)."""
    r, w = os.pipe()
    r2, w2 = os.pipe()
    pid = os.fork()
    if pid == 0:   # child: unshare, report, wait to be killed
        try:
            os.close(r)
            os.close(w2)
            sc.unshare(sc.CLONE_NEWUSER)
            os.write(w, os.readlink("/proc/self").encode())
            os.read(r2, 1)
        finally:
            os._exit(0)
    os.close(w)
    os.close(r2)
    try:
        hp = os.read(r, 32).decode()
        if not hp:
            raise OSError(1, "could not create a user namespace for the idmapped mount")
        for name, maps in (("uid_map", uid_maps), ("gid_map", gid_maps)):
            with open(f"/proc/{hp}/{name}", "w") as f:
                f.write(_fmt_map(maps))
        return os.open(f"/proc/{hp}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(r)
        os.close(w2)
        os.waitpid(pid, 0)


# ---------------------------------------------------------------- cgroup mounts

class _CgroupMount:
    __slots__ = ("mountpoint", "fstype", "opts", "root")

    def __init__(self, mountpoint, fstype, opts, root):
        self.mountpoint, self.fstype, self.opts, self.root = mountpoint, fstype, opts, root


def _unescape(s):
    return s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n") \
        .replace("\\134", "\\")


def _host_cgroups():
    """The cgroup mounts under /sys/fs/cgroup in our (still host-like) mount namespace."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            a, _, b = line.partition(" - ")
            fa, fb = a.split(), b.split()
            if len(fb) < 3 or fb[0] not in ("cgroup", "cgroup2"):
                continue
            mp = _unescape(fa[4])
            if mp != "/sys/fs/cgroup" and not mp.startswith("/sys/fs/cgroup/"):
                continue
            out.append(_CgroupMount(mp, fb[0], fb[2].split(","), _unescape(fa[3])))
    return out


def _own_cgroups():
    own = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, ctrl, path = line.rstrip("\n").split(":", 2)
            own[ctrl] = path
    return own


def _cgroup_source(cm, own):
    """(host path of our own cgroup in this hierarchy) for a bind without a cgroup namespace."""
    if cm.fstype == "cgroup2":
        path = own.get("", "/")
    else:
        opts = set(cm.opts)
        path = "/"
        for ctrl, p in own.items():
            if ctrl and set(ctrl.split(",")) <= opts:
                path = p
                break
    rel = os.path.relpath(path, cm.root) if path.startswith(cm.root) else "."
    if rel.startswith(".."):
        rel = "."
    return os.path.join(cm.mountpoint, rel)


def _cgroup_mount_fd(cm, cgns, own, attr):
    if cgns:
        if cm.fstype == "cgroup2":
            return sc.fsmount_new("cgroup2", "cgroup", attr_flags=attr, what="cgroup2")
        flags, strings = [], []
        for x in cm.opts:
            if x in ("rw", "ro") or x.startswith("release_agent="):
                continue
            k, eq, v = x.partition("=")
            (strings.append((k, v)) if eq else flags.append(k))
        return sc.fsmount_new("cgroup", "cgroup", flags=flags, strings=strings,
                              attr_flags=attr, what="cgroup " + ",".join(cm.opts))
    src = _cgroup_source(cm, own)
    mfd = sc.open_tree(sc.AT_FDCWD, src, sc.OPEN_TREE_CLONE | sc.OPEN_TREE_CLOEXEC, what=src)
    try:
        if attr:
            sc.mount_setattr(mfd, attr, attr & sc.MOUNT_ATTR__ATIME and sc.MOUNT_ATTR__ATIME,
                             what=src)
    except BaseException:
        os.close(mfd)
        raise
    return mfd


def _mount_cgroup(rootfd, m, o, spec, cg):
    """type "cgroup": the container's view of its cgroups, read-only if asked.
    cgroup v2 host: one cgroup2 mount. v1/hybrid host: a tmpfs with one mount per hierarchy
    (a fresh mount with a cgroup namespace; else a bind of the container's own cgroup)."""
    cgns = _ns(spec, "cgroup") is not None
    own = {} if cgns else _own_cgroups()
    attr = _new_attr(o)
    unified_root = [c for c in cg if c.mountpoint == "/sys/fs/cgroup" and c.fstype == "cgroup2"]
    tfd = paths.mount_target(rootfd, m.destination, True, ordinary=True)
    try:
        if unified_root:
            mfd = _cgroup_mount_fd(unified_root[0], cgns, own, attr)
            try:
                _attach(mfd, tfd, o, m.destination)
            finally:
                os.close(mfd)
            return
        tattr = attr & ~sc.MOUNT_ATTR_RDONLY
        top = sc.fsmount_new("tmpfs", "tmpfs", strings=[("mode", "755")], attr_flags=tattr,
                             what="cgroup tmpfs")
        try:
            _attach(top, tfd, o, m.destination)
            links = []
            for cm in cg:
                name = os.path.relpath(cm.mountpoint, "/sys/fs/cgroup")
                if name == "." or "/" in name:
                    continue
                os.mkdir(name, 0o755, dir_fd=top)
                sub = sc.openat2(top, name, os.O_PATH | os.O_DIRECTORY, 0, paths.STRICT)
                try:
                    mfd = _cgroup_mount_fd(cm, cgns, own, attr)
                    try:
                        sc.move_mount(mfd, sub, what=f"{m.destination}/{name}")
                    finally:
                        os.close(mfd)
                finally:
                    os.close(sub)
                if "," in name:
                    links += [(p, name) for p in name.split(",")]
            for p, name in links:
                try:
                    os.symlink(name, p, dir_fd=top)
                except FileExistsError:
                    pass
            if attr & sc.MOUNT_ATTR_RDONLY:
                sc.mount_setattr(top, sc.MOUNT_ATTR_RDONLY, what=m.destination)
        finally:
            os.close(top)
    finally:
        os.close(tfd)


# ---------------------------------------------------------------- switching root

def _pivot(rootfd):
    old = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fchdir(rootfd)
        sc.pivot_root(".", ".")
        # the old root is now stacked on "/": detach it without propagating to the host
        os.fchdir(old)
        sc.mount(None, ".", None, sc.MS_SLAVE | sc.MS_REC)
        sc.umount2(".", sc.MNT_DETACH)
    finally:
        os.close(old)
    os.chdir("/")
    _after_switch()


def _move_root(rootfd):
    os.fchdir(rootfd)
    sc.mount(".", "/", None, sc.MS_MOVE)
    os.chroot(".")
    os.chdir("/")
    _after_switch()


def _after_switch():
    prop = _state.propagation_after
    if prop is not None:
        sc.mount(None, "/", None, prop[0] | (sc.MS_REC if prop[1] else 0))


# ---------------------------------------------------------------- finish

def finish(spec):
    """After the switch: sysctls, readonlyPaths, maskedPaths, then root.readonly."""
    try:
        sysctl.apply(_lattr(spec, "sysctl", {}), _state.proc)
        rootfd = paths.open_root("/")
        try:
            for i, p in enumerate(_lattr(spec, "readonly_paths", [])):
                try:
                    readonly_path(rootfd, p)
                except OSError as e:
                    raise SetupError(f"linux.readonlyPaths[{i}]: {p}: {_oserr(e)}") from None
            for i, p in enumerate(_lattr(spec, "masked_paths", [])):
                try:
                    mask_path(rootfd, p, _state.devnull)
                except OSError as e:
                    raise SetupError(f"linux.maskedPaths[{i}]: {p}: {_oserr(e)}") from None
            if spec.root.readonly:
                try:
                    sc.mount_setattr(rootfd, sc.MOUNT_ATTR_RDONLY, what="/")
                except OSError as e:
                    raise SetupError(f"root.readonly: {_oserr(e)}") from None
        finally:
            os.close(rootfd)
    finally:
        _state.close()


def readonly_path(rootfd, path):
    """Bind ``path`` onto itself read-only (recursively); missing paths are skipped."""
    try:
        tfd = paths.resolve(rootfd, path)
    except FileNotFoundError:
        return
    try:
        mfd = sc.open_tree(tfd, "", sc.OPEN_TREE_CLONE | sc.OPEN_TREE_CLOEXEC | sc.AT_RECURSIVE
                           | sc.AT_EMPTY_PATH, what=path)
        try:
            sc.mount_setattr(mfd, sc.MOUNT_ATTR_RDONLY, recursive=True, what=path)
            sc.move_mount(mfd, tfd, what=path)
        finally:
            os.close(mfd)
    finally:
        os.close(tfd)


def mask_path(rootfd, path, devnull):
    """Directories get an empty read-only tmpfs; anything else a read-only bind of a verified
    /dev/null (char 1:3, checked with fstat: CVE-2025-31133). Missing paths are skipped.
    ``devnull``: list of detached /dev/null mount fds; one is used up per masked file."""
    try:
        tfd = paths.resolve(rootfd, path)
    except FileNotFoundError:
        return
    try:
        if stat.S_ISDIR(os.fstat(tfd).st_mode):
            mfd = sc.fsmount_new("tmpfs", "tmpfs", strings=[("size", "0"), ("mode", "755")],
                                 attr_flags=sc.MOUNT_ATTR_RDONLY | sc.MOUNT_ATTR_NOSUID |
                                 sc.MOUNT_ATTR_NODEV | sc.MOUNT_ATTR_NOEXEC, what="tmpfs")
        else:
            if not devnull:
                raise OSError(19, "no verified /dev/null to mask with")
            mfd = devnull.pop()
            try:
                st = os.fstat(mfd)
                if not stat.S_ISCHR(st.st_mode) or st.st_rdev != os.makedev(1, 3):
                    raise OSError(19, "mask source is not /dev/null (char 1:3)")
                sc.mount_setattr(mfd, sc.MOUNT_ATTR_RDONLY | sc.MOUNT_ATTR_NOSUID |
                                 sc.MOUNT_ATTR_NOEXEC, what=path)
            except BaseException:
                os.close(mfd)
                raise
        try:
            sc.move_mount(mfd, tfd, what=path)
        finally:
            os.close(mfd)
    finally:
        os.close(tfd)


# ---------------------------------------------------------------- console

def console(pty_slave):
    """Bind the terminal's pty slave onto /dev/console (after the switch).
    ``pty_slave``: an open fd of the slave, or its path inside the container (resolved without
    following any symlink). The source must be a pty slave (major 136: CVE-2025-52565)."""
    rootfd = paths.open_root("/")
    own = not isinstance(pty_slave, int)
    try:
        src = paths.resolve(rootfd, pty_slave, os.O_PATH, paths.NO_SYMLINKS) if own \
            else pty_slave
        try:
            st = os.fstat(src)
            if not stat.S_ISCHR(st.st_mode) or os.major(st.st_rdev) != 136:
                raise SetupError(f"/dev/console: {pty_slave} is not a pty slave")
            devfd = paths.mkdir_all(rootfd, "/dev")
            try:
                try:
                    cst = os.stat("console", dir_fd=devfd, follow_symlinks=False)
                    if not stat.S_ISREG(cst.st_mode):
                        os.unlink("console", dir_fd=devfd)
                except FileNotFoundError:
                    pass
                try:
                    fd = sc.openat2(devfd, "console", os.O_CREAT | os.O_EXCL | os.O_WRONLY |
                                    os.O_NOFOLLOW, 0o600, paths.STRICT)
                    os.close(fd)
                except FileExistsError:
                    pass
                tfd = sc.openat2(devfd, "console", os.O_PATH, 0, paths.STRICT)
            finally:
                os.close(devfd)
            try:
                mfd = sc.open_tree(src, "", sc.OPEN_TREE_CLONE | sc.OPEN_TREE_CLOEXEC |
                                   sc.AT_EMPTY_PATH, what="/dev/console")
                try:
                    sc.move_mount(mfd, tfd, what="/dev/console")
                finally:
                    os.close(mfd)
            finally:
                os.close(tfd)
        finally:
            if own:
                os.close(src)
    except OSError as e:
        raise SetupError(f"/dev/console: {_oserr(e)}") from None
    finally:
        os.close(rootfd)
