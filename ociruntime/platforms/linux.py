"""Linux backend: a thin adapter from the platform seam to the Linux runtime
(``ociruntime.api.Runtime`` over ``ociruntime.linux``: namespaces, cgroups, seccomp…).
Everything in config.json is enforced there or refused by it, so ``plan.dropped`` is always
empty and ``prepare`` only records the bundle (``Runtime.create`` loads and validates it).

The seam's ``state_dir`` is ``<root>/<id>``, exactly ``ociruntime.state``'s layout, so each
call maps to ``Runtime(root=dirname(state_dir))`` and ``id=basename(state_dir)``. The Linux
runtime makes its own state directory: an empty one made by the caller is removed first.
"""
import os

from .base import Plan, Platform, Status

NAME = "linux"


def _rt(state_dir):
    from ..api import Runtime
    state_dir = os.path.abspath(state_dir)
    return Runtime(root=os.path.dirname(state_dir)), os.path.basename(state_dir)


def _with_stdio(stdio, fn):
    """Run ``fn`` with fds 0-2 pointing at the files in ``stdio`` (the container init
    inherits the runtime's stdio, as with runc), then restore them."""
    if not stdio:
        return fn()
    saved = [os.dup(i) for i in range(3)]
    try:
        for i, (path, flags) in enumerate(zip(stdio, (
                os.O_RDONLY, os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                os.O_WRONLY | os.O_CREAT | os.O_APPEND))):
            if path is not None:
                fd = os.open(path, flags, 0o644)
                os.dup2(fd, i)
                os.close(fd)
        return fn()
    finally:
        for i, fd in enumerate(saved):
            os.dup2(fd, i)
            os.close(fd)


class LinuxPlatform(Platform):
    name = NAME

    def features(self):
        from ..features import features
        return features()

    def prepare(self, config, bundle, state_dir):
        return Plan(NAME, os.path.abspath(bundle))

    def create(self, cid, plan, state_dir, stdio=None):
        rt, name = _rt(state_dir)
        if name != cid:
            from ..errors import OciError
            raise OciError(f"state directory {state_dir} does not belong to container {cid}")
        try:
            os.rmdir(state_dir)
        except OSError:
            pass
        return _with_stdio(stdio, lambda: rt.create(cid, plan.data))

    def start(self, state_dir):
        rt, cid = _rt(state_dir)
        rt.start(cid)

    def state(self, state_dir):
        rt, cid = _rt(state_dir)
        st = rt.state(cid)
        return Status(st["status"], st.get("pid") or 0)

    def kill(self, state_dir, sig, all=False):
        rt, cid = _rt(state_dir)
        rt.kill(cid, sig, all)

    def wait(self, state_dir, timeout=None):
        """The Linux runtime does not keep exit statuses (the caller reaps, like runc's
        shim): None once the init has exited."""
        rt, cid = _rt(state_dir)
        rt.wait(cid, timeout)
        if self.state(state_dir).status != "stopped":
            raise TimeoutError(f"container {cid} still running after {timeout}s")
        return None

    def delete(self, state_dir, force=False):
        rt, cid = _rt(state_dir)
        rt.delete(cid, force)
