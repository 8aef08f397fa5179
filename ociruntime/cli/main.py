"""``ocirun``: global flags, then the command, then its flags, the container ID last.
Exit status 0 on success, 1 on any failure; errors are one line on stderr, or JSON lines in
``--log`` with ``--log-format json`` (the shim reports the last ``error`` line)."""
from .. import osfast as os
import sys

from .. import __version__
from ..errors import OciError
from .parser import Flag, UsageError, parse_flags, usage

GLOBAL = [
    Flag("root", default=None, help="root directory for storage of container state"),
    Flag("log", default="", help="log file (default stderr)"),
    Flag("log-format", default="text", help="log format: text or json"),
    Flag("debug", "bool", False, help="debug output (tracebacks) in the log"),
    Flag("systemd-cgroup", "bool", False, help="use the systemd cgroup driver"),
    Flag("rootless", default="auto", help="ignore cgroup permission errors (true|false|auto)"),
    Flag("criu", default="", help="path to the criu binary"),
    Flag("version|v", "bool", False, help="print the version"),
]


class Ctx:
    def __init__(self, g):
        self.g = g
        self._rt = None

    @property
    def rt(self):
        if self._rt is None:
            from ..state import DEFAULT_ROOT
            if sys.platform.startswith("linux"):
                from ..api import Runtime
                self._rt = Runtime(root=self.g["root"] or DEFAULT_ROOT,
                                   systemd_cgroup=self.g["systemd_cgroup"],
                                   debug=self.g["debug"])
            else:  # macOS, Windows: the same surface over the platform seam
                from ..platforms.runtime import PlatformRuntime
                self._rt = PlatformRuntime(root=self.g["root"] or DEFAULT_ROOT,
                                           warn=self.warn)
        return self._rt

    def warn(self, msg):
        """A warning goes to --log when there is one, and always to stderr."""
        log_line(self.g, "warning", msg)
        sys.stderr.write(f"ocirun: warning: {msg}\n")


def log_line(g, level, msg):
    """Write one log line to --log (json or logrus-like text); errors also go to stderr, log
    file or not, as runc does: conmon relays the runtime's stderr to podman, which otherwise
    parses the whole --log file as one JSON object (fails from the second error on)."""
    path = g.get("log") if g else ""
    if path:
        from ..state import rfc3339nano
        ts = rfc3339nano()[:-4] + "Z"
        if (g.get("log_format") or "text") == "json":
            from .. import jsonfast
            line = jsonfast.dumps({"level": level, "msg": msg, "time": ts})
        else:
            esc = msg.replace("\\", "\\\\").replace('"', '\\"')
            line = f'time="{ts}" level={level} msg="{esc}"'
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
            os.write(fd, (line + "\n").encode())
            os.close(fd)
        except OSError:
            pass
    if level == "error":
        sys.stderr.write(f"ocirun: {msg}\n")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    g = None
    try:
        g, rest, helped = parse_flags(GLOBAL, argv, stop_at_positional=True)
        if g["log_format"] not in ("text", "json"):
            raise UsageError(f"invalid log-format: {g['log_format']}")
        if g["version"]:
            return cmd_version(g)
        from .commands import COMMANDS
        if helped or not rest:
            sys.stdout.write(top_usage(COMMANDS))
            return 0 if helped else 1
        name, args = rest[0], rest[1:]
        cmd = COMMANDS.get(name)
        if cmd is None:
            raise UsageError(f"no such command: {name}")
        vals, pos, helped = parse_flags(cmd.flags, args, cmd.stop_at_positional)
        if helped:
            sys.stdout.write(usage("ocirun", cmd))
            return 0
        if len(pos) < cmd.min_args or (cmd.max_args >= 0 and len(pos) > cmd.max_args):
            if cmd.min_args == 1 and not pos:
                raise UsageError(f'"ocirun {name}" requires exactly 1 argument(s)'
                                 if cmd.max_args == 1 else f'"ocirun {name}" requires a '
                                 'container id')
            raise UsageError(f'"ocirun {name}" takes {cmd.args or "no arguments"}; '
                             f"got {len(pos)} argument(s)")
        rc = cmd.func(Ctx(g), vals, pos)
        return rc or 0
    except OciError as e:
        log_line(g or {}, "error", str(e))
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError as e:
        if g and g.get("debug"):
            import traceback
            traceback.print_exc()
        log_line(g or {}, "error", f"broken pipe: {e.filename or 'output'}")
        return 1
    except Exception as e:  # a bug: one line for users, traceback with --debug
        if g and g.get("debug"):
            import traceback
            traceback.print_exc()
        log_line(g or {}, "error", f"internal error: {type(e).__name__}: {e}")
        return 1


def entry():
    """The console script: ``main()``, then flush stdio and leave with ``os._exit``. Skipping
    the interpreter's teardown (module and GC clean-up, ~20% of a short command's
    instructions) is safe here: nothing registers atexit handlers, starts threads or leaves
    buffered files open; stdout and stderr are flushed first.

    The cycle collector is off (the launcher turns it off before the first import): a
    command lives milliseconds and makes no garbage cycles worth collecting, while start-up
    allocates enough to trigger ~1 ms of collections (8% of ``exec``). The long-lived loops
    (``events``, the pty relay, a Wasm container) turn it back on."""
    import gc
    gc.disable()
    rc = main()
    try:
        sys.stdout.flush()
    except OSError:   # as the interpreter's own exit does on a failed final flush
        rc = rc or 120
    try:
        sys.stderr.flush()
    except OSError:
        pass
    os._exit(rc)


def cmd_version(g):
    commit = "unknown"
    try:
        here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        with open(os.path.join(here, ".git", "HEAD")) as f:
            ref = f.read().strip()
        if ref.startswith("ref: "):
            with open(os.path.join(here, ".git", ref[5:])) as f:
                commit = f.read().strip()[:12]
        else:
            commit = ref[:12]
    except OSError:
        pass
    sys.stdout.write(f"ocirun version {__version__}\ncommit: {commit}\nspec: 1.3.0\n"
                     f"python: {sys.version.split()[0]}\n")
    if g.get("debug"):
        try:
            from ..criu import criu_version, find_criu
            p = find_criu(g.get("criu") or None)
            sys.stdout.write(f"criu: {p} {'.'.join(map(str, criu_version(p)))}\n")
        except Exception as e:  # noqa: BLE001 - informational
            sys.stdout.write(f"criu: unavailable ({e})\n")
    return 0


def top_usage(commands):
    lines = ["usage: ocirun [global options] command [command options] [arguments...]", "",
             "ocirun: an OCI container runtime (runc-compatible)", "", "commands:"]
    for name, c in commands.items():
        lines.append(f"  {name:<11}{c.help.splitlines()[0] if c.help else ''}")
    lines += ["", "global options:"]
    for f in GLOBAL:
        lines.append(f"  --{f.names[0]:<16}{f.help}")
    return "\n".join(lines) + "\n"
