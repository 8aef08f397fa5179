"""Linux backend: a thin adapter from the platform seam to the Linux container code in
``ociruntime.linux`` (namespaces, cgroups, seccomp… — everything in config.json is enforced
there or refused by it, so ``plan.dropped`` is always empty).

The Linux code provides, in ``ociruntime.linux.container``::

    create(cid, spec, state_dir, stdio=None) -> int      # spec: config.model.Spec
    start(state_dir) -> None
    state(state_dir) -> (status: str, pid: int, exit_code: int | None)
    kill(state_dir, sig: int, all: bool) -> None
    wait(state_dir, timeout: float | None) -> int | None
    delete(state_dir, force: bool) -> None
    features() -> dict                                   # the runtime-spec features document

This module only forwards; it is imported by ``platforms.current()`` on Linux.
"""
from .base import Plan, Platform, Status

NAME = "linux"


def _impl():
    from ..linux import container
    return container


class LinuxPlatform(Platform):
    name = NAME

    def features(self):
        return _impl().features()

    def prepare(self, config, bundle, state_dir):
        from ..config.model import load_bundle
        return Plan(NAME, load_bundle(bundle))

    def create(self, cid, plan, state_dir, stdio=None):
        return _impl().create(cid, plan.data, state_dir, stdio=stdio)

    def start(self, state_dir):
        _impl().start(state_dir)

    def state(self, state_dir):
        return Status(*_impl().state(state_dir))

    def kill(self, state_dir, sig, all=False):
        _impl().kill(state_dir, sig, all)

    def wait(self, state_dir, timeout=None):
        return _impl().wait(state_dir, timeout)

    def delete(self, state_dir, force=False):
        _impl().delete(state_dir, force)
