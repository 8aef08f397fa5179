"""Device access rules: the list a container gets, its v1 form (devices.allow/deny writes)
and its v2 form (a BPF_PROG_TYPE_CGROUP_DEVICE program attached with bpf(2)).

Both are produced from one normalized state computed with the kernel's own v1 semantics
(security/device_cgroup.c): a default (allow or deny everything) plus an ordered list of
exceptions. ``deny a`` / ``allow a`` reset the default and clear the exceptions; a rule that
agrees with the default removes access bits from a matching exception, one that disagrees adds
them. So the v1 cgroup and the v2 program of the same config permit exactly the same opens.
"""
from .resources import DeviceRule

# runc's default rules (libcontainer/specconv AllowedDevices, as runc 1.1.5 writes them on this
# host), appended after the config's own rules so a container can always use these devices.
# A default whose path is also in linux.devices is dropped (the config's entry takes priority,
# as in runc's createDevices); linux.devices entries themselves get no rule: the config must
# allow them in linux.resources.devices (runc does the same).
DEFAULT_RULES = (
    (None, DeviceRule(allow=True, type="c", major=None, minor=None, access="m")),
    (None, DeviceRule(allow=True, type="b", major=None, minor=None, access="m")),
    ("/dev/null", DeviceRule(allow=True, type="c", major=1, minor=3, access="rwm")),
    ("/dev/random", DeviceRule(allow=True, type="c", major=1, minor=8, access="rwm")),
    ("/dev/full", DeviceRule(allow=True, type="c", major=1, minor=7, access="rwm")),
    ("/dev/tty", DeviceRule(allow=True, type="c", major=5, minor=0, access="rwm")),
    ("/dev/zero", DeviceRule(allow=True, type="c", major=1, minor=5, access="rwm")),
    ("/dev/urandom", DeviceRule(allow=True, type="c", major=1, minor=9, access="rwm")),
    (None, DeviceRule(allow=True, type="c", major=136, minor=None, access="rwm")),  # /dev/pts/*
    (None, DeviceRule(allow=True, type="c", major=5, minor=2, access="rwm")),       # /dev/ptmx
    (None, DeviceRule(allow=True, type="c", major=10, minor=200, access="rwm")),    # /dev/net/tun
)
DEFAULT_PATHS = frozenset(p for p, _ in DEFAULT_RULES if p)

DENY_ALL = DeviceRule(allow=False, type="a", major=None, minor=None, access="rwm")


def overridden_defaults(spec_devices):
    """Paths of default devices that ``linux.devices`` (objects with .path) redefines."""
    return sorted({d.path for d in spec_devices or ()} & DEFAULT_PATHS)


def effective_rules(config_rules, dropped=(), defaults=True):
    """The rule list a container gets, in order: deny all, the config's
    ``linux.resources.devices``, then runc's defaults except those whose path is in
    ``dropped`` (see overridden_defaults)."""
    out = [DENY_ALL]
    out.extend(config_rules or ())
    if defaults:
        out.extend(r for p, r in DEFAULT_RULES if p is None or p not in dropped)
    return out


def normalize(rules):
    """-> (default_allow: bool, [(type, major|None, minor|None, access)]) as the kernel's v1
    device cgroup would hold them after the rules were written in order."""
    default_allow = True
    exc = {}  # (type, major, minor) -> set of access chars; dict keeps insertion order
    for r in rules:
        if r.type == "a":
            default_allow = bool(r.allow)
            exc = {}
            continue
        key = (r.type, r.major, r.minor)
        if bool(r.allow) != default_allow:
            exc.setdefault(key, set()).update(r.access)
        elif key in exc:
            exc[key].difference_update(r.access)
            if not exc[key]:
                del exc[key]
    return default_allow, [(t, ma, mi, "".join(c for c in "rwm" if c in acc))
                           for (t, ma, mi), acc in exc.items()]


def v1_writes(rules):
    """[(file, line)] to write into a v1 devices cgroup, in order."""
    default_allow, exc = normalize(rules)
    out = [("devices.allow" if default_allow else "devices.deny", "a")]
    f = "devices.deny" if default_allow else "devices.allow"
    for t, ma, mi, acc in exc:
        out.append((f, _line(t, ma, mi, acc)))
    return out


def parse_v1_list(text):
    """devices.list -> (default_allow, {(type, major, minor): access}). The kernel lists
    ``a *:* rwm`` alone when the default is allow (deny exceptions are not shown)."""
    exc = {}
    for line in text.splitlines():
        p = line.split()
        if len(p) != 3:
            continue
        if p[0] == "a":
            return True, {}
        ma, _, mi = p[1].partition(":")
        exc[(p[0], None if ma == "*" else int(ma), None if mi == "*" else int(mi))] = p[2]
    return False, exc


def v1_update_writes(current_list, rules):
    """Writes that move a running container's v1 device cgroup from ``current_list`` (its
    devices.list) to ``rules`` without the moment of "deny all" a full rewrite has; None when
    that is not possible (the current or new default is allow)."""
    cur_allow, cur = parse_v1_list(current_list)
    default_allow, exc = normalize(rules)
    if cur_allow or default_allow:
        return None
    want = {(t, ma, mi): acc for t, ma, mi, acc in exc}
    out = []
    for (t, ma, mi), acc in want.items():
        if set(acc) - set(cur.get((t, ma, mi), "")):
            out.append(("devices.allow", _line(t, ma, mi, acc)))
    for (t, ma, mi), acc in cur.items():
        drop = "".join(c for c in acc if c not in want.get((t, ma, mi), ""))
        if drop:
            out.append(("devices.deny", _line(t, ma, mi, drop)))
    return out


def _line(t, ma, mi, acc):
    return f"{t} {'*' if ma is None else ma}:{'*' if mi is None else mi} {acc}"


# ------------------------------------------------------------------ v2: BPF program
# struct bpf_cgroup_dev_ctx { u32 access_type /* access << 16 | type */; u32 major, minor; }
_DEV_TYPE = {"b": 1, "c": 2}           # BPF_DEVCG_DEV_BLOCK / _CHAR
_ACC = {"m": 1, "r": 2, "w": 4}         # BPF_DEVCG_ACC_MKNOD / _READ / _WRITE


def _i(code, dst=0, src=0, off=0, imm=0):
    return (code, dst, src, off, imm)


LDXW, MOV32X, AND32K, RSH32K, JNEK, JEQK, MOV64K, EXIT = (
    0x61, 0xbc, 0x54, 0x74, 0x55, 0x15, 0xb7, 0x95)


def program(rules):
    """The BPF instructions (bytes) enforcing ``rules``."""
    default_allow, exc = normalize(rules)
    insns = [
        _i(LDXW, 2, 1, 0),          # w2 = ctx->access_type
        _i(MOV32X, 3, 2),           # w3 = w2 & 0xffff        (device type)
        _i(AND32K, 3, imm=0xffff),
        _i(MOV32X, 4, 2),           # w4 = w2 >> 16           (requested access)
        _i(RSH32K, 4, imm=16),
        _i(LDXW, 5, 1, 4),          # w5 = ctx->major
        _i(LDXW, 6, 1, 8),          # w6 = ctx->minor
    ]
    verdict = 0 if default_allow else 1   # an exception flips the default
    for t, ma, mi, acc in exc:
        mask = sum(_ACC[c] for c in acc)
        block = [_i(JNEK, 3, imm=_DEV_TYPE[t], off=None)]
        if verdict == 1 and mask != 7:       # allow only if every requested bit is allowed
            block += [_i(MOV32X, 7, 4), _i(AND32K, 7, imm=~mask & 7), _i(JNEK, 7, imm=0, off=None)]
        elif verdict == 0 and mask != 7:     # deny if any requested bit is denied
            block += [_i(MOV32X, 7, 4), _i(AND32K, 7, imm=mask), _i(JEQK, 7, imm=0, off=None)]
        if ma is not None:
            block.append(_i(JNEK, 5, imm=ma, off=None))
        if mi is not None:
            block.append(_i(JNEK, 6, imm=mi, off=None))
        block += [_i(MOV64K, 0, imm=verdict), _i(EXIT)]
        n = len(block)
        insns += [(c, d, s, (n - k - 1) if off is None else off, imm)
                  for k, (c, d, s, off, imm) in enumerate(block)]
    insns += [_i(MOV64K, 0, imm=1 if default_allow else 0), _i(EXIT)]
    return b"".join(bytes((c, (s << 4) | d)) + off.to_bytes(2, "little", signed=True) +
                    (imm if imm < (1 << 31) else imm - (1 << 32)).to_bytes(4, "little", signed=True)
                    for c, d, s, off, imm in insns)


def attach_v2(cgroup_dir, rules):
    """Load the program for ``rules`` and attach it to ``cgroup_dir`` (BPF_F_ALLOW_MULTI),
    then detach the programs that were attached there before (so there is never a moment
    without a filter)."""
    from ... import osfast as os
    from .. import syscalls as sc
    prog = sc.bpf_prog_load_cgroup_device(program(rules))
    dfd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        old, _flags = sc.bpf_prog_query(dfd)
        sc.bpf_prog_attach(dfd, prog)
        for pid in old:
            try:
                ofd = sc.bpf_prog_get_fd_by_id(pid)
            except FileNotFoundError:
                continue
            try:
                sc.bpf_prog_detach(dfd, ofd)
            finally:
                os.close(ofd)
    finally:
        os.close(dfd)
        os.close(prog)
