"""``PlatformRuntime``: the ``ociruntime.api.Runtime`` surface (create, start, state, list,
kill, delete, wait, run, ps, features) over a platform backend (``base.Platform``), so the CLI
and the Python API are the same on macOS and Windows as on Linux.

On Linux the CLI uses ``ociruntime.api.Runtime`` directly (it *is* the Linux backend); on other
platforms ``ociruntime.cli`` builds this class instead. The state layout is the same: one
directory per container under ``--root``, holding ``runtime.json`` (id, bundle, created,
annotations) next to the backend's own files. Anything the backend cannot do is refused with
the same typed errors as on Linux.
"""
import os

from ..errors import ContainerExists, ContainerNotFound, StateError, Unsupported
from ..state import DEFAULT_ROOT, rfc3339nano, validate_id
from .. import jsonfast
from . import base

RUNTIME_FILE = "runtime.json"


class PlatformRuntime:
    def __init__(self, root=DEFAULT_ROOT, platform=None, warn=None, **_ignored):
        from . import current
        self.root = root
        self.platform = platform or current()
        self.warn = warn or (lambda line: os.write(2, f"ocirun: warning: {line}\n".encode()))

    # -- helpers
    def _dir(self, cid):
        validate_id(cid)
        return os.path.join(self.root, cid)

    def _meta(self, cid):
        d = self._dir(cid)
        try:
            with open(os.path.join(d, RUNTIME_FILE), "rb") as f:
                return d, jsonfast.loads(f.read())
        except FileNotFoundError:
            raise ContainerNotFound(cid) from None

    # -- lifecycle
    def create(self, cid, bundle, pid_file=None, console_socket=None, no_pivot=False,
               preserve_fds=0, no_new_keyring=False, best_effort=False):
        from . import create as platform_create, read_config
        name = self.platform.name
        if console_socket:
            raise Unsupported(f"--console-socket: terminals are not supported on {name}")
        if preserve_fds:
            raise Unsupported(f"--preserve-fds: not supported on {name}")
        d = self._dir(cid)
        os.makedirs(self.root, 0o711, exist_ok=True)
        try:
            os.mkdir(d, 0o711)
        except FileExistsError:
            raise ContainerExists(cid) from None
        bundle = os.path.abspath(bundle)
        try:
            config = read_config(bundle)
            meta = {"id": cid, "bundle": bundle, "created": rfc3339nano(),
                    "annotations": config.get("annotations") or {},
                    "ociVersion": config.get("ociVersion", "1.3.0"), "platform": name}
            with open(os.path.join(d, RUNTIME_FILE), "w") as f:
                f.write(jsonfast.dumps(meta))
            pid = platform_create(cid, bundle, d, best_effort=best_effort, warn=self.warn,
                                  platform=self.platform)
            if pid_file:
                tmp = pid_file + ".tmp"
                with open(tmp, "w") as f:
                    f.write(str(pid))
                os.replace(tmp, pid_file)
        except BaseException:
            self._remove(d, force=True)
            raise
        return pid

    def _remove(self, d, force):
        try:
            self.platform.delete(d, force=force)
        except Exception:  # noqa: BLE001 - best effort on a failed create
            pass
        for n in os.listdir(d) if os.path.isdir(d) else ():
            p = os.path.join(d, n)
            if os.path.isdir(p):
                import shutil
                shutil.rmtree(p, ignore_errors=True)
            else:
                os.unlink(p)
        try:
            os.rmdir(d)
        except FileNotFoundError:
            pass

    def start(self, cid):
        d, _ = self._meta(cid)
        st = self.platform.state(d)
        if st.status != base.CREATED:
            raise StateError("cannot start a container that has stopped" if
                             st.status == base.STOPPED else "cannot start an already running "
                             "container")
        self.platform.start(d)

    def state(self, cid):
        d, meta = self._meta(cid)
        st = self.platform.state(d)
        return {"ociVersion": meta.get("ociVersion", "1.3.0"), "id": cid,
                "status": st.status, "pid": st.pid if st.status != base.STOPPED else 0,
                "bundle": meta["bundle"], "rootfs": os.path.join(meta["bundle"], "rootfs"),
                "created": meta["created"], "owner": "",
                "annotations": meta.get("annotations") or {}}

    def list(self):
        out = []
        try:
            names = sorted(os.listdir(self.root))
        except FileNotFoundError:
            return out
        for cid in names:
            try:
                out.append(self.state(cid))
            except Exception:  # noqa: BLE001 - a half-made entry is not listed
                continue
        return out

    def kill(self, cid, sig="TERM", all=False):
        from ..api import parse_signal
        d, _ = self._meta(cid)
        if self.platform.state(d).status == base.STOPPED and not all:
            raise StateError("container not running")
        self.platform.kill(d, parse_signal(sig), all=all)

    def delete(self, cid, force=False):
        d, _ = self._meta(cid)
        st = self.platform.state(d)
        if st.status == base.RUNNING and not force:
            raise StateError(f"cannot delete container {cid} that is not stopped: running")
        if st.status != base.STOPPED:
            self.platform.kill(d, 9, all=True)
            self.platform.wait(d, timeout=10)
        self.platform.delete(d, force=True)
        self._remove(d, force=True)

    def wait(self, cid, timeout=None):
        d, _ = self._meta(cid)
        return self.platform.wait(d, timeout)

    def ps(self, cid):
        st = self.state(cid)
        return [st["pid"]] if st["pid"] else []

    def run(self, cid, bundle, detach=False, keep=False, no_subreaper=False, pid_file=None,
            console_socket=None, no_pivot=False, preserve_fds=0, no_new_keyring=False,
            best_effort=False):
        self.create(cid, bundle, pid_file=pid_file, console_socket=console_socket,
                    preserve_fds=preserve_fds, best_effort=best_effort)
        try:
            self.start(cid)
            if detach:
                return 0
            status = self.platform.wait(self._dir(cid), None)
        except BaseException:
            self.delete(cid, force=True)
            raise
        if not keep:
            self.delete(cid, force=True)
        return status

    def features(self):
        return self.platform.features()

    def __getattr__(self, name):
        """exec, pause, resume, update, events, checkpoint, restore…: Linux only."""
        if name.startswith("_"):
            raise AttributeError(name)

        def unsupported(*_a, **_k):
            raise Unsupported(f"{name} is not supported on {self.platform.name}")
        return unsupported
