"""The command table: each command's flags (runc's, flag for flag) and the library call."""
from .. import osfast as os
import sys

from ..errors import OciError
from .parser import Command, Flag, UsageError

def _create_flags():
    return [
        Flag("bundle|b", default=".", help="path to the root of the bundle directory"),
        Flag("pid-file", default=None, help="file to write the container init's pid to"),
        Flag("console-socket", default=None, help="AF_UNIX socket that receives the pty master"),
        Flag("pidfd-socket", default=None,
             help="AF_UNIX socket that receives a pidfd of the init"),
        Flag("no-pivot", "bool", False, help="do not use pivot_root (MS_MOVE + chroot instead)"),
        Flag("no-new-keyring", "bool", False, help="do not create a new session keyring"),
        Flag("preserve-fds", "int", 0, help="pass N additional fds (3..3+N-1) to the container"),
        Flag("best-effort", "bool", False,
             help="run even if the platform cannot enforce everything (warns what is dropped)"),
    ]


def _jsonout(obj, indent=True):
    from .. import jsonfast
    sys.stdout.write((jsonfast.dumps_indent(obj) if indent else jsonfast.dumps(obj)) + "\n")


def _send_pidfd(path, pid):
    import array
    import socket
    from ..linux import syscalls as sc
    fd = sc.pidfd_open(pid)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        s.sendmsg([b"pidfd"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))])
    finally:
        s.close()
        os.close(fd)


def do_create(ctx, v, pos):
    pid = ctx.rt.create(pos[0], v["bundle"], pid_file=v["pid_file"],
                        console_socket=v["console_socket"], no_pivot=v["no_pivot"],
                        preserve_fds=v["preserve_fds"], no_new_keyring=v["no_new_keyring"],
                        best_effort=v["best_effort"])
    if v["pidfd_socket"]:
        _send_pidfd(v["pidfd_socket"], pid)


def do_start(ctx, v, pos):
    ctx.rt.start(pos[0])


def do_run(ctx, v, pos):
    return ctx.rt.run(pos[0], v["bundle"], detach=v["detach"], keep=v["keep"],
                      no_subreaper=v["no_subreaper"], pid_file=v["pid_file"],
                      console_socket=v["console_socket"], no_pivot=v["no_pivot"],
                      preserve_fds=v["preserve_fds"], no_new_keyring=v["no_new_keyring"],
                      best_effort=v["best_effort"])


def do_state(ctx, v, pos):
    _jsonout(ctx.rt.state(pos[0]))


def do_kill(ctx, v, pos):
    sig = pos[1] if len(pos) > 1 else "TERM"
    ctx.rt.kill(pos[0], sig, all=v["all"])


def do_delete(ctx, v, pos):
    ctx.rt.delete(pos[0], force=v["force"])


def do_list(ctx, v, pos):
    states = ctx.rt.list()
    if v["quiet"]:
        for s in states:
            sys.stdout.write(s["id"] + "\n")
        return
    if v["format"] == "json":
        _jsonout(states, indent=False)
        return
    if v["format"] != "table":
        raise UsageError(f"invalid format option: {v['format']}")
    rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
    for s in states:
        rows.append((s["id"], str(s["pid"]), s["status"], s["bundle"], s["created"],
                     s.get("owner", "")))
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    for r in rows:
        sys.stdout.write("   ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() + "\n")


def do_ps(ctx, v, pos):
    pids = ctx.rt.ps(pos[0])
    if v["format"] == "json":
        _jsonout(pids, indent=False)
        return
    if v["format"] != "table":
        raise UsageError(f"invalid format option: {v['format']}")
    import subprocess
    args = pos[1:] or ["-ef"]
    out = subprocess.run(["ps", *args], capture_output=True, text=True).stdout.splitlines()
    if not out:
        return
    header = out[0].split()
    try:
        col = header.index("PID")
    except ValueError:
        raise OciError("couldn't find PID field in ps output") from None
    sys.stdout.write(out[0] + "\n")
    want = set(pids)
    for line in out[1:]:
        f = line.split()
        if len(f) > col and f[col].isdigit() and int(f[col]) in want:
            sys.stdout.write(line + "\n")


def do_spec(ctx, v, pos):
    from ..spec import default_spec
    bundle = v["bundle"] or "."
    path = os.path.join(bundle, "config.json")
    if os.path.exists(path):
        raise OciError("File config.json exists. Remove it first.")
    spec = default_spec(rootless=v["rootless"], uid=os.getuid(), gid=os.getgid())
    import json
    with open(path, "w") as f:
        json.dump(spec, f, indent="\t")
        f.write("\n")


def do_features(ctx, v, pos):
    if not sys.platform.startswith("linux"):
        _jsonout(ctx.rt.features())
        return
    from ..features import features
    _jsonout(features(criu=ctx.g.get("criu") or None))


def _criu_opts(ctx, v, swrk=None):
    from ..checkpoint import CheckpointOpts
    return CheckpointOpts(criu=ctx.g.get("criu") or None, swrk=swrk, **{
        k: v[k] for k in CheckpointOpts.__slots__ if k in v})


# exec, pause, resume, update and events live in their own modules, imported only when
# their command runs: the table itself must stay cheap for every other command
def do_exec(ctx, v, pos):
    from .cmd_exec import do_exec as run
    return run(ctx, v, pos)


def _resources(name):
    def run(ctx, v, pos):
        from . import cmd_resources
        return getattr(cmd_resources, name)(ctx, v, pos)
    return run


def do_checkpoint(ctx, v, pos):
    # criu starts before the runtime's modules are imported: its start-up overlaps them
    swrk = None
    if sys.platform.startswith("linux") and not v["lazy_pages"]:
        from ..criu_rpc import start_dump
        from .. import DEFAULT_ROOT
        swrk = start_dump(ctx.g.get("criu") or None, ctx.g["root"] or DEFAULT_ROOT, pos[0])
    try:
        ctx.rt.checkpoint(pos[0], _criu_opts(ctx, v, swrk))
    finally:
        if swrk is not None:
            swrk.close()    # checkpoint ends it; this is for a failure before that


def do_restore(ctx, v, pos):
    return ctx.rt.restore(pos[0], v["bundle"], _criu_opts(ctx, v), detach=v["detach"],
                          pid_file=v["pid_file"], console_socket=v["console_socket"],
                          no_pivot=v["no_pivot"], no_subreaper=v["no_subreaper"])


def _criu_flags():
    """What checkpoint and restore both take (runc's)."""
    return [
        Flag("tcp-established", "bool", False, help="allow open tcp connections"),
        Flag("ext-unix-sk", "bool", False, help="allow external unix sockets"),
        Flag("shell-job", "bool", False, help="allow shell jobs"),
        Flag("file-locks", "bool", False, help="handle file locks"),
        Flag("manage-cgroups-mode", default="", help="cgroups mode: soft|full|strict|ignore"),
        Flag("empty-ns", many=True, help="create a namespace, but don't restore its properties"),
        Flag("auto-dedup", "bool", False, help="enable auto deduplication of memory images"),
        Flag("lazy-pages", "bool", False, help="use lazy migration mechanism"),
    ]


def _checkpoint_flags():
    return [
        Flag("image-path", default="", help="path for saving criu image files"),
        Flag("work-path", default="", help="path for saving work files and logs"),
        Flag("parent-path", default="", help="path for previous criu image files (pre-dump)"),
        Flag("leave-running", "bool", False, help="leave the process running after checkpoint"),
        Flag("status-fd", "int", -1, help="criu writes \\0 to this FD once lazy-pages is ready"),
        Flag("page-server", default="", help="ADDRESS:PORT of the page server"),
        Flag("pre-dump", "bool", False, help="dump container's memory information only"),
    ] + _criu_flags()


def _restore_flags():
    return [
        Flag("image-path", default="", help="path to criu image files for restoring"),
        Flag("work-path", default="", help="path for saving work files and logs"),
        Flag("bundle|b", default=".", help="path to the root of the bundle directory"),
        Flag("detach|d", "bool", False, help="detach from the container's process"),
        Flag("pid-file", default=None, help="file to write the process id to"),
        Flag("no-subreaper", "bool", False, help="disable the use of the subreaper"),
        Flag("no-pivot", "bool", False, help="do not use pivot_root"),
        Flag("console-socket", default=None, help="AF_UNIX socket that receives the pty master"),
        Flag("lsm-profile", default="", help="LSM profile to be used during restore"),
        Flag("lsm-mount-context", default="", help="LSM mount context to be used during restore"),
    ] + _criu_flags()


def _update_flags():
    return [
        Flag("resources|r", default=None,
             help="path to a LinuxResources JSON file ('-' = stdin); other options are ignored"),
        Flag("blkio-weight", "int", 0, help="per cgroup weight, range is from 10 to 1000"),
        Flag("cpu-period", default=None, help="CPU CFS period (in usecs); 0: system default"),
        Flag("cpu-quota", default=None, help="CPU CFS hardcap limit (in usecs) within a period"),
        Flag("cpu-burst", default=None, help="CPU CFS burst limit (in usecs)"),
        Flag("cpu-share|cpu-shares", default=None,
             help="CPU shares (relative weight vs. other containers)"),
        Flag("cpu-rt-period", default=None, help="CPU realtime period (in usecs)"),
        Flag("cpu-rt-runtime", default=None, help="CPU realtime hardcap limit (in usecs)"),
        Flag("cpuset-cpus", default=None, help="CPU(s) to use"),
        Flag("cpuset-mems", default=None, help="memory node(s) to use"),
        Flag("cpu-idle", default=None, help="cgroup SCHED_IDLE: 0 default behaviour, 1 idle"),
        Flag("kernel-memory", default=None, help="(obsolete: ignored with a warning)"),
        Flag("kernel-memory-tcp", default=None, help="(obsolete: ignored with a warning)"),
        Flag("memory", default=None, help="memory limit (in bytes; 64m, 1g… accepted)"),
        Flag("memory-reservation", default=None, help="memory reservation or soft_limit"),
        Flag("memory-swap", default=None,
             help="total memory usage (memory + swap); '-1' for unlimited swap"),
        Flag("pids-limit", "int", 0, help="maximum number of pids allowed in the container"),
        Flag("l3-cache-schema", default=None, help="Intel RDT/CAT L3 cache schema"),
        Flag("mem-bw-schema", default=None, help="Intel RDT/MBA memory bandwidth schema"),
    ]
def _events_flags():
    return [
        Flag("interval", default="5s", help="set the stats collection interval"),
        Flag("stats", "bool", False, help="display the container's stats then exit"),
    ]

def _exec_flags():
    return [
        Flag("process|p", default=None, help="path to the process.json ('-' for stdin)"),
        Flag("tty|t", "bool", False, help="allocate a pseudo-TTY"),
        Flag("console-socket", default=None, help="AF_UNIX socket that receives the pty master"),
        Flag("pidfd-socket", default=None, help="AF_UNIX socket that receives a pidfd"),
        Flag("detach|d", "bool", False, help="detach from the container's process"),
        Flag("pid-file", default=None, help="file to write the process id to"),
        Flag("preserve-fds", "int", 0, help="pass N additional fds to the process"),
        Flag("cwd", default=None, help="current working directory in the container"),
        Flag("env|e", many=True, help="set environment variables"),
        Flag("user|u", default=None, help="UID (format: <uid>[:<gid>])"),
        Flag("additional-gids|g", many=True, help="additional gids"),
        Flag("cap|c", many=True, help="add a capability to the bounding set"),
        Flag("no-new-privs", "bool", False, help="set the no new privileges value"),
        Flag("apparmor", default=None, help="set the apparmor profile"),
        Flag("process-label", default=None, help="set the selinux label"),
        Flag("cgroup", many=True, help="run in a sub-cgroup ([controller:]path)"),
        Flag("ignore-paused", "bool", False, help="allow exec in a paused container"),
    ]
COMMANDS = {c.name: c for c in [
    Command("create", do_create, _create_flags, "<container-id>",
            "create a container (stopped at the exec fifo until start)", 1, 1),
    Command("start", do_start, [], "<container-id>", "start a created container", 1, 1),
    Command("run", do_run, lambda: _create_flags() + [
        Flag("detach|d", "bool", False, help="detach from the container's process"),
        Flag("keep", "bool", False, help="do not delete the container after it exits"),
        Flag("no-subreaper", "bool", False, help="disable the use of the subreaper"),
    ], "<container-id>", "create and start a container", 1, 1),
    Command("state", do_state, [], "<container-id>", "output the state of a container", 1, 1),
    Command("kill", do_kill, [Flag("all|a", "bool", False, help="signal all processes")],
            "<container-id> [signal]", "send a signal to the container's init (default TERM)",
            1, 2),
    Command("delete", do_delete, [Flag("force|f", "bool", False,
                                       help="kill and delete a running container")],
            "<container-id>", "delete a container and its resources", 1, 1),
    Command("list", do_list, [Flag("format|f", default="table", help="table or json"),
                              Flag("quiet|q", "bool", False, help="display only ids")],
            "", "list containers", 0, 0),
    Command("ps", do_ps, [Flag("format|f", default="table", help="table or json")],
            "<container-id> [ps options]", "list the processes of a container", 1, -1),
    Command("exec", do_exec, _exec_flags, "<container-id> [command...]",
            "execute a new process inside a container", 1, -1, stop_at_positional=True),
    Command("pause", _resources("do_pause"), [], "<container-id>", "freeze all processes", 1, 1),
    Command("resume", _resources("do_resume"), [], "<container-id>", "thaw all processes", 1, 1),
    Command("update", _resources("do_update"), _update_flags, "<container-id>",
            "update a container's resource limits", 1, 1),
    Command("events", _resources("do_events"), _events_flags, "<container-id>",
            "container events (OOM) and stats", 1, 1),
    Command("checkpoint", do_checkpoint, _checkpoint_flags, "<container-id>",
            "checkpoint a running container (CRIU)", 1, 1),
    Command("restore", do_restore, _restore_flags, "<container-id>",
            "restore a container from a checkpoint (CRIU)", 1, 1),
    Command("spec", do_spec, [Flag("bundle|b", default=None, help="bundle directory"),
                              Flag("rootless", "bool", False, help="spec for rootless")],
            "", "create a new specification file (config.json)", 0, 0),
    Command("features", do_features, [], "", "show the enabled features", 0, 0),
]}
