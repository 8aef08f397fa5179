"""AppArmor and SELinux labels. Fail closed: a label asked for on a host without that LSM is
refused before anything is created. Labels are written only through a procfs handle verified
with fstatfs (CVE-2019-16884, CVE-2025-52881), never through a path string."""
from .. import osfast as os

from ..errors import SetupError, Unsupported
from . import syscalls as sc
from .sysctl import open_proc, verify_proc


def _lsms():
    try:
        with open("/sys/kernel/security/lsm") as f:
            return set(f.read().strip().split(","))
    except OSError:
        return set()


def apparmor_enabled():
    if "apparmor" not in _lsms():
        return False
    try:
        with open("/sys/module/apparmor/parameters/enabled") as f:
            return f.read().strip() == "Y"
    except OSError:
        return False


def selinux_enabled():
    return "selinux" in _lsms() and os.path.exists("/sys/fs/selinux/enforce")


def validate(spec):
    """In the runtime, before forking: refuse labels this host cannot apply."""
    p = spec.process
    if p is not None and p.apparmor_profile and not apparmor_enabled():
        raise Unsupported(f"process.apparmorProfile: apparmor profile {p.apparmor_profile!r} "
                          "requested but AppArmor is not enabled on this host")
    if p is not None and p.selinux_label and not selinux_enabled():
        raise Unsupported(f"process.selinuxLabel: selinux label {p.selinux_label!r} requested "
                          "but SELinux is not enabled on this host")
    if spec.linux.mount_label and not selinux_enabled():
        raise Unsupported(f"linux.mountLabel: selinux mount label {spec.linux.mount_label!r} "
                          "requested but SELinux is not enabled on this host")


def exec_attr(kind, label):
    """(path under the procfs root, bytes to write) for a label applied at the next execve."""
    if kind == "apparmor":
        return "thread-self/attr/apparmor/exec", f"exec {label}".encode()
    if kind == "selinux":
        return "thread-self/attr/exec", label.encode()
    raise ValueError(kind)


def write_exec_label(kind, label, proc_fd=None):
    """Write the exec label through a verified procfs fd (opened from /proc if None)."""
    own = proc_fd is None
    if own:
        proc_fd = open_proc()
    else:
        verify_proc(proc_fd)
    rel, data = exec_attr(kind, label)
    try:
        try:
            fd = sc.openat2(proc_fd, rel, os.O_WRONLY, 0,
                            sc.RESOLVE_BENEATH | sc.RESOLVE_NO_SYMLINKS | sc.RESOLVE_NO_XDEV)
        except OSError as e:
            if kind == "apparmor" and e.errno == 2:  # kernels before 5.8: attr/exec
                fd = sc.openat2(proc_fd, "thread-self/attr/exec", os.O_WRONLY, 0,
                                sc.RESOLVE_BENEATH | sc.RESOLVE_NO_XDEV)
            else:
                raise SetupError(f"{kind} label: open /proc/{rel}: {e.strerror}") from None
        try:
            verify_proc(fd, f"/proc/{rel}")
            os.write(fd, data)
        finally:
            os.close(fd)
    finally:
        if own:
            os.close(proc_fd)


def features():
    return {"apparmor": {"enabled": apparmor_enabled()},
            "selinux": {"enabled": selinux_enabled()}}
