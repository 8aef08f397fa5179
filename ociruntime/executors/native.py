"""The native executor: execve the program, found in the container's PATH (runc's rules)."""
from .. import osfast as os
import _stat as stat  # the C module stat.py re-exports (stat.py: 0.4 M instructions)

from ..errors import ConfigError, SetupError
from .base import Executor, env_pairs, reset_signals

# used when process.env has no PATH (the usual default of image builders)
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def lookup(name, path):
    """The file execve should run for ``name``, resolved in the CURRENT root (call it after
    the switch to the container's root): a name with a "/" is used as is, otherwise the first
    regular file with an execute bit in ``path``'s directories (an empty entry is ".")."""
    if "/" in name:
        return name
    if name:
        for d in (path if path is not None else DEFAULT_PATH).split(":"):
            p = os.path.join(d or ".", name)
            try:
                st = os.stat(p)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode) and st.st_mode & 0o111:
                return p
    raise SetupError(f'exec: "{name}": executable file not found in $PATH')


class NativeExecutor(Executor):
    name = "native"

    def run(self, spec):
        p = spec.process
        if p is None or not p.args:
            raise ConfigError("process.args", "must not be empty")
        env = dict(env_pairs(p.env))
        path = lookup(p.args[0], env.get("PATH"))
        reset_signals()
        try:
            os.execve(path, list(p.args), env)
        except OSError as e:
            raise SetupError(f'exec: "{path}": {e.strerror}') from None
