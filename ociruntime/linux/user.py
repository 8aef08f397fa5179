"""The container user: ``username`` looked up in the container's own /etc/passwd (read after
pivot_root, never through the host's pwd module), and the uid/gid switch keeping capabilities
for the capset that follows."""
from .. import osfast as os

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


def lookup_group(name, group="/etc/group"):
    """gid of group ``name`` (or of a numeric string) in the container's /etc/group."""
    if name.isdigit():
        return int(name)
    try:
        with open(group) as f:
            for line in f:
                parts = line.rstrip("\n").split(":")
                if len(parts) >= 3 and parts[0] == name and parts[2].isdigit():
                    return int(parts[2])
    except OSError:
        pass
    raise SetupError(f"unable to find group {name}: no matching entries in group file")


def parse_user_arg(s):
    """``exec --user``: ``uid``, ``uid:gid``, ``name``, ``name:group`` (any mix) ->
    (uid or None, gid or None, user name or None, group name or None). Numbers are taken
    as they are (``1`` is uid 1, never 0: crun CVE-2026-30892); names are looked up in the
    container when the process starts."""
    from ..errors import OciError
    u, sep, g = s.partition(":")
    if not u or (sep and not g):
        raise OciError(f"invalid user {s!r}: expected uid[:gid] or name[:group]")
    uid = gid = uname = gname = None
    for part, kind in ((u, "uid"), (g, "gid")):
        if not part:
            continue
        if part.isdigit():
            n = int(part)
            if n > 0xFFFFFFFE:
                raise OciError(f"invalid {kind} {part}: out of range")
            if kind == "uid":
                uid = n
            else:
                gid = n
        elif part.startswith("-") or "/" in part or ":" in part or \
                any(c.isspace() for c in part):
            raise OciError(f"invalid user {s!r}: {part!r} is neither a number nor a name")
        elif kind == "uid":
            uname = part
        else:
            gname = part
    return uid, gid, uname, gname
