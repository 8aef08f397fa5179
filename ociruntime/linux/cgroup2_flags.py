"""Keep the cgroup2 superblock flags across a CRIU run.

cgroup2 has one superblock for every mount of it, and a new cgroup2 mount made from the initial
cgroup namespace sets its flags (nsdelegate, memory_recursiveprot, ...) to that mount's options.
CRIU (4.1.1 and before; checkpoint-restore/criu#3029) mounts a bare cgroup2 to read the
container's cgroup when it dumps (and to build its cgroup yard when it restores), so a checkpoint
left the host's /sys/fs/cgroup without ``nsdelegate`` (seen in the test VM, docs/migration.md).
``snapshot()`` before criu, ``repair(snap)`` after: the flags are put back as they were, and
nothing is done when they did not change (this host's cgroup2 mount has none).
"""
from .cgroups import fs

SB_FLAGS = ("nsdelegate", "favordynmods", "memory_localevents", "memory_recursiveprot",
            "memory_hugetlb_accounting", "pids_localevents")


def snapshot():
    """(mount point, superblock flags) of the first cgroup2 mount, or None."""
    for mp, _root, typ, sopts in fs.mountinfo_cgroups():
        if typ == "cgroup2":
            return mp, tuple(o for o in sopts.split(",") if o in SB_FLAGS)
    return None


def repair(snap):
    """Reconfigure cgroup2 back to ``snap``'s flags if they changed; True if it did. A failure
    is not the caller's (criu's job succeeded or failed on its own): it is returned as False."""
    if snap is None or not snap[1]:   # no flags to lose: a bare mount sets none
        return False
    now = snapshot()
    if now is None or set(now[1]) == set(snap[1]):
        return False
    from . import syscalls as sc
    try:
        sc.fs_reconfigure(now[0], snap[1])
    except OSError:
        return False
    return True
