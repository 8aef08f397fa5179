"""The platform seam: what every backend (Linux, macOS, Windows) implements.

A backend realizes one container from a bundle. The runtime calls, in order::

    plan = platform.prepare(config, bundle, state_dir)   # pure: parse, decide, no side effects
    enforce(plan, best_effort, warn)                       # refuse or warn about plan.dropped
    pid = platform.create(cid, plan, state_dir)            # process exists, user code not run yet
    platform.start(state_dir)                              # user code runs
    platform.state(state_dir) -> Status                    # created | running | stopped
    platform.kill(state_dir, sig, all=False)
    platform.wait(state_dir, timeout) -> exit status | None
    platform.delete(state_dir, force=False)

``state_dir`` is the container's directory under ``--root`` (``<root>/<id>``), owned by
``ociruntime.state``; a backend keeps its own files there (``platform.json`` and whatever it
needs) and removes them in ``delete``. ``features()`` says what the backend enforces, so
nobody has to guess: a config asking for anything else lands in ``plan.dropped`` and is
refused unless the user asked for best effort.
"""

CREATED, RUNNING, STOPPED = "created", "running", "stopped"
BEST_EFFORT_ANNOTATION = "run.oci.best-effort"


class Plan:
    """What a backend will do for one config. ``dropped`` lists, one string each, what the
    config asks for that this platform cannot enforce, each naming its JSON path
    (``linux.seccomp: no seccomp on darwin``). ``data`` is backend-specific."""

    __slots__ = ("platform", "dropped", "data")

    def __init__(self, platform, data=None, dropped=None):
        self.platform = platform
        self.data = data
        self.dropped = list(dropped or [])


class Status:
    __slots__ = ("status", "pid", "exit_code")

    def __init__(self, status, pid=0, exit_code=None):
        self.status = status
        self.pid = pid
        self.exit_code = exit_code

    def __repr__(self):
        return f"Status({self.status!r}, pid={self.pid}, exit_code={self.exit_code})"


class Platform:
    """One backend. Subclasses override every method; none keeps state in the object
    (each ``ocirun`` call is a fresh process), everything lives in ``state_dir``."""

    name = "abstract"

    def features(self) -> dict:
        """The runtime-spec features document plus ``platform``: ``{"os": name,
        "enforced": {...}, "approximated": {...}, "notEnforced": [...]}``."""
        raise NotImplementedError

    def prepare(self, config: dict, bundle: str, state_dir: str) -> Plan:
        """Parse and decide, without side effects. Raises ConfigError (with the JSON path)
        for a malformed config and Unsupported for what can never run here."""
        raise NotImplementedError

    def create(self, cid: str, plan: Plan, state_dir: str, stdio=None) -> int:
        """Make the container process without running user code; return its pid.
        ``stdio``: None (inherit) or a tuple of three paths (stdin, stdout, stderr)."""
        raise NotImplementedError

    def start(self, state_dir: str) -> None:
        raise NotImplementedError

    def state(self, state_dir: str) -> Status:
        raise NotImplementedError

    def kill(self, state_dir: str, sig: int, all: bool = False) -> None:
        raise NotImplementedError

    def wait(self, state_dir: str, timeout: float | None = None) -> int | None:
        """Block until the container process has exited; its exit status (128+signal when
        killed) if this backend can know it, else None. TimeoutError after ``timeout``."""
        raise NotImplementedError

    def delete(self, state_dir: str, force: bool = False) -> None:
        raise NotImplementedError


def best_effort_requested(config: dict, flag: bool = False) -> bool:
    """``--best-effort`` or the annotation ``run.oci.best-effort: "true"``."""
    if flag:
        return True
    ann = config.get("annotations") if isinstance(config, dict) else None
    return isinstance(ann, dict) and ann.get(BEST_EFFORT_ANNOTATION) == "true"


def enforce(plan: Plan, best_effort: bool, warn=None) -> None:
    """Refuse a plan that drops anything, unless best effort was asked for: then ``warn``
    (a callable taking one line; default: stderr) gets the list of what was dropped."""
    if not plan.dropped:
        return
    what = "; ".join(plan.dropped)
    if not best_effort:
        from ..errors import Unsupported
        raise Unsupported(
            f"{plan.platform} cannot enforce: {what} (use --best-effort or the annotation "
            f'{BEST_EFFORT_ANNOTATION}: "true" to run without them)')
    line = f"best effort on {plan.platform}: dropped {what}"
    if warn is None:
        import sys
        sys.stderr.write(f"ocirun: warning: {line}\n")
    else:
        warn(line)
