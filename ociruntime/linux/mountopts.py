"""Mount options of config.json (``mounts[].options``) → what the kernel needs.

Pure parsing, no syscalls. An option is one of:

* a per-mount flag (``ro``, ``nosuid``, ``noatime``…): becomes a ``MOUNT_ATTR_*`` bit applied to
  the mount itself (fsmount attr or mount_setattr);
* a recursive flag (``rro``, ``rnosuid``…, runtime-spec 1.1): mount_setattr with AT_RECURSIVE;
* a superblock flag (``sync``, ``dirsync``, ``mand``, ``lazytime``, ``iversion``): an fsconfig
  flag of a new filesystem (ignored on bind mounts, which share the source's superblock);
* a propagation flag (``shared``, ``rslave``…), applied after the mount is attached;
* ``bind``/``rbind``, ``idmap``/``ridmap`` (runtime-spec 1.2);
* ``tmpcopyup`` (runc/crun extension, used by podman for ``--tmpfs``): a tmpfs starts with a copy
  of what the image has at its destination;
* anything else is filesystem data (``mode=755``, ``size=64k``, ``newinstance``), passed to the
  filesystem as runc does; the kernel rejects what the filesystem does not know.

``x-*`` options are for userspace tools (mount(8) convention) and are dropped.
"""
from ..errors import ConfigError
from . import syscalls as sc

# name -> (clear?, MOUNT_ATTR bit) for the mount-level flags
_ATTR = {
    "ro": (False, sc.MOUNT_ATTR_RDONLY), "rw": (True, sc.MOUNT_ATTR_RDONLY),
    "nosuid": (False, sc.MOUNT_ATTR_NOSUID), "suid": (True, sc.MOUNT_ATTR_NOSUID),
    "nodev": (False, sc.MOUNT_ATTR_NODEV), "dev": (True, sc.MOUNT_ATTR_NODEV),
    "noexec": (False, sc.MOUNT_ATTR_NOEXEC), "exec": (True, sc.MOUNT_ATTR_NOEXEC),
    "nodiratime": (False, sc.MOUNT_ATTR_NODIRATIME), "diratime": (True, sc.MOUNT_ATTR_NODIRATIME),
    "nosymfollow": (False, sc.MOUNT_ATTR_NOSYMFOLLOW),
    "symfollow": (True, sc.MOUNT_ATTR_NOSYMFOLLOW),
}
# atime mode: name -> (set mode, or the mode this option cancels)
_ATIME = {"noatime": sc.MOUNT_ATTR_NOATIME, "relatime": sc.MOUNT_ATTR_RELATIME,
          "strictatime": sc.MOUNT_ATTR_STRICTATIME}
_ATIME_NEG = {"atime": sc.MOUNT_ATTR_NOATIME, "norelatime": sc.MOUNT_ATTR_RELATIME,
              "nostrictatime": sc.MOUNT_ATTR_STRICTATIME}
# superblock flags: name -> fsconfig flag (None: clears, nothing to pass to a new superblock)
_SB = {"sync": "sync", "async": None, "dirsync": "dirsync", "mand": "mand", "nomand": None,
       "lazytime": "lazytime", "nolazytime": None, "iversion": "iversion", "noiversion": None,
       "silent": "silent", "loud": None}
# accepted for compatibility, no effect (runc treats them as plain MS_* flags too)
_NOOP = {"defaults", "remount", "notmpcopyup"}
PROPAGATION = {
    "shared": (sc.MS_SHARED, False), "rshared": (sc.MS_SHARED, True),
    "slave": (sc.MS_SLAVE, False), "rslave": (sc.MS_SLAVE, True),
    "private": (sc.MS_PRIVATE, False), "rprivate": (sc.MS_PRIVATE, True),
    "unbindable": (sc.MS_UNBINDABLE, False), "runbindable": (sc.MS_UNBINDABLE, True),
}


class MountOptions:
    """Parsed options of one mount.

    ``attr_set``/``attr_clr``: MOUNT_ATTR bits for the mount itself; ``rattr_set``/``rattr_clr``
    for it and every submount. ``propagation``: [(MS_SHARED|…, recursive)] in order.
    ``sb_flags``: fsconfig flags for a new superblock. ``data``: filesystem options, in order.
    """
    __slots__ = ("bind", "recursive", "attr_set", "attr_clr", "rattr_set", "rattr_clr",
                 "propagation", "sb_flags", "data", "idmap", "ridmap", "tmpcopyup")

    def __init__(self):
        self.bind = self.recursive = self.idmap = self.ridmap = self.tmpcopyup = False
        self.attr_set = self.attr_clr = self.rattr_set = self.rattr_clr = 0
        self.propagation = []
        self.sb_flags = []
        self.data = []

    @property
    def readonly(self):
        return bool((self.attr_set | self.rattr_set) & sc.MOUNT_ATTR_RDONLY)

    def __repr__(self):
        return "MountOptions(%s)" % ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__)


def _set_atime(attr_set, attr_clr, mode):
    return (attr_set & ~sc.MOUNT_ATTR__ATIME) | mode, attr_clr | sc.MOUNT_ATTR__ATIME


def parse(options, where="mount", mtype=None):
    """Parse one mount's option list; ``where`` is the JSON path of the mount (for errors)."""
    m = MountOptions()
    if mtype == "bind":
        m.bind = True
    atime = None      # per-mount atime mode chosen (None: leave as is)
    ratime = None
    for i, opt in enumerate(options or ()):
        field = f"{where}.options[{i}]"
        if not isinstance(opt, str):
            raise ConfigError(field, "must be a string")
        if opt == "":
            raise ConfigError(field, "empty mount option")
        if opt in ("bind", "rbind"):
            m.bind = True
            m.recursive = m.recursive or opt == "rbind"
        elif opt in _ATTR:
            clear, bit = _ATTR[opt]
            if clear:
                m.attr_set &= ~bit
                m.attr_clr |= bit
            else:
                m.attr_set |= bit
                m.attr_clr &= ~bit
        elif opt in _ATIME:
            atime = _ATIME[opt]
        elif opt in _ATIME_NEG:
            if atime == _ATIME_NEG[opt]:
                atime = sc.MOUNT_ATTR_RELATIME
        elif opt in PROPAGATION:
            m.propagation.append(PROPAGATION[opt])
        elif opt in _SB:
            f = _SB[opt]
            neg = {"async": "sync", "nomand": "mand", "nolazytime": "lazytime",
                   "noiversion": "iversion", "loud": "silent"}.get(opt)
            if f is not None and f not in m.sb_flags:
                m.sb_flags.append(f)
            elif neg in m.sb_flags:
                m.sb_flags.remove(neg)
        elif opt in _NOOP:
            pass
        elif opt == "tmpcopyup":
            m.tmpcopyup = True
        elif opt in ("idmap", "ridmap"):
            m.idmap = True
            m.ridmap = m.ridmap or opt == "ridmap"
        elif opt.startswith("r") and opt[1:] in _ATTR:
            clear, bit = _ATTR[opt[1:]]
            if clear:
                m.rattr_set &= ~bit
                m.rattr_clr |= bit
            else:
                m.rattr_set |= bit
                m.rattr_clr &= ~bit
        elif opt.startswith("r") and opt[1:] in _ATIME:
            ratime = _ATIME[opt[1:]]
        elif opt.startswith("r") and opt[1:] in _ATIME_NEG:
            if ratime == _ATIME_NEG[opt[1:]]:
                ratime = sc.MOUNT_ATTR_RELATIME
        elif opt.startswith("x-"):
            pass
        else:
            m.data.append(opt)
    if atime is not None:
        m.attr_set, m.attr_clr = _set_atime(m.attr_set, m.attr_clr, atime)
    if ratime is not None:
        m.rattr_set, m.rattr_clr = _set_atime(m.rattr_set, m.rattr_clr, ratime)
    if m.tmpcopyup and (m.bind or mtype != "tmpfs"):
        raise ConfigError(f"{where}.options", "tmpcopyup is only supported on tmpfs mounts")
    if m.idmap and not m.bind:
        raise ConfigError(f"{where}.options", "idmap/ridmap is only supported on bind mounts")
    return m


def parse_propagation(value, field="linux.rootfsPropagation"):
    """rootfsPropagation → (MS_* flag, recursive); None/"" → None."""
    if not value:
        return None
    try:
        return PROPAGATION[value]
    except KeyError:
        raise ConfigError(field, f'unknown propagation "{value}"') from None


def split_data(data):
    """Filesystem data options → (fsconfig flags, [(key, value)]) for fsopen/fsconfig."""
    flags, strings = [], []
    for d in data:
        k, eq, v = d.partition("=")
        if eq:
            strings.append((k, v))
        else:
            flags.append(k)
    return flags, strings


def known_options():
    """Every option ``parse`` understands (for ``ocirun features`` mountOptions)."""
    names = {"bind", "rbind", "idmap", "ridmap", "tmpcopyup"}
    names |= set(_ATTR) | {"r" + n for n in _ATTR}
    names |= set(_ATIME) | set(_ATIME_NEG) | {"r" + n for n in _ATIME}
    names |= set(_SB) | _NOOP | set(PROPAGATION)
    return names
