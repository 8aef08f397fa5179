"""The Python API under the CLI. Same semantics and errors as the ``ocirun`` commands::

    from ociruntime.api import Runtime
    rt = Runtime(root="/run/ocirun")
    rt.create("web", "/path/to/bundle")
    rt.start("web")
    print(rt.state("web")["status"])
    rt.kill("web", "TERM"); rt.wait("web"); rt.delete("web")
"""
from . import osfast as os
import _signal as signal

from .errors import (ConfigError, ContainerNotFound, NoSuchProcess, OciError, StateError,
                     error_line)
from .state import DEFAULT_ROOT, Container, boot_id, list_ids, proc_stat, rfc3339nano


def parse_signal(s):
    """'9', 'KILL', 'SIGKILL' → 9 (runc accepts all three)."""
    from .sig import parse
    return parse(s)


def _rootfs_module():
    from .linux import rootfs
    return rootfs


def _cgroup_manager(spec_or_state, cid=None, systemd=False):
    from .linux import cgroups
    if isinstance(spec_or_state, dict):
        return cgroups.Manager.from_state(spec_or_state)
    return cgroups.manager_for(spec_or_state.linux.cgroups_path, cid, systemd=systemd)


class Runtime:
    def __init__(self, root=DEFAULT_ROOT, systemd_cgroup=False, rootless=None, debug=False):
        self.root = root
        self.systemd_cgroup = systemd_cgroup
        self.debug = debug
        if systemd_cgroup:
            from .errors import Unsupported
            raise Unsupported("systemd cgroup driver is not supported yet (use cgroupfs)")

    # ------------------------------------------------------------------------------ create
    def create(self, cid, bundle, pid_file=None, console_socket=None, no_pivot=False,
               preserve_fds=0, no_new_keyring=False, _console_fd=None, best_effort=False):
        """Create ``cid`` from ``bundle``. ``best_effort`` is accepted for the platform seam's
        sake: Linux enforces everything config.json asks for or refuses it, nothing is ever
        dropped, so the flag changes nothing here (see docs/platforms.md)."""
        from .config.model import load_bundle
        from .linux import capabilities, namespaces, process, syscalls as sc
        from .linux.init import InitContext
        from .state import FIFO, validate_id
        validate_id(cid)
        spec = load_bundle(bundle)
        if spec.process is None:
            raise ConfigError("process", "is required to create a container")
        rootfs = _rootfs_module()
        rootfs.validate(spec)
        if spec.process.apparmor_profile or spec.process.selinux_label or \
                spec.linux.mount_label:
            from .linux import lsm
            lsm.validate(spec)
        terminal = spec.process.terminal
        if terminal and console_socket is None and _console_fd is None:
            raise OciError("cannot allocate tty if ocirun will detach without setting "
                           "console socket")
        if not terminal and console_socket is not None:
            raise OciError("cannot use console socket if ocirun will not detach or allocate "
                           "tty")
        c = Container.new(self.root, cid)
        mgr = None
        ctx = None
        init_pid = 0
        try:
            mgr = _cgroup_manager(spec, cid, self.systemd_cgroup)
            start_record(c, spec, mgr)
            if mgr is not None:
                make_cgroup(c, spec, mgr)
            fifo = os.path.join(c.dir, FIFO)
            os.mkfifo(fifo, 0o622)
            os.chmod(fifo, 0o622)
            ctx = InitContext()
            ctx.spec = spec
            min_fd = 3 + int(preserve_fds or 0)
            ctx.chan = process.Channel(min_fd)
            ctx.fifo_fd = sc.above(os.open(fifo, os.O_PATH | os.O_CLOEXEC), min_fd)
            ctx.caps = capabilities.CapPlan(spec.process.capabilities)
            ctx.seccomp_bpf = None
            ctx.seccomp_load = None
            if spec.linux.seccomp is not None:
                from .linux import seccomp
                prepared = seccomp.prepare(spec.linux.seccomp)
                ctx.seccomp_bpf = prepared
                ctx.seccomp_load = seccomp.load
            ctx.no_pivot = no_pivot
            ctx.preserve_fds = int(preserve_fds or 0)
            ctx.terminal = terminal
            ctx.console_fd = -1
            if terminal:
                from .linux import terminal as term
                # _console_fd: a callable giving the container's end of a private pair
                # (foreground run relays the pty itself, see linux/relay.py)
                ctx.console_fd = _console_fd() if _console_fd is not None else \
                    term.connect_console_socket(console_socket)
            ctx.ns_fds = namespaces.open_paths(spec.linux.namespaces)
            ctx.rootfs = rootfs
            ctx.executor = _executor(spec)
            ctx.hooks = spec.hooks
            ctx.exec_path = None
            ctx.cid = cid
            ctx.cgjoin = mgr is not None
            if spec.hooks.start_container or spec.hooks.create_container:
                import subprocess  # noqa: F401 - must be loaded before pivot_root
                from .linux import hooks  # noqa: F401

            def on_event(what, pid):
                if what == "pid":
                    st = proc_stat(pid)
                    c.data["pid"] = pid
                    c.data["start_time"] = st[1] if st else 0
                    c.save()
                elif what == "hooks":
                    from .linux import hooks
                    s = self._hook_state(c, "creating")
                    hooks.run_all(spec.hooks.prestart, s, "prestart")
                    hooks.run_all(spec.hooks.create_runtime, s, "createRuntime")
            init_pid = process.spawn_init(ctx, mgr, on_event)
            c.data["status"] = "created"
            c.save()
            if pid_file:
                _write_pid_file(pid_file, init_pid)
        except BaseException:
            if init_pid:
                process.kill_and_reap(init_pid)
            elif c.data and c.data.get("pid"):
                process.kill_and_reap(c.data["pid"])
            left = _destroy_cgroup(mgr) if mgr is not None else None
            if left is None:
                c.remove()
            else:   # keep the record: ``ocirun delete`` can retry the cleanup
                c.unlock()
                raise OciError(f"{error_line(sys_exc())}; cleaning up: {left}") from None
            raise
        finally:
            if ctx is not None:
                for fd in [ctx.fifo_fd] + [fd for _, fd in ctx.ns_fds]:
                    if fd >= 0:
                        os.close(fd)
                if ctx.console_fd is not None and ctx.console_fd >= 0:
                    os.close(ctx.console_fd)
        c.unlock()
        return init_pid

    def _hook_state(self, c, status):
        from . import jsonfast
        d = c.state_json()
        d["status"] = status
        return jsonfast.dumps(d)

    # ------------------------------------------------------------------------------ start
    def start(self, cid):
        import select
        from .state import FIFO
        c = Container.load(self.root, cid, lock=True)
        try:
            st = c.status()
            if st != "created":
                if st == "stopped":
                    raise StateError("cannot start a container that has stopped")
                if st in ("running", "paused"):
                    raise StateError("cannot start an already running container")
                raise StateError(f"cannot start a container in the {st} state")
            fifo = os.path.join(c.dir, FIFO)
            fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            try:
                p = select.poll()
                p.register(fd, select.POLLIN)
                while True:
                    p.poll(50)
                    try:
                        data = os.read(fd, 1)
                    except BlockingIOError:
                        data = None
                    if data:
                        break
                    if not c.init_alive():
                        raise OciError("cannot start container: the container init exited")
            finally:
                os.close(fd)
            os.unlink(fifo)
            hooks = c.data.get("hooks", {}).get("poststart")
            if hooks:
                from .config.model import parse_hooks
                from .config.reader import Obj
                from .linux.hooks import run_all
                h = parse_hooks(Obj({"poststart": hooks}, "hooks"))
                run_all(h.poststart, self._hook_state(c, "running"), "poststart",
                        warn_only=True)
        finally:
            c.unlock()

    # ------------------------------------------------------------------------------ state
    def state(self, cid):
        c = Container.load(self.root, cid)
        return c.state_json()

    def list(self):
        out = []
        for cid in list_ids(self.root):
            try:
                out.append(Container.load(self.root, cid).state_json())
            except ContainerNotFound:
                pass
        return out

    # ------------------------------------------------------------------------------ kill
    def kill(self, cid, sig="TERM", all=False):
        # os.pidfd_open and _signal.pidfd_send_signal: no ctypes (linux/syscalls.py) here
        n = parse_signal(sig)
        c = Container.load(self.root, cid)
        st = c.status()
        if st == "stopped" or (st == "creating" and not c.pid):
            raise StateError("container not running")
        # the cgroup manager only for --all and to thaw a paused container (imports cost)
        mgr = _cgroup_manager(c.data["cgroup"]) if c.data.get("cgroup") and (
            all or st == "paused") else None
        if all and mgr is not None:
            mgr.kill_all(n)
        else:
            try:
                pidfd = os.pidfd_open(c.pid)
            except OSError:
                raise NoSuchProcess() from None
            try:
                ps = proc_stat(c.pid)
                if ps is None or ps[1] != c.data.get("start_time", ps[1]):
                    raise NoSuchProcess()
                signal.pidfd_send_signal(pidfd, n)
            except ProcessLookupError:
                raise NoSuchProcess() from None
            finally:
                os.close(pidfd)
        if st == "paused" and n == signal.SIGKILL and mgr is not None:
            mgr.thaw()
            c.data["paused"] = False
            c.save()

    # ------------------------------------------------------------------------------ delete
    def delete(self, cid, force=False):
        try:
            c = Container.load(self.root, cid, lock=True)
        except ContainerNotFound:
            if force:
                return
            raise
        try:
            self._delete_locked(c, force)
        finally:
            c.unlock()

    def _delete_locked(self, c, force):
        """delete's work on a container loaded with its lock held (checkpoint deletes the
        container it dumped without letting go of it)."""
        from .linux.process import kill_and_reap
        cid = c.id
        st = c.status()
        if st in ("running", "paused") and not force:
            raise StateError(f"cannot delete container {cid} that is not stopped: {st}")
        d = c.data or {}
        mgr = _cgroup_manager(d["cgroup"]) if d.get("cgroup") else None
        if mgr is not None and st != "stopped":
            try:
                mgr.kill_all(signal.SIGKILL)   # thaws a paused container so it dies
            except OciError:
                pass
        if d.get("pid"):
            kill_and_reap(d["pid"], d.get("start_time"))
        if mgr is not None:
            left = _destroy_cgroup(mgr)
            if left is not None:   # the record stays so that delete can be retried
                raise left
        hooks = d.get("hooks", {}).get("poststop")
        if hooks:
            from .config.model import parse_hooks
            from .config.reader import Obj
            from .linux.hooks import run_all
            h = parse_hooks(Obj({"poststop": hooks}, "hooks"))
            run_all(h.poststop, self._hook_state(c, "stopped"), "poststop", warn_only=True)
        c.remove()

    # ------------------------------------------------------------------------------ wait / ps
    def wait(self, cid, timeout=None):
        """Block until the container's init exits (pidfd poll; works for non-children)."""
        import select
        c = Container.load(self.root, cid)
        if not c.init_alive():
            return
        try:
            fd = os.pidfd_open(c.pid)
        except OSError:
            return
        try:
            p = select.poll()
            p.register(fd, select.POLLIN)
            p.poll(None if timeout is None else int(timeout * 1000))
        finally:
            os.close(fd)

    def ps(self, cid):
        c = Container.load(self.root, cid)
        if c.status() == "stopped":
            return []
        d = c.data or {}
        if d.get("cgroup"):
            mgr = _cgroup_manager(d["cgroup"])
            if mgr is not None:
                return sorted(mgr.pids())
        # no cgroup manager: processes in the init's pid namespace
        try:
            ns = os.readlink(f"/proc/{c.pid}/ns/pid")
        except OSError:
            return []
        out = []
        for e in os.listdir("/proc"):
            if e.isdigit():
                try:
                    if os.readlink(f"/proc/{e}/ns/pid") == ns:
                        out.append(int(e))
                except OSError:
                    pass
        return sorted(out)

    # ------------------------------------------------------------------------------ CRIU
    def checkpoint(self, cid, opts=None, **kw):
        """Dump the container with CRIU (ociruntime/checkpoint.py, docs/checkpoint.md).
        ``opts``: a checkpoint.CheckpointOpts, or its fields as keywords."""
        from . import checkpoint
        checkpoint.checkpoint(self, cid, opts or checkpoint.CheckpointOpts(**kw))

    def restore(self, cid, bundle, opts=None, detach=True, pid_file=None, console_socket=None,
                no_pivot=False, no_subreaper=False, **kw):
        """Restore a container from CRIU images with the bundle's config; a fresh state entry
        and cgroup. Returns 0 (detach) or the container's exit status (foreground)."""
        from . import checkpoint
        return checkpoint.restore(self, cid, bundle, opts or checkpoint.CheckpointOpts(**kw),
                                  detach=detach, pid_file=pid_file,
                                  console_socket=console_socket, no_pivot=no_pivot,
                                  no_subreaper=no_subreaper)

    # ------------------------------------------------------------------------------ run
    def run(self, cid, bundle, detach=False, keep=False, no_subreaper=False, pid_file=None,
            console_socket=None, no_pivot=False, preserve_fds=0, no_new_keyring=False,
            best_effort=False):
        """create + start; in the foreground wait for the init and return its exit status
        (128+signal), then delete unless ``keep``."""
        from .linux import syscalls as sc
        if not detach and not no_subreaper:
            sc.set_child_subreaper(True)
        pair = None
        if not detach and console_socket is None:   # terminal: true -> we relay the pty
            from .linux.relay import ConsolePair
            pair = ConsolePair(3 + int(preserve_fds or 0))
        try:
            pid = self.create(cid, bundle, pid_file=pid_file, console_socket=console_socket,
                              no_pivot=no_pivot, preserve_fds=preserve_fds,
                              _console_fd=pair.child_fd if pair is not None else None)
        except BaseException:
            if pair is not None:
                pair.close()
            raise
        if detach:
            self.start(cid)
            return 0
        fwd = _forward_signals(pid)
        try:
            if pair is not None and pair.used:
                master = pair.recv_master()
                self.start(cid)
                status = _relay_and_wait(master, pid, not no_subreaper)
            else:
                self.start(cid)
                status = _wait_status(pid, reaped_by_us=not no_subreaper)
        except BaseException:
            self.delete(cid, force=True)
            raise
        finally:
            for s, h in fwd:
                signal.signal(s, h)
        if not keep:
            self.delete(cid, force=True)
        return status

    # ------------------------------------------------------------------------------ exec
    def exec(self, cid, args=None, process=None, tty=None, console_socket=None, detach=False,
             pid_file=None, preserve_fds=0, cwd=None, env=(), user=None, additional_gids=(),
             caps=(), no_new_privs=None, apparmor=None, process_label=None, cgroup=(),
             ignore_paused=False):
        """Run a new process in a running container (``ocirun exec``). ``process``: a
        process.json path (``"-"``: stdin) or dict, else the bundle's ``process`` with
        ``args`` and the overrides (runc's). Foreground: returns the exit status (128+signal);
        ``detach``: returns the process's pid as soon as it exec'd."""
        from .linux import exec as lexec
        from .linux import syscalls as sc
        from .linux.capabilities import CapPlan
        from .linux.syscalls import above
        from .state import proc_stat
        c = Container.load(self.root, cid)
        st = c.status()
        if st == "stopped":
            raise StateError("cannot exec in a stopped container")
        if st == "paused" and not ignore_paused:
            raise StateError("cannot exec in a paused container (use --ignore-paused to "
                             "override)")
        if st == "creating":
            raise StateError("cannot exec in a container that is being created")
        spec, proc, ids = _exec_process(c, args, process, tty, cwd, env, user,
                                        additional_gids, caps, no_new_privs, apparmor,
                                        process_label)
        from .executors import wants_wasm
        if wants_wasm(spec.annotations, spec.process.args if spec.process is not None else None):
            from .executors.wasm import exec_unsupported
            exec_unsupported()          # a Wasm container has no native program to join
        if proc.terminal and detach and console_socket is None:
            raise OciError("cannot allocate tty if ocirun will detach without setting "
                           "console socket")
        if not proc.terminal and console_socket is not None:
            raise OciError("cannot use console socket if ocirun will not detach or allocate "
                           "tty")
        if proc.apparmor_profile or proc.selinux_label:
            from .linux import lsm
            spec.process = proc
            lsm.validate(spec)
        preserve_fds = int(preserve_fds or 0)
        min_fd = 3 + preserve_fds
        ctx = lexec.ExecContext()
        ctx.proc = proc
        ctx.uid, ctx.gid, ctx.user_name, ctx.group_name = ids
        ctx.preserve_fds = preserve_fds
        ctx.caps = CapPlan(proc.capabilities)
        if spec.linux.seccomp is not None:
            from .linux import seccomp
            ctx.seccomp_bpf = seccomp.prepare(spec.linux.seccomp)
            ctx.seccomp_load = seccomp.load
        pair = pidfd = None
        try:
            # the init, pinned: a pidfd, then its start time (pid reuse), then its namespaces
            try:
                pidfd = above(sc.pidfd_open(c.pid), min_fd)
            except OSError:
                raise StateError("cannot exec in a stopped container") from None
            ps = proc_stat(c.pid)
            if ps is None or ps[1] != c.data.get("start_time", ps[1]):
                raise StateError("cannot exec in a stopped container")
            ctx.ns_fds = [(t, above(fd, min_fd)) for t, fd in lexec.open_namespaces(c.pid)]
            ctx.root_fd = above(os.open(f"/proc/{c.pid}/root",
                                        os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC), min_fd)
            try:
                sc.pidfd_send_signal(pidfd, 0)      # still the same init: the fds are its
            except OSError:
                raise StateError("cannot exec in a stopped container") from None
            if c.data.get("cgroup"):
                ctx.cgroup2_fd, ctx.cgroup_fds = lexec.open_cgroups(
                    lexec.cgroup_dirs(lexec.state_cgroup_dirs(c.data["cgroup"]), cgroup),
                    min_fd)
            elif cgroup:
                raise OciError("--cgroup: the container has no cgroup")
            if proc.terminal:
                from .linux import terminal as term
                if console_socket is not None:
                    ctx.console_fd = above(term.connect_console_socket(console_socket), min_fd)
                else:
                    from .linux.relay import ConsolePair
                    pair = ConsolePair(min_fd)
                    ctx.console_fd = pair.child_fd()
            saved = lexec.join_for_children(ctx.ns_fds)
            try:
                pid = lexec.spawn(ctx)
            finally:
                lexec.restore_for_children(saved)
        except BaseException:
            if pair is not None:
                pair.close()
            raise
        finally:
            for fd in [pidfd, ctx.root_fd, ctx.console_fd, ctx.cgroup2_fd] + ctx.cgroup_fds + \
                    [fd for _, fd in ctx.ns_fds]:
                if fd is not None and fd >= 0:
                    os.close(fd)
        if pid_file:
            try:
                _write_pid_file(pid_file, pid)
            except OSError as e:     # leave nothing behind: the process goes too
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                if pair is not None:
                    pair.close()
                raise OciError(f"write pid file {pid_file}: {e.strerror}") from None
        if detach:
            return pid
        fwd = _forward_signals(pid)
        try:
            if pair is not None:
                return _relay_and_wait(pair.recv_master(), pid, True)
            return _wait_status(pid)
        finally:
            for s, h in fwd:
                signal.signal(s, h)

    # ------------------------------------------------------------------ pause / resume / update /
    # ------------------------------------------------------------------ stats / events (issue 4)
    def _manager_of(self, c):
        d = c.data or {}
        if not d.get("cgroup"):
            raise OciError(f"container {c.id} has no cgroup")
        return _cgroup_manager(d["cgroup"])

    def pause(self, cid):
        """Freeze every process of a running (or created) container; state -> "paused"."""
        c = Container.load(self.root, cid, lock=True)
        try:
            if c.status() not in ("running", "created"):
                raise StateError("container not running")
            self._manager_of(c).freeze()
            c.data["paused"] = True
            c.save()
        finally:
            c.unlock()

    def resume(self, cid):
        c = Container.load(self.root, cid, lock=True)
        try:
            if c.status() != "paused":
                raise StateError("container not paused")
            self._manager_of(c).thaw()
            c.data["paused"] = False
            c.save()
        finally:
            c.unlock()

    def update(self, cid, resources=None, l3_cache_schema=None, mem_bw_schema=None):
        """Change the limits of a live container. ``resources``: a dict shaped like
        ``linux.resources`` (unset or 0 fields are left alone, as runc). The merged resources
        are saved in the state. Returns the manager's warnings (ignored settings)."""
        from .config.reader import Obj
        from .linux import cgroups
        from .linux.cgroups import update as upd
        upd.check_rdt(l3_cache_schema, mem_bw_schema)
        resources = resources or {}
        cgroups.parse_resources(Obj(resources, "resources"))   # type errors name the field
        c = Container.load(self.root, cid, lock=True)
        try:
            if c.status() in ("stopped", "creating"):
                raise StateError("container not running")
            mgr = self._manager_of(c)
            merged, todo, warnings = upd.merge(c.data.get("resources"), resources, mgr.mode)
            mgr.update(cgroups.parse_resources(Obj(todo, "resources")))
            c.data["resources"] = merged
            c.data["cgroup"] = mgr.to_state()
            c.save()
            return warnings + list(mgr.warnings)
        finally:
            c.unlock()

    def _live(self, cid):
        c = Container.load(self.root, cid)
        if c.status() == "stopped":
            raise StateError(f"container with id {cid} is not running")
        return c

    def stats(self, cid):
        """The ``data`` of runc's ``events --stats``: cpu, memory, pids, blkio, hugetlb…"""
        return self._manager_of(self._live(cid)).stats()

    def events(self, cid, interval=5.0, stats=False):
        """Iterator of runc-shaped events: ``{"type": "stats", "id", "data"}`` every
        ``interval`` seconds and ``{"type": "oom", "id"}`` when the OOM killer kills in the
        container; ends when the container stops. ``stats=True``: one stats event."""
        if not interval or interval <= 0:
            raise OciError("duration interval must be greater than 0")
        c = self._live(cid)
        mgr = self._manager_of(c)
        if stats:
            return iter([{"type": "stats", "id": cid, "data": mgr.stats()}])
        from .linux.cgroups.update import event_stream
        return event_stream(c, mgr, interval)


def sys_exc():
    import sys
    return sys.exc_info()[1]


def _destroy_cgroup(mgr, settle=1.0):
    """Kill whatever is left in the cgroup (processes a shared pid namespace, a hook or a
    failed create let escape the init), wait briefly for it to empty, remove the whole
    subtree. Returns None, or the OciError (runc's "Failed to remove paths: map[...]")."""
    import time
    try:
        if mgr.exists() and mgr.pids():
            try:
                mgr.kill_all(signal.SIGKILL)
            except OciError:
                pass
            end = time.monotonic() + settle
            while mgr.pids() and time.monotonic() < end:
                time.sleep(0.005)
        mgr.destroy()
    except OciError as e:
        return e
    return None


def start_record(c, spec, mgr, **extra):
    """Write the state record of a container being created (or restored): status
    "creating", what delete and the hooks need later, and where its cgroup will be."""
    hooks = spec.raw.get("hooks") or {}
    c.data = {
        "ociVersion": spec.oci_version, "id": c.id, "pid": 0, "status": "creating",
        "bundle": spec.bundle, "rootfs": spec.root.path, "created": rfc3339nano(),
        "owner": "", "annotations": spec.annotations, "boot_id": boot_id(),
        "hooks": {k: hooks[k] for k in ("poststart", "poststop") if hooks.get(k)},
        "namespaces": {}, "config": None,
        "resources": (spec.raw.get("linux") or {}).get("resources"), **extra}
    if mgr is not None:
        c.data["cgroup"] = mgr.to_state()
    c.save()


def make_cgroup(c, spec, mgr):
    """Create the container's cgroup with the config's limits; the device rules apply even
    without linux.resources."""
    mgr.create()
    mgr.apply(spec.linux.resources, spec_devices=spec.linux.devices)
    c.data["cgroup"] = mgr.to_state()
    c.save()


def _executor(spec):
    from . import executors
    ex = executors.select(spec)
    return None if getattr(ex, "name", "native") == "native" else ex


def _write_pid_file(path, pid):
    path = os.path.abspath(path)
    tmp = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, str(pid).encode())
    finally:
        os.close(fd)
    os.rename(tmp, path)


FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
             signal.SIGUSR2, signal.SIGWINCH)


def _forward_signals(pid):
    old = []

    def fwd(sig, _frame):
        try:
            os.kill(pid, sig)
        except OSError:
            pass
    for s in FORWARDED:
        old.append((s, signal.signal(s, fwd)))
    return old


def _wait_status(pid, reaped_by_us=True):
    if reaped_by_us:
        while True:
            try:
                _, status = os.waitpid(pid, 0)
            except InterruptedError:
                continue
            except ChildProcessError:
                return 0
            code = os.waitstatus_to_exitcode(status)
            return 128 - code if code < 0 else code
    import select
    from .linux import syscalls as sc
    fd = sc.pidfd_open(pid)
    p = select.poll()
    p.register(fd, select.POLLIN)
    p.poll(None)
    os.close(fd)
    return 0


def _relay_and_wait(master, pid, reaped_by_us):
    from .linux.relay import relay
    try:
        relay(master, pid)
    finally:
        os.close(master)
    return _wait_status(pid, reaped_by_us=reaped_by_us)


def _exec_process(c, args, process, tty, cwd, env, user, additional_gids, caps,
                  no_new_privs, apparmor, process_label):
    """(spec, Process, (uid, gid, user name, group name)) of an exec, as runc builds it:
    ``process`` (a file, "-" or a dict) taken as it is; otherwise the bundle's process with
    the command line's args and overrides."""
    from . import jsonfast
    from .config.model import parse_process
    from .config.reader import Obj
    from .linux.user import parse_user_arg
    spec = _exec_spec((c.data or {}).get("bundle"))
    ids = (None, None, None, None)
    if process is not None:
        doc = process
        if not isinstance(process, dict):
            data = jsonfast.read_arg(process)
            try:
                doc = jsonfast.loads(data)
            except ValueError as e:
                raise ConfigError("process", f"invalid JSON: {e}") from None
        proc = parse_process(Obj(doc, "process"))
        if proc.user.username:
            ids = (None, None, proc.user.username, None)
        if not proc.rlimits and spec.process is not None:
            proc.rlimits = spec.process.rlimits
        return spec, proc, ids
    if not args:
        raise OciError("exec args cannot be empty")
    if spec.process is None:
        raise ConfigError("process", "is required to exec without --process")
    proc = spec.process
    proc.args = list(args)
    proc.command_line = None
    if cwd:
        if not cwd.startswith("/"):
            raise OciError(f"cwd {cwd!r} must be an absolute path")
        proc.cwd = cwd
    if apparmor:
        proc.apparmor_profile = apparmor
    if process_label:
        proc.selinux_label = process_label
    if caps:
        from .linux.capabilities import CAPS
        pc = proc.capabilities
        for name in caps:
            n = name.upper()
            n = n if n.startswith("CAP_") else "CAP_" + n
            if n not in CAPS:
                raise OciError(f"unknown capability {name!r}")
            for s in ("bounding", "effective", "permitted"):
                setattr(pc, s, (getattr(pc, s) or []) + [n])
            # ambient only with inheritable already set (never added by --cap: CVE-2022-29162)
            if pc.inheritable and n in pc.inheritable:
                pc.ambient = (pc.ambient or []) + [n]
    proc.env = list(proc.env) + list(env or ())
    proc.terminal = bool(tty)
    if no_new_privs is not None:
        proc.no_new_privileges = bool(no_new_privs)
    if user:
        ids = parse_user_arg(user)
        proc.user.username = None
    elif proc.user.username:
        ids = (None, None, proc.user.username, None)
    if additional_gids:
        gids = []
        for g in additional_gids:
            for part in str(g).split(","):
                if not part.strip().isdigit():
                    raise OciError(f"invalid additional gid {part!r}")
                gids.append(int(part))
        proc.user.additional_gids = gids
    return spec, proc, ids


class _ExecSpec:
    """What exec needs of the container's config.json (validated whole at create): the
    process (defaults) and linux.seccomp. Parsing only these keeps ``exec`` from importing
    the cgroup and mount parsers."""
    __slots__ = ("process", "linux", "mount_label", "seccomp", "annotations")

    def __init__(self):
        self.linux = self          # spec.linux.seccomp / spec.linux.mount_label


def _exec_spec(bundle):
    from . import jsonfast
    from .config.model import parse_process
    from .config.reader import Obj
    path = os.path.join(bundle or ".", "config.json")
    try:
        with open(path, "rb") as f:
            doc = Obj(jsonfast.loads(f.read()), "")
    except OSError as e:
        raise OciError(f"exec: the container's config {path}: {e.strerror}") from None
    except ValueError as e:
        raise ConfigError("config.json", f"invalid JSON: {e}") from None
    s = _ExecSpec()
    ann = doc.d.get("annotations") if isinstance(doc.d, dict) else None
    s.annotations = ann if isinstance(ann, dict) else {}
    po = doc.obj("process")
    s.process = parse_process(po) if po else None
    lo = doc.obj("linux")
    so = lo.obj("seccomp") if lo else None
    s.seccomp = None
    if so is not None:
        from .linux import seccomp
        s.seccomp = seccomp.parse(so)
    s.mount_label = None       # checked at create; exec labels only the process
    return s
