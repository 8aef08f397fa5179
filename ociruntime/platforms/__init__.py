"""Platform backends behind one seam (see base.py). ``current()`` is the one place that picks
a backend, by ``sys.platform``; each backend module is imported only when chosen, so Linux
never imports the Windows ctypes code and vice versa.

``create(...)`` is the whole create path for a backend: read config.json, prepare a plan,
refuse or warn about what the platform cannot enforce, create the process.
"""
import sys

from .base import (CREATED, RUNNING, STOPPED, Plan, Platform, Status,  # noqa: F401
                   best_effort_requested, enforce)

_BACKENDS = {
    "linux": ("linux", "LinuxPlatform"),
    "darwin": ("darwin", "DarwinPlatform"),
    "win32": ("windows", "WindowsPlatform"),
}


def backend_for(platform_name: str) -> Platform:
    """The backend for a ``sys.platform`` value; Unsupported for any other platform."""
    try:
        mod, cls = _BACKENDS[platform_name]
    except KeyError:
        from ..errors import Unsupported
        raise Unsupported(f"no ocirun backend for platform {platform_name!r}") from None
    import importlib
    return getattr(importlib.import_module(f"{__name__}.{mod}"), cls)()


def current() -> Platform:
    return backend_for(sys.platform)


def read_config(bundle: str) -> dict:
    import os
    from ..errors import ConfigError
    from .. import jsonfast
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, "rb") as f:
            doc = jsonfast.loads(f.read())
    except OSError as e:
        raise ConfigError("", f"cannot read {path}: {e.strerror}") from None
    except ValueError as e:
        raise ConfigError("", f"{path}: invalid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise ConfigError("", f"{path}: must be a JSON object")
    return doc


def create(cid: str, bundle: str, state_dir: str, best_effort: bool = False, warn=None,
           platform: Platform | None = None, stdio=None) -> int:
    """Create container ``cid`` from ``bundle`` with its files in ``state_dir``
    (``<root>/<id>``) on ``platform`` (default: ``current()``); returns the pid."""
    import os
    p = platform or current()
    bundle = os.path.abspath(bundle)
    config = read_config(bundle)
    plan = p.prepare(config, bundle, state_dir)
    enforce(plan, best_effort_requested(config, best_effort), warn)
    return p.create(cid, plan, state_dir, stdio=stdio)
