"""The container user: ``username`` looked up in the container's own /etc/passwd (read after
pivot_root, never through the host's pwd module), and the uid/gid switch keeping capabilities
for the capset that follows."""
import os

from ..errors import SetupError
from . import syscalls as sc


def lookup(username, passwd="/etc/passwd"):
    """(uid, gid) of username, or of a numeric 'uid' string."""
    try:
        with open(passwd) as f:
            for line in f:
                parts = line.rstrip("\n").split(":")
                if len(parts) >= 4 and parts[0] == username:
                    return int(parts[2]), int(parts[3])
    except OSError:
        pass
    if username.isdigit():
        return int(username), None
    raise SetupError(f"unable to find user {username}: no matching entries in passwd file")


def switch(uid, gid, groups):
    """setgroups/setresgid/setresuid with KEEPCAPS so capset can restore the config's sets."""
    sc.prctl(sc.PR_SET_KEEPCAPS, 1)
    try:
        sc.setgroups(groups)
    except OSError as e:
        if e.errno != 1 or groups:  # EPERM with setgroups "deny" in a user ns: fine if empty
            raise
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    sc.prctl(sc.PR_SET_KEEPCAPS, 0)
