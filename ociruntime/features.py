"""``ocirun features``: the runtime-spec features document. It must tell the truth: clients
turn on user namespaces, idmapped mounts and rro from it."""
from .linux.capabilities import CAPS
from .spec import OCI_VERSION


def _optional(modname, attr="features"):
    try:
        mod = __import__(f"ociruntime.{modname}", fromlist=[attr])
        return getattr(mod, attr)()
    except (ImportError, AttributeError):
        return None


def _kernel_at_least(major, minor):
    import os
    rel = os.uname().release.split(".")
    try:
        return (int(rel[0]), int(rel[1].split("-")[0])) >= (major, minor)
    except (ValueError, IndexError):
        return False


def features(criu=None):
    """``criu``: the binary ``ocirun --criu`` names (else OCIRUN_CRIU, the build, PATH)."""
    seccomp = _optional("linux.seccomp") or {"enabled": False}
    rootfs_opts = _optional("linux.mountopts", "known_options")
    doc = {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer",
                  "poststart", "poststop"],
        "mountOptions": sorted(rootfs_opts) if rootfs_opts else [
            "bind", "rbind", "ro", "rw", "nosuid", "suid", "nodev", "dev", "noexec", "exec",
            "relatime", "strictatime", "noatime", "private", "rprivate", "slave", "rslave",
            "shared", "rshared", "unbindable", "runbindable"],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": sorted(CAPS, key=CAPS.get),
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False,
                       "rdma": False},
            "seccomp": seccomp,
            **_optional("linux.lsm"),
            "intelRdt": {"enabled": False},
            # open_tree + mount_setattr(MOUNT_ATTR_IDMAP): kernel >= 5.12, present here
            "mountExtensions": {"idmap": {"enabled": bool(rootfs_opts and "idmap" in rootfs_opts
                                                          and _kernel_at_least(5, 12))}},
        },
        "annotations": {
            "io.github.ocirun.version": __import__("ociruntime").__version__,
        },
        "potentiallyUnsafeConfigAnnotations": [],
    }
    from .criu import annotations
    ann = annotations(criu)
    if ann:
        doc["annotations"].update(ann)
    handlers = _optional("executors", "handlers")
    if handlers:
        doc["annotations"]["run.oci.handler"] = ",".join(handlers)
    return doc
