"""checkpoint and restore with CRIU, driven through its command line (docs/checkpoint.md).

ocirun owns everything around CRIU's process-tree dump: which mounts are external (bind
mounts, masked files, device binds), the cgroup (created by ocirun with the config's limits
before restore, tasks re-rooted into it with ``--cgroup-root``), the init's inherited stdio
(``descriptors.json`` in the image directory: ``--external`` at dump, ``--inherit-fd`` at
restore, so a shim's new pipes/fifos replace the old ones) and the container's state entry."""
from . import osfast as os

from .criu import CriuError, check_version, config_file, find_criu, require
from .errors import ConfigError, OciError, StateError

DESCRIPTORS = "descriptors.json"
CGROUP_MODES = ("soft", "full", "strict", "ignore")
EMPTY_NS = {"network": "net", "net": "net"}
EXT_NETNS = "extRootNetNS"


class CheckpointOpts:
    """Flags of ``ocirun checkpoint`` / ``restore`` (runc's names)."""
    __slots__ = ("image_path", "work_path", "parent_path", "leave_running", "tcp_established",
                 "ext_unix_sk", "shell_job", "file_locks", "pre_dump", "page_server",
                 "manage_cgroups_mode", "empty_ns", "auto_dedup", "lazy_pages", "status_fd",
                 "lsm_profile", "lsm_mount_context", "criu", "swrk")

    def __init__(self, **kw):
        for k in self.__slots__:
            setattr(self, k, None)
        self.empty_ns = []
        for k, v in kw.items():
            setattr(self, k, v)


def _common_args(o):
    a = []
    for flag, on in (("--tcp-established", o.tcp_established), ("--ext-unix-sk", o.ext_unix_sk),
                     ("--shell-job", o.shell_job), ("--file-locks", o.file_locks),
                     ("--auto-dedup", o.auto_dedup)):
        if on:
            a.append(flag)
    mode = o.manage_cgroups_mode or "soft"
    if mode not in CGROUP_MODES:
        raise OciError(f"invalid --manage-cgroups-mode value {mode!r} "
                       f"(want one of {'|'.join(CGROUP_MODES)})")
    a.append(f"--manage-cgroups={mode}")
    return a


class Described:
    """What a dump or a restore tells CRIU about the container's config: ``mounts`` as
    (destination, type, options, source), ``ns`` {namespace type: path}, ``masked`` paths
    and ``devices`` (paths). A checkpoint reads them straight from config.json
    (``from_doc``): the container was validated when it was created, and importing and
    validating the whole model would delay criu's request by ~1 ms. A restore has the
    parsed model (``from_spec``)."""
    __slots__ = ("mounts", "ns", "masked", "devices")

    @classmethod
    def from_spec(cls, spec):
        d = cls()
        d.mounts = [(m.destination, m.type or "", m.options or (), m.source or "")
                    for m in spec.mounts]
        d.ns = {n.type: n.path or "" for n in spec.linux.namespaces or ()}
        d.masked = list(spec.linux.masked_paths or ())
        d.devices = [x.path for x in spec.linux.devices or ()]
        return d

    @classmethod
    def from_doc(cls, doc):
        d = cls()
        try:
            lx = doc.get("linux") or {}
            d.mounts = [(m.get("destination") or "", m.get("type") or "",
                         m.get("options") or (), m.get("source") or "")
                        for m in doc.get("mounts") or ()]
            d.ns = {n["type"]: n.get("path") or "" for n in lx.get("namespaces") or ()}
            d.masked = list(lx.get("maskedPaths") or ())
            d.devices = [x["path"] for x in lx.get("devices") or ()]
        except (AttributeError, KeyError, TypeError) as e:
            raise ConfigError("config.json", f"cannot describe the container to CRIU: {e}") \
                from None
        return d


def _is_bind(m):
    """``m``: a Described mount."""
    return m[1] == "bind" or any(x in ("bind", "rbind") for x in m[2])


def _dev_binds(desc):
    """Device nodes bind-mounted from the host (user namespace: mknod is not allowed)."""
    if "user" not in desc.ns:
        return []
    from .linux.devices import DEFAULT_DEVICES
    out = ["/dev/" + d[0] for d in DEFAULT_DEVICES]
    for path in desc.devices:
        p = "/" + path.lstrip("/")
        if p not in out:
            out.append(p)
    return out


def _cgroup_binds(desc, mgr=None):
    """A ``cgroup`` mount without a cgroup namespace is a set of bind mounts of the container's
    own cgroup directories (linux/rootfs.py), which CRIU cannot dump ("doesn't have a proper
    root mount"): they are external, as runc makes them. Returns [(mountpoint in the
    container, host source)]; the source is ``mgr``'s directory in that hierarchy (restore:
    the new container's cgroup), else the caller's own cgroup there."""
    if "cgroup" in desc.ns:
        return []
    cms = [m for m in desc.mounts if m[1] == "cgroup"]
    if not cms:
        return []
    from .linux import rootfs
    host = rootfs._host_cgroups()
    own = None
    paths = dict(getattr(mgr, "paths", None) or {}) if mgr is not None else {}
    if mgr is not None and not paths and getattr(mgr, "path", None):
        paths = {"": mgr.path}       # cgroup v2: one directory
    out = []
    for m in cms:
        dest = "/" + m[0].strip("/")
        unified_root = [c for c in host if c.mountpoint == "/sys/fs/cgroup" and
                        c.fstype == "cgroup2"]
        for cm in unified_root or host:
            name = os.path.relpath(cm.mountpoint, "/sys/fs/cgroup")
            if unified_root:
                name = "."
            elif name == "." or "/" in name:
                continue
            src = None
            if cm.fstype == "cgroup2":
                src = paths.get("")
            else:
                for x in cm.opts:
                    if x in paths:
                        src = paths[x]
                        break
            if src is None:
                if own is None:
                    own = rootfs._own_cgroups()
                src = rootfs._cgroup_source(cm, own)
            out.append((dest if name == "." else f"{dest}/{name}", src))
    return out


def _restore_mountpoints(spec, desc):
    """Create the config's mount points missing from the root filesystem (as runc does before
    a restore): CRIU mounts onto them but does not create them. A rootfs rebuilt elsewhere
    (podman's --import, a migration) lacks those the runtime made at create. Mount points
    under a tmpfs destination are skipped: CRIU restores the tmpfs with its content. Paths
    are resolved inside the rootfs (linux/paths.py)."""
    from .linux import paths
    tmpfs = ["/" + m[0].strip("/") for m in desc.mounts if m[1] == "tmpfs"]
    rootfd = None
    try:
        for m in desc.mounts:
            dest = "/" + m[0].strip("/")
            if m[1] == "cgroup" or dest == "/" or any(
                    dest.startswith(t + "/") for t in tmpfs if t != dest):
                continue
            if _is_bind(m):
                src = m[3] if m[3].startswith("/") else os.path.join(spec.bundle, m[3])
                is_dir = os.path.isdir(src)
            else:
                is_dir = True
            if rootfd is None:
                rootfd = os.open(spec.root.path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                os.close(paths.mount_target(rootfd, dest.lstrip("/"), is_dir))
            except OSError as e:
                raise OciError(f"cannot create mount point {dest} in the rootfs: "
                               f"{e.strerror}") from None
    finally:
        if rootfd is not None:
            os.close(rootfd)


def _masked_files(desc, mounts):
    """Masked paths that are files: /dev/null bind mounts from the host (dirs get a tmpfs,
    which CRIU dumps itself). ``mounts``: the init's ``_mountinfo``."""
    fstype = {}
    for _id, m, typ in mounts:    # the last mount on a path is the visible one
        fstype[m] = typ
    return [p for p in desc.masked if fstype.get(p) == "devtmpfs"]


def _mountinfo(pid):
    """[(mount id, mount point, fstype)] of ``pid``'s mount namespace, read once per dump."""
    with open(f"/proc/{pid}/mountinfo") as f:
        rows = []
        for line in f:
            pre, _, post = line.partition(" - ")
            fields = pre.split()
            rows.append((int(fields[0]), fields[4], post.split()[0]))
        return rows


def _stdio(pid, mounts):
    """The init's fds 0-2 as CRIU names them: "pipe:[N]" for pipes, "file[mnt:ino]" (hex) for
    files on mounts outside the container (host /dev/null, a shim's fifos), else the path.
    Returns (keys, externals). ``mounts``: the init's ``_mountinfo``."""
    inside = {r[0] for r in mounts}
    keys, ext = [], []
    for fd in (0, 1, 2):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            keys.append("")
            continue
        if target.startswith(("pipe:", "socket:", "anon_inode:")):
            keys.append(target)
            continue
        try:
            st = os.stat(f"/proc/{pid}/fd/{fd}")
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                mnt = next(int(ln.split()[1]) for ln in f if ln.startswith("mnt_id:"))
        except (OSError, StopIteration):
            keys.append(target)
            continue
        if mnt not in inside:
            key = f"file[{mnt:x}:{st.st_ino:x}]"
            keys.append(key)
            if key not in ext:
                ext.append(key)
        else:
            keys.append(target)
    return keys, ext


def _devnull_for(key):
    """An O_RDWR fd of the host's /dev/null if ``file[MNT:INO]`` names it, else None."""
    try:
        ino = int(key[5:-1].split(":")[1], 16)
        if os.stat("/dev/null").st_ino != ino:
            return None
        return os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
    except (OSError, ValueError, IndexError):
        return None


def _criu_fail(what, log, rc, detail=""):
    first = ""
    try:
        with open(log, errors="replace") as f:
            for line in f:
                if "Error (" in line and "RLIMIT_NOFILE" not in line:
                    first = line.split("):", 1)[-1].strip()
                    break
    except OSError:
        pass
    msg = f"criu {what} failed (exit status {rc})"
    if first:
        msg += f": {first}"
    if detail:
        msg += f" {detail}"
    return CriuError(f"{msg}; log file: {log}")


def _prepare_dir(path, what):
    try:
        os.makedirs(path, 0o700, exist_ok=True)
    except OSError as e:
        raise OciError(f"cannot create {what} directory {path}: {e.strerror}") from None
    if not os.access(path, os.W_OK):
        raise OciError(f"{what} directory {path} is not writable")


def _config_args(annotations):
    p = config_file(annotations)
    return ["--config", p] if p else []


# ------------------------------------------------------------------------------ checkpoint

def checkpoint(rt, cid, o):
    """Dump ``cid`` with CRIU into o.image_path; unless --leave-running or --pre-dump, the
    container is then deleted (as runc). criu is started first and described to while it
    starts: ``o.swrk`` is one the caller started even earlier (the CLI does, before the
    runtime's modules are imported: criu_rpc.start_dump), else it is started as soon as
    the container is known to be running (docs/checkpoint.md, "Speed")."""
    from . import criu_rpc
    from .state import Container
    swrk, o.swrk = o.swrk, None      # ours to end from here on
    what = "pre-dump" if o.pre_dump else "dump"
    c = None
    flags = []
    try:
        criu = swrk.criu if swrk is not None else find_criu(o.criu)
        c = Container.load(rt.root, cid, lock=True)
        st = c.status()
        if st not in ("running", "paused"):
            raise StateError("container not running" if st != "created" else
                             "cannot checkpoint a container that is not running (created)")
        d = c.data
        if swrk is None:
            pass_fds = (o.status_fd,) if o.lazy_pages and o.status_fd is not None and \
                o.status_fd >= 0 else ()
            swrk = criu_rpc.Swrk(criu, pass_fds, quiet=True,
                                 join=criu_rpc.criu_cgroups(d.get("cgroup"),
                                                            only=criu_rpc.CRIU_JOINS))
        check_version(criu, rt.root)
        image = os.path.abspath(o.image_path or os.path.join(os.getcwd(), "checkpoint"))
        work = os.path.abspath(o.work_path or image)
        _prepare_dir(image, "image")
        if work != image:
            _prepare_dir(work, "work")
        from .config.reader import read_config
        desc = Described.from_doc(read_config(d["bundle"]))
        cmd = _dump_argv(criu, o, d, d["pid"], desc, image, work)
        _debug(rt, cmd)

        def on_sent():
            # criu cannot mount its cgroup2 before it has our answer to its first
            # notification (pre-dump), which comes after this: the host's cgroup2 flags
            # are taken now, and put back after criu (its mount resets them: criu#3029)
            from .linux import cgroup2_flags
            flags.append(cgroup2_flags.snapshot())
            _while_dumping(d, o)
        err = ""
        try:
            swrk.call(cmd, on_sent=on_sent)
        except CriuError as e:
            err = str(e)
        log = os.path.join(work, what + ".log")
        if err:
            if not os.path.exists(log):       # failed before its log was opened
                raise CriuError(f"criu {what} failed: {swrk.stderr_line() or err}")
            alive = c.init_alive()
            raise _criu_fail(what, log, 1,
                             "" if alive else "(the container is no longer running)")
        swrk.close()         # criu leaves the container's cgroups before they are removed
        if not (o.leave_running or o.pre_dump):
            # as runc: the checkpointed container is gone; its ID is free again
            rt._delete_locked(c, force=True)
    finally:
        if swrk is not None:
            swrk.close()
        if flags:
            from .linux import cgroup2_flags
            cgroup2_flags.repair(flags[0])
        if c is not None:
            c.unlock()


def _while_dumping(d, o):
    """Runs while criu dumps: the modules the delete after the dump needs are imported now
    rather than after it."""
    if o.leave_running or o.pre_dump:
        return
    try:   # only a warm-up: the delete does it again, and reports what fails
        from .api import _cgroup_manager
        from .linux import process  # noqa: F401
        if d.get("cgroup"):
            _cgroup_manager(d["cgroup"])
    except Exception:  # noqa: BLE001 - never abandon criu mid-dump
        pass


def _dump_argv(criu, o, d, pid, desc, image, work):
    """``criu dump|pre-dump ...`` for the container of state ``d`` (init ``pid``), as argv:
    the RPC request is built from it (criu_proto.from_argv), and --debug prints it."""
    cmd = [criu, "pre-dump" if o.pre_dump else "dump", "--tree", str(pid),
           "--images-dir", image, "--work-dir", work,
           "--log-file", "pre-dump.log" if o.pre_dump else "dump.log", "-v4"]
    cmd += _config_args(d.get("annotations"))
    cmd += _common_args(o)
    if o.leave_running and not o.pre_dump:
        cmd.append("--leave-running")
    if o.parent_path:
        cmd += ["--prev-images-dir", o.parent_path, "--track-mem"]
    elif o.pre_dump:
        cmd.append("--track-mem")
    if o.page_server:
        addr, sep, port = o.page_server.rpartition(":")
        if not sep or not port.isdigit():
            raise OciError(f"invalid --page-server {o.page_server!r} (want ADDRESS:PORT)")
        cmd += ["--page-server", "--address", addr, "--port", port]
    if o.lazy_pages:
        cmd.append("--lazy-pages")
        if o.status_fd is not None and o.status_fd >= 0:
            cmd += ["--status-fd", str(o.status_fd)]
    for ns in o.empty_ns or ():
        if ns not in EMPTY_NS:
            raise OciError(f"--empty-ns: only the network namespace is supported, "
                           f"not {ns!r}")
        cmd += ["--empty-ns", EMPTY_NS[ns]]
    if d.get("paused"):    # dumped through the frozen cgroup (v1 freezer, v2 cgroup.freeze)
        mgr = _cgroup_from_state(d)
        fz = None if mgr is None else \
            (mgr.paths.get("") if mgr.mode == "v2" else mgr.paths.get("freezer"))
        if fz:
            cmd += ["--freeze-cgroup", fz]
    # external mounts: every bind mount (restore maps it to the source again), masked
    # files (/dev/null), bind-mounted device nodes
    for m in desc.mounts:
        if _is_bind(m):
            cmd += ["--external", f"mnt[{m[0]}]:{m[0]}"]
    mounts = _mountinfo(pid)
    mounted = {r[1] for r in mounts}
    for p in _masked_files(desc, mounts) + [p for p in _dev_binds(desc) if p in mounted]:
        cmd += ["--external", f"mnt[{p}]:{p}"]
    for p, _src in _cgroup_binds(desc):
        if p in mounted:
            cmd += ["--external", f"mnt[{p}]:{p}"]
    # a network namespace joined by path (a CNI netns) stays outside the image: restore
    # joins the one the config names (runc's extRootNetNS)
    if desc.ns.get("network"):
        ino = os.stat(f"/proc/{pid}/ns/net").st_ino
        cmd += ["--external", f"net[{ino}]:{EXT_NETNS}"]
    keys, ext = _stdio(pid, mounts)
    for k in ext:
        cmd += ["--external", k]
    from . import jsonfast
    with open(os.path.join(image, DESCRIPTORS), "w") as f:
        f.write(jsonfast.dumps(keys))
    return cmd


def _debug(rt, cmd):
    """--debug: the criu command line on stderr (reproducible by hand)."""
    if getattr(rt, "debug", False):
        import sys
        sys.stderr.write("ocirun: debug: " + " ".join(cmd) + "\n")


def _run_rpc(cmd, on_pts_master=None, out_pid=None, join=(), born_in=None, on_notify=None):
    """Restore over ``criu swrk`` (criu_rpc.py). Returns 0, or 1 when CRIU failed (its first
    error is read from the log by the caller); a hook's error propagates. criu is born in
    the v1 cgroups ``born_in`` ({controller: dir}, criu_rpc.Swrk), and moved into the
    directories ``join`` (cgroup.procs, by us) before it gets the request."""
    from . import criu_rpc
    from .linux import cgroup2_flags
    snap = cgroup2_flags.snapshot()   # criu's own cgroup2 mount resets them (criu#3029)
    try:
        pid = criu_rpc.run(cmd, born_in, on_pts_master=on_pts_master, on_notify=on_notify,
                           on_started=(lambda p: _enter(join, p)) if join else None)
    except CriuError:
        return 1
    finally:
        cgroup2_flags.repair(snap)
    if out_pid is not None:
        out_pid[0] = pid
    return 0


def _pty_name(master):
    import fcntl
    import struct
    try:
        n = struct.unpack("I", fcntl.ioctl(master, 0x80045430, b"\0\0\0\0"))[0]  # TIOCGPTN
        return f"/dev/pts/{n}"
    except OSError:
        return "/dev/console"


def _enter(dirs, pid=None):
    b = str(pid or os.getpid()).encode()
    for p in dirs:
        try:
            fd = os.open(p + "/cgroup.procs", os.O_WRONLY)
            try:
                os.write(fd, b)
            finally:
                os.close(fd)
        except OSError:
            pass


def _cgroup_from_state(d):
    if not d.get("cgroup"):
        return None
    from .linux import cgroups
    return cgroups.Manager.from_state(d["cgroup"])


def cgroup_root_args(mgr):
    """``--cgroup-root`` for CRIU: the container's cgroup relative to each hierarchy's root,
    so the restored tasks (and the container's cgroup mounts) land in the cgroup ocirun made
    for the restored container, whatever its name was at dump time."""
    from .linux.cgroups import fs
    mounts = fs.mountinfo_cgroups()
    rel = {}
    for key, p in mgr.paths.items():
        best = None
        for mnt, root, typ, sopts in mounts:
            if (p == mnt or p.startswith(mnt.rstrip("/") + "/")) and \
                    (best is None or len(mnt) > len(best[0])):
                best = (mnt, root, typ, sopts)
        if best is None:
            continue
        mnt, root = best[0], best[1]
        r = "/" + "/".join(x for x in (root.strip("/"), p[len(mnt):].strip("/")) if x)
        ctrl = key
        if best[2] == "cgroup2":
            ctrl = ""
        rel[ctrl] = r
    vals = set(rel.values())
    if len(vals) == 1:
        return ["--cgroup-root", vals.pop()]
    out = []
    for ctrl, r in rel.items():
        out += ["--cgroup-root", f"{ctrl}:{r}" if ctrl else r]
    return out


# ------------------------------------------------------------------------------ restore

def _userns_access(spec, image):
    """Restored tasks of a user-namespaced container open images as the container's root
    (a host uid/gid from the maps): the image directory (0700 root) gets that gid and mode
    0710 — searchable by the container's root, still by no other user."""
    if spec.linux.ns("user") is None:
        return
    hostgid = None
    for m in spec.linux.gid_mappings or ():
        if m.container_id <= 0 < m.container_id + m.size or m.container_id == 0:
            hostgid = m.host_id - m.container_id
            break
    if hostgid is None:
        return
    try:
        st = os.stat(image)
        if st.st_gid != hostgid:
            os.chown(image, -1, hostgid)
        if st.st_mode & 0o010 == 0:
            os.chmod(image, (st.st_mode & 0o7777) | 0o010)
    except OSError as e:
        raise OciError(f"cannot give the container's root access to {image}: "
                       f"{e.strerror}") from None


def restore(rt, cid, bundle, o, detach=False, pid_file=None, console_socket=None,
            no_pivot=False, no_subreaper=False):
    """Restore ``cid`` from o.image_path with the bundle's config. Returns 0 (detach; the
    init's pid is in the state and ``pid_file``) or the container's exit status (foreground,
    after deleting the container)."""
    from . import criu_rpc
    from .api import _cgroup_manager, _write_pid_file, make_cgroup, start_record
    from .config.model import load_bundle
    from .linux import syscalls as sc
    from .linux.process import kill_and_reap
    from .state import Container, proc_stat, validate_id
    validate_id(cid)
    criu, _v = require(o.criu, rt.root)
    spec = load_bundle(bundle)
    if spec.process is None:
        raise ConfigError("process", "is required to restore a container")
    terminal = spec.process.terminal
    if terminal and not console_socket:
        raise OciError("cannot allocate tty if ocirun will detach without setting console "
                       "socket")
    if not terminal and console_socket:
        raise OciError("cannot use console socket if ocirun will not detach or allocate tty")
    image = os.path.abspath(o.image_path or os.path.join(os.getcwd(), "checkpoint"))
    work = os.path.abspath(o.work_path or image)
    if not os.path.isfile(os.path.join(image, "inventory.img")):
        raise OciError(f"no checkpoint images in {image} (inventory.img is missing)")
    if work != image:
        _prepare_dir(work, "work")
    elif not os.access(work, os.W_OK):
        raise OciError(f"image directory {image} is not writable (restore.log goes there; "
                       "use --work-path)")
    keys = []
    try:
        from . import jsonfast
        with open(os.path.join(image, DESCRIPTORS), "rb") as f:
            keys = jsonfast.loads(f.read())
    except (OSError, ValueError):
        pass
    _userns_access(spec, image)
    if not detach and not no_subreaper:
        sc.set_child_subreaper(True)
    c = Container.new(rt.root, cid)
    mgr = None
    pid = 0
    pass_fds = []
    croot = os.path.join(c.dir, "criu-root")
    try:
        mgr = _cgroup_manager(spec, cid, rt.systemd_cgroup)
        start_record(c, spec, mgr, restored=True)
        if mgr is not None:
            make_cgroup(c, spec, mgr)
        desc = Described.from_spec(spec)
        _restore_mountpoints(spec, desc)
        os.mkdir(croot, 0o700)
        pidf = os.path.join(c.dir, "criu.pid")
        cmd = [criu, "restore", "--images-dir", image, "--work-dir", work,
               "--log-file", "restore.log", "-v4", "--root", croot, "--restore-detached",
               "--pidfile", pidf]
        cmd += _config_args(spec.annotations)
        cmd += _common_args(o)
        if mgr is not None:
            cmd += cgroup_root_args(mgr)
        for m in desc.mounts:
            if _is_bind(m):
                src = m[3] if m[3].startswith("/") else os.path.join(spec.bundle, m[3])
                cmd += ["--external", f"mnt[{m[0]}]:{src}"]
        for p in desc.masked:
            cmd += ["--external", f"mnt[{p}]:/dev/null"]
        for p in _dev_binds(desc):
            cmd += ["--external", f"mnt[{p}]:{p}"]
        for p, src in _cgroup_binds(desc, mgr):
            cmd += ["--external", f"mnt[{p}]:{src}"]
        for fd, key in enumerate(keys[:3]):
            if key.startswith(("pipe:", "file[")):
                try:
                    st = os.fstat(fd)
                except OSError:
                    continue
                if key.startswith("file[") and (st.st_mode & 0o170000) in (0o010000, 0o140000):
                    # a pipe/socket where the container had a file: the host's /dev/null (a
                    # shim's absent stdin; `ctr restore` hands a fifo) is reopened instead, as
                    # runc lets CRIU reopen it; any other file stays a mismatch CRIU reports
                    dn = _devnull_for(key)
                    if dn is not None:
                        pass_fds.append(dn)
                        fd = dn
                cmd += ["--inherit-fd", f"fd[{fd}]:{key}"]
        for ns in o.empty_ns or ():
            if ns not in EMPTY_NS:
                raise OciError(f"--empty-ns: only the network namespace is supported, "
                               f"not {ns!r}")
            cmd += ["--empty-ns", EMPTY_NS[ns]]
        netns = spec.linux.ns("network")
        if netns is not None and netns.path:
            try:
                netfd = os.open(netns.path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError as e:
                raise OciError(f"cannot open network namespace {netns.path}: "
                               f"{e.strerror}") from None
            pass_fds.append(netfd)
            cmd += ["--inherit-fd", f"fd[{netfd}]:{EXT_NETNS}"]
        if o.lsm_profile:
            cmd += ["--lsm-profile", o.lsm_profile]
        if o.lsm_mount_context:
            cmd += ["--lsm-mount-context", o.lsm_mount_context]
        if o.lazy_pages:
            cmd.append("--lazy-pages")
        rootfs = spec.root.path
        readonly = bool(spec.root.readonly)

        ignore = (o.manage_cgroups_mode or "soft") == "ignore"
        dirs = criu_rpc.criu_cgroups(None if mgr is None else mgr.to_state(),
                                 only=None if ignore else criu_rpc.CRIU_JOINS)
        if ignore and mgr is not None and not dirs:
            dirs = dict(mgr.paths)   # v2: the restored tasks must land there
        log = os.path.join(work, "restore.log")
        _debug(rt, cmd)

        def send_master(fd):     # terminal: CRIU made a new pty pair; the master goes out
            from .linux import terminal as term
            sock = term.connect_console_socket(console_socket)
            term.send_fd(sock, fd, _pty_name(fd))

        def on_notify(script, npid):
            # the restored init's namespaces exist, nothing runs yet: runc runs the
            # prestart and createRuntime hooks here, with the restored pid
            if script == "setup-namespaces" and (spec.hooks.prestart or
                                                 spec.hooks.create_runtime):
                from .linux import hooks
                c.data["pid"] = npid
                s = rt._hook_state(c, "creating")
                hooks.run_all(spec.hooks.prestart, s, "prestart")
                hooks.run_all(spec.hooks.create_runtime, s, "createRuntime")

        # CRIU wants the rootfs as a mount point: it is bound in a mount namespace of this
        # process only (nothing is left on the host whatever happens; detach: we exit soon,
        # foreground: we only wait and delete). Ours, not criu's: CRIU reaches the work dir
        # through our fd and mounts its cgroup yard there. Slave, not private: a root that is
        # a shared mount's slave (dockerd's overlay) keeps its master, from which CRIU
        # copies the restored root's sharing ("Failed to copy sharing ... Invalid argument")
        sc.unshare(sc.CLONE_NEWNS)
        sc.mount(None, "/", None, sc.MS_REC | sc.MS_SLAVE)
        sc.mount(rootfs, croot, None, sc.MS_BIND | sc.MS_REC)
        if readonly:  # CRIU keeps the root mount it is given: root.readonly holds
            sc.mount(None, croot, None, sc.MS_REMOUNT | sc.MS_BIND | sc.MS_RDONLY)
        rpc_pid = [0]
        try:
            # criu swrk is in the container's cgroups before it restores anything: born
            # in memory and blkio, or, with --manage-cgroups-mode ignore (the restored
            # tasks stay in criu's cgroups), moved into all of them through cgroup.procs
            rc = _run_rpc(cmd, send_master if terminal else None, rpc_pid,
                          join=list(dict.fromkeys(dirs.values())) if ignore else (),
                          born_in=None if ignore else dirs, on_notify=on_notify)
        finally:
            sc.umount2(croot, sc.MNT_DETACH)
        pid = rpc_pid[0]
        if rc != 0:
            raise _criu_fail("restore", log, rc)
        ps = proc_stat(pid)
        c.data["pid"] = pid
        c.data["start_time"] = ps[1] if ps else 0
        c.data["status"] = "running"
        c.save()
        os.rmdir(croot)
        if pid_file:
            _write_pid_file(pid_file, pid)
    except BaseException:
        if mgr is not None:
            try:
                from . import sig
                mgr.kill_all(sig.parse("KILL"))
            except (OciError, OSError):
                pass
        if pid:
            kill_and_reap(pid)
        if mgr is not None:
            try:
                mgr.destroy()
            except OciError:
                pass
        try:
            os.rmdir(croot)
        except OSError:
            pass
        c.remove()
        raise
    finally:
        for fd in pass_fds:
            os.close(fd)
    c.unlock()
    if detach:
        return 0
    from .api import _forward_signals, _wait_status
    import _signal
    fwd = _forward_signals(pid)
    try:
        status = _wait_status(pid, reaped_by_us=not no_subreaper)
    finally:
        for s, h in fwd:
            _signal.signal(s, h)
        rt.delete(cid, force=True)
    return status
