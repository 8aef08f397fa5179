"""The workload executor interface: how the container init starts the user's program.

The init calls, in this order (see linux/init.py):

1. ``prepare(spec, rootfs_fd)`` — in the container's namespaces, BEFORE pivot_root (host
   libraries and caches still visible) and before dropping privileges. Load every native
   library and Python module ``run()`` needs; read the program through ``rootfs_fd``.
   No threads may be started here (user/mount namespace calls may still follow).
2. the init switches root, sets credentials, capabilities, no_new_privs, seccomp, cwd.
   It must NOT reset signal dispositions between ``prepare()`` and ``run()``: ``run()`` does
   that itself, right before the program starts.
3. ``run(spec)`` — the last step; never returns (execve, or ``os._exit(status)``).
"""
from .. import osfast as os


class Executor:
    name = "native"

    def prepare(self, spec, rootfs_fd):
        """Get everything run() needs while the host is still visible."""

    def run(self, spec):
        """Start the program; never returns."""
        raise NotImplementedError


def env_pairs(env):
    """process.env ("K=V" strings) -> list of (K, V); entries without "=" are skipped."""
    out = []
    for e in env or ():
        k, sep, v = e.partition("=")
        if sep and k:
            out.append((k, v))
    return out


def reset_signals(keep=()):
    """Every signal back to SIG_DFL (ignored dispositions survive execve; CPython ignores
    SIGPIPE/SIGXFSZ) and an empty blocked mask. ``_signal`` is the C module behind
    ``signal``: same functions, without importing enum."""
    import _signal
    dfl = _signal.SIG_DFL
    for s in range(1, _signal.NSIG):
        if s in keep or s in (9, 19):  # SIGKILL, SIGSTOP cannot be changed
            continue
        try:
            _signal.signal(s, dfl)
        except (OSError, ValueError):
            pass  # reserved real-time signals of the C library
    _signal.pthread_sigmask(_signal.SIG_SETMASK, [])


def write_err(msg):
    """One line on the container's stderr, unbuffered (we exit with os._exit)."""
    try:
        os.write(2, (msg.rstrip("\n") + "\n").encode("utf-8", "replace"))
    except OSError:
        pass
