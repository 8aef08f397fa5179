"""Capabilities: the name table, and applying the five sets in the init (runc's order:
drop the bounding set, keep caps across the uid change, capset, then ambient).
Inheritable and ambient stay empty unless the config asks (CVE-2022-27650/29162).
The name table costs nothing to import: the syscalls (and their FFI) are imported by the
methods that make them; their callers (linux/init.py, linux/exec.py) load linux/syscalls.py
at import, long before any pivot_root or setns."""

_NAMES = (
    "CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP "
    "LINUX_IMMUTABLE NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER "
    "SYS_MODULE SYS_RAWIO SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE "
    "SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP "
    "MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF "
    "CHECKPOINT_RESTORE").split()
CAPS = {"CAP_" + n: i for i, n in enumerate(_NAMES)}
NUMBERS = {i: n for n, i in CAPS.items()}


def last_cap():
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return min(int(f.read()), len(_NAMES) - 1)
    except OSError:
        return len(_NAMES) - 1


def mask(names):
    m = 0
    for n in names or ():
        m |= 1 << CAPS[n]
    return m


def names(m):
    return [NUMBERS[i] for i in range(len(_NAMES)) if m >> i & 1]


def own_bounding():
    """The runtime's own bounding set (``CapBnd`` of /proc/self/status: one read, not a
    PR_CAPBSET_READ per capability; every Linux since 2.6.26 has the line)."""
    with open("/proc/self/status", "rb") as f:
        for line in f:
            if line.startswith(b"CapBnd:"):
                return int(line.split()[1], 16)
    return 0


class CapPlan:
    """Everything the init needs to apply capabilities, computed before pivot_root (it reads
    /proc) so that applying is syscalls only."""
    __slots__ = ("bounding", "effective", "permitted", "inheritable", "ambient", "last")

    def __init__(self, caps):
        self_last = last_cap()
        have_bnd = own_bounding() & ((1 << (self_last + 1)) - 1)
        self.last = self_last
        # what the runtime itself does not hold cannot be granted: drop silently
        self.bounding = mask(caps.bounding) & have_bnd
        self.effective = mask(caps.effective) & have_bnd
        self.permitted = mask(caps.permitted) & have_bnd
        self.inheritable = mask(caps.inheritable) & have_bnd
        self.ambient = mask(caps.ambient) & have_bnd & self.permitted & self.inheritable

    def drop_bounding(self):
        from . import syscalls as sc
        for i in range(self.last + 1):
            if not self.bounding >> i & 1:
                try:
                    sc.prctl(sc.PR_CAPBSET_DROP, i)
                except OSError as e:
                    if e.errno != 22:  # EINVAL: unknown to this kernel
                        raise

    def apply(self):
        from . import syscalls as sc
        sc.capset(self.effective, self.permitted, self.inheritable)
        if self.ambient:
            for i in range(self.last + 1):
                if self.ambient >> i & 1:
                    sc.prctl(sc.PR_CAP_AMBIENT, sc.PR_CAP_AMBIENT_RAISE, i)
