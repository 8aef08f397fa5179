"""Signals without ``import signal``: that module builds enums at import (enum, functools,
collections: ~7 ms per process here). ``_signal`` (C) has all the runtime needs."""
import _signal

NAMES = {n: getattr(_signal, n) for n in dir(_signal)
         if n.startswith("SIG") and not n.startswith("SIG_") and isinstance(getattr(_signal, n), int)}
NAMES.pop("SIGRTMIN", None)
NAMES.pop("SIGRTMAX", None)


def parse(s):
    """'9', 'KILL', 'SIGKILL', 'SIGRTMIN+3' → number (runc accepts these forms)."""
    from .errors import OciError
    if isinstance(s, int):
        return s
    s = str(s).strip()
    if s.isdigit():
        n = int(s)
        if 0 < n < _signal.NSIG:
            return n
    else:
        name = s.upper()
        name = name if name.startswith("SIG") else "SIG" + name
        if name in NAMES:
            return NAMES[name]
        for base, off in (("SIGRTMIN", _signal.SIGRTMIN), ("SIGRTMAX", _signal.SIGRTMAX)):
            if name == base:
                return off
            if name.startswith(base + "+") and name[len(base) + 1:].isdigit():
                n = _signal.SIGRTMIN + int(name[len(base) + 1:])
                if n <= _signal.SIGRTMAX:
                    return n
            if name.startswith(base + "-") and name[len(base) + 1:].isdigit():
                n = _signal.SIGRTMAX - int(name[len(base) + 1:])
                if n >= _signal.SIGRTMIN:
                    return n
    raise OciError(f"unknown signal {s!r}")
