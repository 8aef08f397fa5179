"""The container init, read top to bottom in the runtime-spec's order.

Processes (see process.py for the runtime side):
  runtime (``ocirun create``) ──fork──▶ bridge ──fork──▶ init (pid 1 of the new pid namespace)
The bridge joins/creates the namespaces (a pid namespace applies to the next child), forks the
init, reports its pid and exits, so the init is re-parented to the caller's subreaper (the
shim/conmon), never waited on by us. The init realizes the config, reports "ready", blocks on
the exec fifo until ``start``, then drops privileges and execs the user's program.
The init joins the container's cgroup late (after the rootfs; docs/cgroups.md "When the init
joins its cgroup"), so the pages it copies from the runtime are not charged to the container.

Everything needed after pivot_root (modules, shared libraries, the seccomp BPF, the capability
plan) is imported or computed before it: the host's interpreter and libraries are gone after.
The init is non-dumpable from its first instruction (CVE-2016-9962) and closes every fd not on
the allow-list before the user's program can run (CVE-2024-21626)."""
from .. import osfast as os
import _signal as signal

from ..errors import OciError, SetupError
# Everything used after pivot_root is imported here, before it.
from .. import jsonfast
from . import namespaces, rlimits, syscalls as sc, user as _user


class InitContext:
    """What the runtime prepared before forking; read-only in the children."""
    __slots__ = ("spec", "chan", "fifo_fd", "caps", "seccomp_bpf", "seccomp_flags", "no_pivot",
                 "preserve_fds", "console_fd", "ns_fds", "rootfs", "executor", "hooks",
                 "terminal", "exec_path", "cid", "seccomp_load", "cgjoin", "cgns", "cg_tasks")

    def __init__(self):
        for k in self.__slots__:
            setattr(self, k, None)
        self.ns_fds = []
        self.fifo_fd = self.console_fd = -1


# ------------------------------------------------------------------------------ bridge

def bridge_main(ctx):
    """Runs in the first child. Never returns."""
    try:
        sc.set_dumpable(False)
        spec = ctx.spec
        lx = spec.linux
        ctx.chan.expect_go()
        # Late cgroup join (the runtime's own memory is not charged to the container): the
        # init joins the cgroup only after its setup (see _init). A new cgroup namespace
        # must be rooted at the container's cgroup, so the bridge joins, unshares it and
        # passes an fd of it (SCM_RIGHTS: no ptrace access to the non-dumpable bridge is
        # needed, which a user-namespaced init would lack) before the init mounts anything.
        cgns = lx.ns("cgroup")
        hold = ctx.cgjoin and cgns is not None and cgns.path is None
        if hold:
            import _socket  # now: its module is unreadable from inside a user namespace
        # 1. namespaces: join the ones given by path (user first), create the others
        joined = {t for t, _ in ctx.ns_fds}
        namespaces.join(ctx.ns_fds, ("user",))
        userns = lx.ns("user")
        if userns is not None and userns.path is None:
            sc.unshare(sc.CLONE_NEWUSER)
            ctx.chan.send("userns")                 # the runtime writes uid_map/gid_map
            ctx.chan.expect_go()
            become_root_in_userns()
        namespaces.join(ctx.ns_fds, joined - {"user"})
        flags = namespaces.new_flags(lx.namespaces, exclude=("user",))
        if hold:
            flags &= ~sc.CLONE_NEWCGROUP
            ctx.cgns = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)
        if flags:
            sc.unshare(flags)
        if lx.time_offsets and lx.ns("time") is not None and lx.ns("time").path is None:
            with open("/proc/self/timens_offsets", "w") as f:
                for clk, (s, ns) in lx.time_offsets.items():
                    f.write(f"{clk} {s} {ns}\n")
        pid = os.fork()
        if pid == 0:
            init_main(ctx)                          # never returns
        if hold:
            ctx.cgns[1].close()
            if ctx.cg_tasks is not None:
                enter_v1_tasks(ctx.cg_tasks)
            else:
                ctx.chan.send("cgjoin bridge")      # the runtime places us in the cgroup
                ctx.chan.expect_go()
            sc.unshare(sc.CLONE_NEWCGROUP)
        ctx.chan.send(f"pid {pid}")
        if hold:                                    # in flight, the fd outlives us
            send_fd(ctx.cgns[0], "/proc/self/ns/cgroup")
        os._exit(0)
    except BaseException as e:  # noqa: B036 - report everything, then die
        ctx.chan.error(e)
        os._exit(1)


def become_root_in_userns():
    try:
        sc.setgroups([])
    except OSError:
        pass
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)


# ------------------------------------------------------------------------------ init

def init_main(ctx):
    """pid 1 of the container (or the init in a joined pid namespace). Never returns."""
    try:
        _init(ctx)
    except BaseException as e:  # noqa: B036
        try:
            ctx.chan.error(e)
        except OSError:  # after "ready" the runtime is gone: the container's stderr
            try:
                msg = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
                os.write(2, f"ocirun: {msg}\n".encode())
            except OSError:
                pass
        finally:
            os._exit(127 if isinstance(e, (FileNotFoundError, PermissionError)) else 1)


def _init(ctx):
    spec = ctx.spec
    proc = spec.process
    lx = spec.linux
    os.setsid()     # its own session and process group (as runc): CRIU dumps the tree

    # 2. hooks that run in the runtime namespace once the namespaces exist
    # (first the cgroup: joined as late as possible, after the rootfs, unless a hook may look
    # at our cgroup or /sys/fs/cgroup is a bind of our own cgroup (no cgroup namespace))
    if ctx.cgns is not None:
        enter_cgroupns(ctx)
    late_join = ctx.cgjoin and not (
        ctx.hooks.prestart or ctx.hooks.create_runtime or ctx.hooks.create_container or
        (lx.ns("cgroup") is None and any(m.type == "cgroup" for m in spec.mounts)))
    if ctx.cgjoin and not late_join:
        join_cgroup(ctx)
    if ctx.hooks.prestart or ctx.hooks.create_runtime:
        ctx.chan.send("hooks")
        ctx.chan.expect_go()

    # 3. root filesystem and mounts; once they are in place and before pivot_root (host paths
    #    still visible): the program is loaded (Wasm) and createContainer hooks run
    def before_switch(rootfd):
        if ctx.executor is not None:
            ctx.executor.prepare(spec, rootfd)
        if ctx.hooks.create_container:
            from . import hooks
            hooks.run_all(ctx.hooks.create_container, hook_state(ctx, "created"),
                          "createContainer")
    ctx.rootfs.prepare(spec, no_pivot=ctx.no_pivot, before_switch=before_switch)
    # 4. after pivot_root: masked and read-only paths, read-only root, sysctl
    ctx.rootfs.finish(spec)
    if late_join:
        join_cgroup(ctx)

    # 5. hostname and domainname
    if spec.hostname is not None:
        sc.sethostname(spec.hostname)
    if spec.domainname is not None:
        sc.setdomainname(spec.domainname)
    # a new network namespace gets its loopback up, as with runc
    netns = lx.ns("network")
    if netns is not None and not netns.path:
        sc.loopback_up()

    # 6. terminal: a pty from the container's devpts, master to the console socket
    if ctx.terminal:
        from . import terminal  # imported by the runtime before forking
        terminal.setup_console(ctx.console_fd, proc.console_size, ctx.rootfs.console)
        ctx.console_fd = -1

    # 7. process attributes that survive execve
    if lx.personality:
        sc.personality(0x0008 if lx.personality == "LINUX32" else 0x0000)
    if proc.rlimits:
        rlimits.apply(proc.rlimits)
    if proc.user.umask is not None:
        os.umask(proc.user.umask)
    uid, gid = proc.user.uid, proc.user.gid
    if proc.user.username:
        u, g = _user.lookup(proc.user.username)
        uid, gid = u, (g if g is not None else gid)

    # 8. close every fd not on the allow-list, then chdir (CVE-2024-21626 order)
    close_fds(2 + ctx.preserve_fds, (ctx.fifo_fd, ctx.chan.up_w, ctx.chan.down_r))
    enter_cwd(proc.cwd)
    # a non-native executor (Wasm) resolved its program in prepare()
    exec_path = ctx.exec_path or (resolve_exec(proc, ctx) if ctx.executor is None else None)

    # 9. startContainer hooks, in the container, before the user's program (as runc: here,
    #    before the barrier, so a failing hook fails create with its message)
    if ctx.hooks.start_container:
        from . import hooks
        hooks.run_all(ctx.hooks.start_container, hook_state(ctx, "created"), "startContainer")

    # 10. ready: the runtime writes the pid file and returns; we wait for ``start``
    ctx.chan.send("ready")
    ctx.chan.close()
    fd = os.open(f"/proc/self/fd/{ctx.fifo_fd}", os.O_WRONLY | os.O_CLOEXEC)
    os.write(fd, b"0")
    os.close(fd)
    os.close(ctx.fifo_fd)

    # 11. LSM labels, user, capabilities, no_new_privs, seccomp (seccomp last)
    drop_privileges(proc, uid, gid, ctx.caps, ctx.seccomp_bpf, ctx.seccomp_load)

    # 12. exec
    if ctx.executor is not None:
        ctx.executor.run(spec)
    os.execve(exec_path, proc.args, env_dict(proc.env))


# ------------------------------------------------------------------------------ steps shared
# with exec (linux/exec.py): the last steps before execve of any process in a container

def close_fds(keep_top, own=()):
    """Close every fd above ``keep_top`` (stdio + preserved fds) except ``own``."""
    lo = keep_top + 1
    for fd in sorted(fd for fd in own if fd > keep_top):
        if fd > lo:
            sc.close_range(lo, fd - 1)
        lo = fd + 1
    sc.close_range(lo)


def enter_cwd(cwd):
    """chdir to the process's cwd, after the fds are closed; refuse a cwd outside the root."""
    try:
        os.chdir(cwd)
    except OSError as e:
        raise SetupError(f"chdir to cwd ({cwd!r}) set in config.json failed: "
                         f"{e.strerror.lower()}") from None
    if os.getcwd().startswith("(unreachable)"):
        raise SetupError(f"cwd {cwd!r} is outside the container's root")


def drop_privileges(proc, uid, gid, caps, seccomp_bpf=None, seccomp_load=None):
    """LSM labels (applied at execve), then user, capabilities, no_new_privs, seccomp —
    seccomp last. Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: then load it
    first, before the capabilities are dropped (as runc does; podman's default is
    noNewPrivileges=false). Signals go back to their defaults before the filter."""
    if proc.apparmor_profile or proc.selinux_label:
        from . import lsm  # imported by the runtime (lsm.validate) before forking
        if proc.apparmor_profile:
            lsm.write_exec_label("apparmor", proc.apparmor_profile)
        if proc.selinux_label:
            lsm.write_exec_label("selinux", proc.selinux_label)
    if seccomp_bpf is not None and not proc.no_new_privileges:
        seccomp_load(seccomp_bpf)
    caps.drop_bounding()
    if uid or gid or proc.user.additional_gids or os.getuid() or os.getgid():
        _user.switch(uid, gid, proc.user.additional_gids)
    else:
        try:
            sc.setgroups(proc.user.additional_gids)
        except OSError:
            pass
    caps.apply()
    if proc.no_new_privileges:
        sc.set_no_new_privs()
    # CPython ignores SIGPIPE/SIGXFSZ and they survive exec: back to defaults, before the
    # filter (after it every syscall we make is filtered)
    reset_signals()
    if seccomp_bpf is not None and proc.no_new_privileges:
        seccomp_load(seccomp_bpf)


def send_fd(sock, path):
    import _socket
    import sys
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        sock.sendmsg([b"1"], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS,
                               fd.to_bytes(4, sys.byteorder))])
    finally:
        os.close(fd)
        sock.close()


def enter_cgroupns(ctx):
    """Enter the cgroup namespace the bridge made inside the container's cgroup."""
    import _socket
    import sys
    mine, theirs = ctx.cgns[1], ctx.cgns[0]
    ctx.cgns = None
    theirs.close()
    try:
        _, anc, _, _ = mine.recvmsg(1, _socket.CMSG_SPACE(4))
    finally:
        mine.close()
    if not anc or anc[0][1] != _socket.SCM_RIGHTS:
        raise SetupError("cannot join the cgroup namespace: the bridge process exited")
    fd = int.from_bytes(anc[0][2][:4], sys.byteorder)
    try:
        sc.setns(fd, sc.CLONE_NEWCGROUP, "cgroup")
    finally:
        os.close(fd)


def join_cgroup(ctx):
    if ctx.cg_tasks is not None:                    # v1: by ourselves (process.py _fork_bridge)
        enter_v1_tasks(ctx.cg_tasks)
        for fd in ctx.cg_tasks:
            os.close(fd)
        ctx.cg_tasks = None
        return
    ctx.chan.send("cgjoin init")                    # the runtime writes our pid to cgroup.procs
    ctx.chan.expect_go()


def enter_v1_tasks(fds):
    """Move the calling (only) thread into each v1 hierarchy: "0" to its ``tasks`` fd."""
    for fd in fds:
        try:
            os.write(fd, b"0")
        except OSError as e:
            raise SetupError(f"join the container's cgroup: {e.strerror}") from None


def hook_state(ctx, status):
    spec = ctx.spec
    pid = ctx.chan.wait_pid()
    return jsonfast.dumps({"ociVersion": spec.oci_version, "id": ctx.cid, "pid": pid,
                           "status": status, "bundle": spec.bundle,
                           "annotations": spec.annotations})


def env_dict(env):
    out = {}
    for e in env:
        k, eq, v = e.partition("=")
        if eq and k:
            out[k] = v
    return out


SIGNALS = [s for s in range(1, signal.NSIG) if s not in (signal.SIGKILL, signal.SIGSTOP, 32, 33)]


def reset_signals():
    for s in SIGNALS:
        try:
            signal.signal(s, signal.SIG_DFL)
        except (OSError, ValueError):
            pass
    signal.pthread_sigmask(signal.SIG_SETMASK, ())


def resolve_exec(proc, ctx=None):
    """args[0] looked up as execve would see it inside the container (PATH from process.env)."""
    name = proc.args[0]
    if "/" in name:
        if not os.access(name, os.X_OK) or os.path.isdir(name):
            raise SetupError(f'exec: "{name}": stat {name}: no such file or directory'
                             if not os.path.exists(name) else
                             f'exec: "{name}": permission denied')
        return name
    path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    for e in proc.env:
        if e.startswith("PATH="):
            path = e[5:]
    for d in path.split(":"):
        p = os.path.join(d or ".", name)
        if os.access(p, os.X_OK) and not os.path.isdir(p):
            return p
    raise SetupError(f'exec: "{name}": executable file not found in $PATH')


__all__ = ["InitContext", "bridge_main", "init_main", "OciError"]
