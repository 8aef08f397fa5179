"""Typed errors. The message of each is the one line the CLI prints (runc's wording where runc
has one); the CLI maps every OciError to exit status 1."""


class OciError(Exception):
    """Base of every error the runtime reports to a user."""


class ConfigError(OciError):
    """config.json is unreadable or invalid; ``field`` is the JSON path of the bad field."""

    def __init__(self, field, msg):
        self.field = field
        super().__init__(f"{field}: {msg}" if field else msg)


class ContainerNotFound(OciError):
    def __init__(self, cid=None):
        super().__init__("container does not exist")
        self.id = cid


class ContainerExists(OciError):
    def __init__(self, cid):
        super().__init__(f"container with id exists: {cid}")


class InvalidID(OciError):
    pass


class StateError(OciError):
    """Operation not allowed in the container's current status
    (e.g. "container not running", "container still running", "container paused")."""


class NoSuchProcess(OciError):
    def __init__(self):
        super().__init__("no such process")


class Unsupported(OciError):
    """Asked for something this host or platform cannot do (fail closed)."""


class SetupError(OciError):
    """The container init failed while realizing the config (mounts, caps, seccomp…)."""


def error_line(e):
    """One line for any exception: an OciError's own message, an OSError as
    ``path: strerror``, anything else with its type name (never a traceback)."""
    if isinstance(e, OciError):
        msg = str(e)
    elif isinstance(e, OSError):
        msg = f"{e.filename}: {e.strerror}" if e.filename else str(e.strerror or e)
    else:
        msg = f"{type(e).__name__}: {e}"
    return msg.replace("\n", " ")
