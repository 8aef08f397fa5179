"""The create protocol, runtime side: prepare everything, fork the bridge, answer its messages
(place it in the cgroup, write id maps, run createRuntime hooks), record the init's pid, and
return once the init is blocked on the exec fifo.

Messages are single lines over two pipes: up (children → runtime) and down (runtime →
children): ``go``, ``userns``, ``cgjoin bridge|init``, ``hooks``, ``pid N``, ``ready``,
``error MSG``. ``cgjoin``: write that process's pid to the cgroup, then ``go`` (the init
joins late, so the runtime's pages it copies during setup are not charged to the container).
"""
from .. import osfast as os
import _signal as signal
import time

from ..errors import SetupError, error_line


class Channel:
    __slots__ = ("up_r", "up_w", "down_r", "down_w", "buf", "pid")

    def __init__(self, min_fd=3):
        from .syscalls import above   # create only: delete and kill use this module too
        self.up_r, self.up_w = (above(fd, min_fd) for fd in os.pipe())
        self.down_r, self.down_w = (above(fd, min_fd) for fd in os.pipe())
        self.buf = b""
        self.pid = 0

    # child side
    def send(self, msg):
        os.write(self.up_w, msg.encode() + b"\n")

    def error(self, e):
        self.send("error " + error_line(e))

    def expect_go(self):
        while True:
            line = self._readline(self.down_r)
            if line is None:
                os._exit(1)  # the runtime died
            if line.startswith("pid "):
                self.pid = int(line[4:])
                continue
            if line == "go":
                return

    def wait_pid(self):
        """The init's pid in the runtime's pid namespace (the runtime sends it down)."""
        while not self.pid:
            line = self._readline(self.down_r)
            if line is None:
                os._exit(1)
            if line.startswith("pid "):
                self.pid = int(line[4:])
        return self.pid

    def close(self):
        for fd in (self.up_w, self.down_r):
            try:
                os.close(fd)
            except OSError:
                pass

    # runtime side
    def go(self):
        os.write(self.down_w, b"go\n")

    def recv(self):
        return self._readline(self.up_r)

    def parent_close_child_ends(self):
        os.close(self.up_w)
        os.close(self.down_r)

    def _readline(self, fd):
        while b"\n" not in self.buf:
            chunk = os.read(fd, 4096)
            if not chunk:
                return None
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode()


def kill_and_reap(pid, start_time=None):
    """SIGKILL a process that is not our child and wait until it is gone (bounded)."""
    from ..state import proc_stat
    st = proc_stat(pid)
    if st is None or (start_time is not None and st[1] != start_time):
        return
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    for _ in range(400):
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        st = proc_stat(pid)
        if st is None or st[0] in ("Z", "X"):
            return
        time.sleep(0.005)


def warm_cgroup_attach():
    """Pay the kernel's cgroup-attach wait early, off the critical path. After a quiet spell
    the first write to any ``cgroup.procs`` waits for an RCU grace period (the global
    threadgroup rwsem switches to its slow mode: 6-15 ms here); writes shortly after it are
    fast. Re-writing the runtime's own pid into the cgroup it is already in (checked in
    that cgroup's ``cgroup.procs`` first) moves nothing but takes that wait now, while the
    bridge sets up namespaces, instead of when the bridge joins. Best effort: errors are
    ignored."""
    me = str(os.getpid()).encode()
    try:
        with open("/proc/self/cgroup", "rb") as f:
            lines = f.read().splitlines()
    except OSError:
        return
    for line in lines:
        hid, ctrls, path = line.split(b":", 2)
        if hid == b"0":
            mounts = (b"/sys/fs/cgroup/unified", b"/sys/fs/cgroup")
        else:
            mounts = (b"/sys/fs/cgroup/" + ctrls.split(b",")[0].replace(b"name=", b""),)
        for m in mounts:
            procs = m + path.rstrip(b"/") + b"/cgroup.procs"
            try:
                with open(procs, "rb") as f:
                    if me not in f.read().split():
                        continue
                fd = os.open(procs, os.O_WRONLY | os.O_CLOEXEC)
                try:
                    os.write(fd, me)
                finally:
                    os.close(fd)
                return
            except OSError:
                continue


def _fork_bridge(ctx, cgroup):
    """Fork the bridge. Returns its pid (0 in the child) and whether the runtime takes part
    in the cgroup joins ("cgjoin" messages, cgroup.procs writes).

    cgroup v1/hybrid: the bridge and the init join by themselves, writing "0" to the v1
    hierarchies' ``tasks`` files the runtime opened for them (``ctx.cg_tasks``): the one
    migration the kernel does without its threadgroup lock, whose first use after a quiet
    spell waits for an RCU grace period (6-25 ms here, a third of a create; runc pays it).
    The unified cgroup2 directory of a hybrid host (no ``tasks`` there) is joined by birth:
    the bridge is forked into it (clone3 CLONE_INTO_CGROUP) and the init, its child,
    inherits it; it holds no controller that charges the set-up (hugetlb, misc), so the late
    join of the v1 controllers (memory...) stands. Pure cgroup v2, or a kernel without
    CLONE_INTO_CGROUP: the runtime writes cgroup.procs, and warm_cgroup_attach() takes the
    wait early."""
    open_tasks = getattr(cgroup, "open_tasks", None)
    if open_tasks is None:
        return os.fork(), True
    from . import syscalls as sc
    uni = cgroup.unified_dir()
    ufd = -1
    if uni is not None:
        try:
            ufd = os.open(uni, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:      # cgroup.add reports it
            return os.fork(), True
    min_fd = 3 + (ctx.preserve_fds or 0)
    try:
        ctx.cg_tasks = [sc.above(fd, min_fd) for fd in open_tasks()]
        if ufd < 0:
            pid = os.fork()
        else:
            try:
                pid = sc.fork_into_cgroup(ufd)
            except OSError:  # no clone3 / CLONE_INTO_CGROUP here: the runtime joins
                for fd in ctx.cg_tasks:
                    os.close(fd)
                ctx.cg_tasks = None
                return os.fork(), True
        if pid != 0:
            for fd in ctx.cg_tasks:
                os.close(fd)     # the children hold theirs
        return pid, False
    finally:
        if ufd >= 0:
            os.close(ufd)


def spawn_init(ctx, cgroup=None, on_hooks=None):
    """Fork the bridge and drive the protocol. Returns the init's pid (host pid namespace) once
    it is ready; raises SetupError with the init's message on failure (after killing it)."""
    from .init import bridge_main
    chan = ctx.chan
    bridge, runtime_joins = _fork_bridge(ctx, cgroup) if cgroup is not None else (os.fork(),
                                                                                  False)
    if bridge == 0:
        os.close(chan.up_r)
        os.close(chan.down_w)
        bridge_main(ctx)  # never returns
    chan.parent_close_child_ends()
    init_pid = reap = 0
    # The init and the bridge write to the same pipe: the init's "cgjoin init" and "hooks"
    # can arrive before the bridge's "pid N", and both need that pid: they wait here and are
    # handled, in arrival order, once it is known.
    deferred = []
    try:
        chan.go()
        if cgroup is not None and runtime_joins:
            warm_cgroup_attach()    # overlaps the bridge's namespace set-up
        while True:
            msg = deferred.pop(0) if init_pid and deferred else chan.recv()
            if msg is None:
                raise SetupError("container init exited before it was ready")
            if not init_pid and msg in ("cgjoin init", "hooks"):
                deferred.append(msg)
            elif msg == "cgjoin bridge":    # the bridge holds the new cgroup namespace
                cgroup.add(bridge)
                chan.go()
            elif msg == "cgjoin init":      # late join, after the init's setup
                cgroup.add(init_pid)
                chan.go()
            elif msg == "userns":
                from .namespaces import write_id_maps
                write_id_maps(bridge, ctx.spec.linux.uid_mappings, ctx.spec.linux.gid_mappings)
                chan.go()
            elif msg.startswith("pid "):
                init_pid = int(msg[4:])
                try:  # only an init with hooks reads it; one that is already done has closed
                    os.write(chan.down_w, f"pid {init_pid}\n".encode())
                except BrokenPipeError:
                    pass
                reap, bridge = bridge, 0  # reaped once the init is ready: overlaps its work
                if ctx.spec.process.oom_score_adj is not None:
                    with open(f"/proc/{init_pid}/oom_score_adj", "w") as f:
                        f.write(str(ctx.spec.process.oom_score_adj))
                if on_hooks is not None:
                    on_hooks("pid", init_pid)
            elif msg == "hooks":
                on_hooks("hooks", init_pid)
                chan.go()
            elif msg == "ready":
                try:
                    os.waitpid(reap, 0)
                except ChildProcessError:
                    pass
                return init_pid
            elif msg.startswith("error "):
                raise SetupError(msg[6:])
            else:
                raise SetupError(f"unexpected message from init: {msg!r}")
    except BaseException:
        if bridge:
            try:
                os.kill(bridge, signal.SIGKILL)
                os.waitpid(bridge, 0)
            except OSError:
                pass
        if init_pid:
            kill_and_reap(init_pid)
        if reap:
            try:
                os.waitpid(reap, 0)
            except ChildProcessError:
                pass
        raise
    finally:
        for fd in (chan.up_r, chan.down_w):
            try:
                os.close(fd)
            except OSError:
                pass
