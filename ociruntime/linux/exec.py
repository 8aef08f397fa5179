"""``ocirun exec``: a new process joins a running container. Read top to bottom.

Processes: the runtime (``ocirun exec``) forks once; the child joins the container and execs
the user's program, so it is the runtime's own child (foreground exec waits for it) and, once
the runtime exits (``--detach``), the caller's subreaper's (the shim, conmon).

  runtime, before the fork (host view, nothing of the container touched yet):
    - opens every namespace of the container's init that differs from ours (/proc/PID/ns/*),
      checking with a pidfd that PID is still the init the state recorded;
    - joins the init's pid and time namespaces *for its children only* (setns on those two
      never moves the caller), so the forked child is born inside them;
    - opens the cgroups to join, the init's root, the console socket; prepares the
      seccomp BPF and the capability plan (everything the child needs, so it only makes
      syscalls after it entered the mount namespace);
  child (non-dumpable from its first instruction, CVE-2016-9962):
    1. cgroup: born in the container's cgroup2 directory (clone3 CLONE_INTO_CGROUP), moves
       itself into each v1 hierarchy (``tasks``) (or the ``--cgroup`` sub-cgroups);
    2. namespaces: user first (it grants the capabilities for the rest), then ipc, uts, net,
       cgroup, and mount last; then the init's root (``chroot``) if the mount namespace's
       root is not it (a ``--no-pivot`` container);
    3. terminal: new session, a pty from the container's devpts, master sent to the console
       socket (or to the runtime, which relays it);
    4. rlimits, umask, user lookup in the container's /etc/passwd and /etc/group;
    5. every fd above stdio + preserved fds closed (but the error pipe, close-on-exec), cwd;
    6. LSM labels, seccomp, capabilities, user, no_new_privs (init.drop_privileges);
    7. execve. Until then errors go up the close-on-exec error pipe; EOF there = exec'd.

No host interpreter is reachable from inside: the child is non-dumpable until execve, and
the runtime process itself never enters the container's pid namespace."""
from .. import osfast as os

from ..errors import SetupError, error_line
from . import syscalls as sc
from .init import close_fds, drop_privileges, enter_cwd, enter_v1_tasks, env_dict, resolve_exec
from .namespaces import FLAGS, PROC_NAMES

# the child joins these, in this order (pid and time are joined by the runtime for children)
CHILD_ORDER = ("user", "ipc", "uts", "network", "cgroup", "mount")


class ExecContext:
    """Everything the runtime prepared for the child; read-only after the fork."""
    __slots__ = ("proc", "ns_fds", "root_fd", "cgroup_fds", "cgroup2_fd", "cgroup2_procs",
                 "caps", "seccomp_bpf",
                 "seccomp_load", "preserve_fds", "console_fd", "err_w", "uid", "gid",
                 "user_name", "group_name")

    def __init__(self):
        for k in self.__slots__:
            setattr(self, k, None)
        self.ns_fds = []
        self.cgroup_fds = []
        self.root_fd = self.console_fd = self.err_w = self.cgroup2_fd = -1
        self.cgroup2_procs = False


# ------------------------------------------------------------------------------ runtime side

def open_namespaces(pid):
    """[(type, fd)] of the init's namespaces that differ from ours, plus the pidfd that proves
    ``pid`` stayed the same process while we opened them (the caller checks it after)."""
    out = []
    try:
        for t in CHILD_ORDER + ("pid", "time"):
            name = PROC_NAMES[t]
            try:
                theirs = os.stat(f"/proc/{pid}/ns/{name}")
            except FileNotFoundError:
                if t == "time":  # kernel without time namespaces
                    continue
                raise
            ours = os.stat(f"/proc/self/ns/{name}")
            if (theirs.st_dev, theirs.st_ino) == (ours.st_dev, ours.st_ino):
                continue
            out.append((t, os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC)))
    except OSError as e:
        for _, fd in out:
            os.close(fd)
        raise SetupError(f"open namespaces of the container init {pid}: {e.strerror}") from None
    return out


def join_for_children(ns_fds):
    """pid and time namespaces: setns sets them for the caller's future children only.
    Returns what ``restore_for_children`` needs to put the caller back (an API caller keeps
    forking after exec: its children must not land in the container)."""
    saved = []
    try:
        for t, fd in ns_fds:
            if t in ("pid", "time"):
                saved.append((t, os.open(f"/proc/self/ns/{PROC_NAMES[t]}",
                                         os.O_RDONLY | os.O_CLOEXEC)))
                sc.setns(fd, FLAGS[t], what=f"setns {t}")
    except BaseException:
        restore_for_children(saved)
        raise
    return saved


def restore_for_children(saved):
    for t, fd in saved:
        try:
            sc.setns(fd, FLAGS[t], what=f"setns {t}")
        finally:
            os.close(fd)


def state_cgroup_dirs(d):
    """{key: directory} from the cgroup manager's state (``Manager.to_state()``: v1/hybrid
    ``paths``, v2 ``path``), read directly: exec does not import the cgroup managers."""
    if d.get("mode") == "v2":
        return {"": d["path"]}
    return dict(d["paths"])


def cgroup_dirs(dirs, sub=None):
    """{key: directory} to join: the container's cgroup in each hierarchy, or a sub-cgroup.
    ``sub``: runc's ``--cgroup`` values, ``path`` (every hierarchy) or ``ctrl[,ctrl]:path``;
    ``dirs``: {controller or "" (the cgroup2 hierarchy): directory}. A directory shared by
    co-mounted controllers appears once."""
    chosen = dict(dirs)
    for s in sub or ():
        ctrls, sep, path = s.rpartition(":")
        if not path:
            raise SetupError(f"invalid --cgroup argument: {s!r}")
        path = path.strip("/")
        if ".." in path.split("/"):
            raise SetupError(f"invalid --cgroup path {path!r}: must stay inside the container's "
                             "cgroup")
        keys = ctrls.split(",") if sep else list(dirs)
        for k in keys:
            if k not in dirs:
                raise SetupError(f"--cgroup: controller {k!r} is not in the container's "
                                 "cgroups")
            chosen[k] = dirs[k].rstrip("/") + "/" + path
    out, seen = {}, set()
    for k, d in chosen.items():
        if d in seen:
            continue
        seen.add(d)
        if not os.path.isdir(d):
            raise SetupError(f"cgroup {d} does not exist")
        out[k] = d
    return out


def open_cgroups(chosen, min_fd=3):
    """(fd of the cgroup2 directory or -1, [fds of v1 ``tasks`` files]).
    The child is born in the cgroup2 directory (clone3 CLONE_INTO_CGROUP) and moves itself,
    its only thread, into each v1 hierarchy by writing "0" to ``tasks``: neither takes the
    kernel's global threadgroup lock that a cgroup.procs write does (~13 ms here)."""
    above = sc.above
    v2, tasks = -1, []
    try:
        for k, d in chosen.items():
            if k == "":
                v2 = above(os.open(d, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC), min_fd)
            else:
                tasks.append(above(os.open(d + "/tasks", os.O_WRONLY | os.O_CLOEXEC), min_fd))
    except OSError as e:
        for fd in tasks + ([v2] if v2 >= 0 else []):
            os.close(fd)
        raise SetupError(f"open cgroup {e.filename}: {e.strerror}") from None
    return v2, tasks


def spawn(ctx):
    """Fork the child; returns its pid once it exec'd (the error pipe hit EOF), or raises
    SetupError with its message (after reaping it)."""
    r, w = os.pipe()
    ctx.err_w = w
    child = -1
    if ctx.cgroup2_fd >= 0:
        try:
            child = sc.fork_into_cgroup(ctx.cgroup2_fd)
        except OSError:      # no clone3 / CLONE_INTO_CGROUP here: the child writes procs
            ctx.cgroup2_procs = True
    if child < 0:
        child = os.fork()
    if child == 0:
        os.close(r)
        child_main(ctx)  # never returns
    os.close(w)
    try:
        msg = b""
        while True:
            chunk = os.read(r, 4096)
            if not chunk:
                break
            msg += chunk
    finally:
        os.close(r)
    if msg:
        _reap(child)
        raise SetupError(msg.decode(errors="replace"))
    return child


def _reap(pid):
    while True:
        try:
            os.waitpid(pid, 0)
            return
        except InterruptedError:
            continue
        except ChildProcessError:
            return


# ------------------------------------------------------------------------------ child side

def child_main(ctx):
    """The forked child: join, set up, exec. Never returns."""
    try:
        sc.set_dumpable(False)
        _child(ctx)
    except BaseException as e:  # noqa: B036 - report everything, then die
        msg = error_line(e)
        try:
            os.write(ctx.err_w, msg.encode(errors="replace") or b"exec failed")
        except OSError:
            pass
        os._exit(127 if isinstance(e, (FileNotFoundError, PermissionError)) else 1)


def _child(ctx):
    proc = ctx.proc

    # 1. cgroup, before anything else is allocated (cgroup2: born there by clone3, unless
    #    the kernel could not; v1: this thread, the only one, into each hierarchy)
    if ctx.cgroup2_procs:
        try:
            fd = os.open("cgroup.procs", os.O_WRONLY | os.O_CLOEXEC, dir_fd=ctx.cgroup2_fd)
        except OSError as e:
            raise SetupError(f"join the container's cgroup: {e.strerror}") from None
        enter_v1_tasks([fd])    # "0": the calling process, as for v1's tasks
        os.close(fd)
    enter_v1_tasks(ctx.cgroup_fds)
    for fd in ctx.cgroup_fds:
        os.close(fd)
    if ctx.cgroup2_fd >= 0:
        os.close(ctx.cgroup2_fd)

    # 2. namespaces, user first; then the container's root
    for t in CHILD_ORDER:
        for typ, fd in ctx.ns_fds:
            if typ == t:
                sc.setns(fd, FLAGS[t], what=f"setns {t}")
    for _, fd in ctx.ns_fds:
        os.close(fd)
    if ctx.root_fd >= 0:
        rst, st = os.fstat(ctx.root_fd), os.stat("/")
        if (rst.st_dev, rst.st_ino) != (st.st_dev, st.st_ino):
            os.fchdir(ctx.root_fd)
            os.chroot(".")
        os.close(ctx.root_fd)
        os.chdir("/")

    # 3. terminal: a pty from the container's devpts; the master leaves through the socket
    if proc.terminal:
        from . import terminal  # imported by the runtime before forking
        os.setsid()
        terminal.setup_console(ctx.console_fd, proc.console_size, None)

    # 4. rlimits, umask, the user (names looked up in the container's files)
    if proc.rlimits:
        from . import rlimits
        rlimits.apply(proc.rlimits)
    if proc.user.umask is not None:
        os.umask(proc.user.umask)
    uid, gid = ctx.uid, ctx.gid               # None: not given on the command line
    if ctx.user_name is not None or ctx.group_name is not None:
        from . import user as _user
        if ctx.user_name is not None:
            uid, primary = _user.lookup(ctx.user_name)
            if gid is None and ctx.group_name is None:
                gid = primary
        if ctx.group_name is not None:
            gid = _user.lookup_group(ctx.group_name)
    uid = proc.user.uid if uid is None else uid
    gid = proc.user.gid if gid is None else gid

    # 5. fds: stdio, preserved fds and the error pipe (close-on-exec) survive; then cwd
    close_fds(2 + (ctx.preserve_fds or 0), (ctx.err_w,))
    for fd in range(3, 3 + (ctx.preserve_fds or 0)):
        os.set_inheritable(fd, True)
    enter_cwd(proc.cwd)
    path = resolve_exec(proc)

    # 6. LSM labels, seccomp, capabilities, user, no_new_privs
    drop_privileges(proc, uid, gid, ctx.caps, ctx.seccomp_bpf, ctx.seccomp_load)

    # 7. exec
    os.execve(path, proc.args, env_dict(proc.env))
