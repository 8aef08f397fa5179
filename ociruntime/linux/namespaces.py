"""Namespaces: clone flags, joining by path (user first), id maps written by the parent."""
from .. import osfast as os

from . import syscalls as sc

FLAGS = {
    "user": sc.CLONE_NEWUSER, "mount": sc.CLONE_NEWNS, "pid": sc.CLONE_NEWPID,
    "network": sc.CLONE_NEWNET, "ipc": sc.CLONE_NEWIPC, "uts": sc.CLONE_NEWUTS,
    "cgroup": sc.CLONE_NEWCGROUP, "time": sc.CLONE_NEWTIME,
}
PROC_NAMES = {"user": "user", "mount": "mnt", "pid": "pid", "network": "net", "ipc": "ipc",
              "uts": "uts", "cgroup": "cgroup", "time": "time"}
# setns order: user first (it grants the caps for the rest), mount last but one, pid last
JOIN_ORDER = ("user", "ipc", "uts", "network", "cgroup", "time", "mount", "pid")


def new_flags(namespaces, exclude=()):
    f = 0
    for n in namespaces:
        if n.path is None and n.type not in exclude:
            f |= FLAGS[n.type]
    return f


def open_paths(namespaces):
    """Open every namespace given by path (in the runtime, before forking): [(type, fd)]."""
    out = []
    by_type = {n.type: n for n in namespaces if n.path is not None}
    for t in JOIN_ORDER:
        n = by_type.get(t)
        if n is None:
            continue
        try:
            fd = os.open(n.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            from ..errors import SetupError
            raise SetupError(f"open namespace {n.path}: {e.strerror}") from None
        out.append((t, fd))
    return out


def join(opened, types):
    for t, fd in opened:
        if t in types:
            sc.setns(fd, FLAGS[t], what=f"setns {t}")


def format_map(maps):
    return "".join(f"{m.container_id} {m.host_id} {m.size}\n" for m in maps)


def write_id_maps(pid, uid_maps, gid_maps):
    for name, maps in (("uid_map", uid_maps), ("gid_map", gid_maps)):
        if not maps:
            continue
        with open(f"/proc/{pid}/{name}", "w") as f:
            f.write(format_map(maps))
