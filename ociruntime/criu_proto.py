"""The protobuf side of CRIU's RPC (criu_rpc.py runs ``criu swrk``): the few fields of
images/rpc.proto that ocirun sets (field numbers below, from CRIU 4.1's rpc.proto), encoded
by hand, and the request built from the same argv the CLI path uses (``from_argv``), so both
paths describe the container to CRIU identically. A module of its own: a checkpoint starts
criu before it needs any of this."""
from .criu import CriuError

# criu_req_type
DUMP, RESTORE, PRE_DUMP, NOTIFY = 1, 2, 4, 6
# criu_cg_mode
CG_MODES = {"ignore": 0, "props": 2, "soft": 3, "full": 4, "strict": 5}
CLONE_NEWNET = 0x40000000


# ------------------------------------------------------------------------------ protobuf
def _varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _f_int(num, v):
    return _varint(num << 3) + _varint(int(v))


def _f_bytes(num, b):
    if isinstance(b, str):
        b = b.encode()
    return _varint((num << 3) | 2) + _varint(len(b)) + b


def _decode(buf):
    """{field number: [values]}; length-delimited values stay bytes."""
    out = {}
    i = 0
    while i < len(buf):
        key, i = _read_varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _read_varint(buf, i)
        elif wt == 2:
            n, i = _read_varint(buf, i)
            v, i = buf[i:i + n], i + n
        elif wt == 5:
            v, i = int.from_bytes(buf[i:i + 4], "little"), i + 4
        elif wt == 1:
            v, i = int.from_bytes(buf[i:i + 8], "little"), i + 8
        else:
            raise CriuError(f"criu rpc: bad wire type {wt}")
        out.setdefault(num, []).append(v)
    return out


def _read_varint(buf, i):
    n = shift = 0
    while True:
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        if not b & 0x80:
            return n, i
        shift += 7


# ------------------------------------------------------------------------------ opts
def from_argv(argv):
    """criu_opts bytes + request type from a ``criu dump|pre-dump|restore ...`` argv (the
    subset checkpoint.py emits). Returns (type, opts, images_dir, work_dir, pass_fds)."""
    action = argv[1]
    typ = {"dump": DUMP, "pre-dump": PRE_DUMP, "restore": RESTORE}[action]
    o = bytearray()
    work = images = None
    fds = []
    i = 2
    while i < len(argv):
        a = argv[i]
        name, eq, val = a.partition("=")

        def nxt():
            nonlocal i
            i += 1
            return argv[i]
        if a == "--tree":
            o += _f_int(2, nxt())
        elif a == "--images-dir":
            images = nxt()      # passed as an fd: CRIU 4.1's images_dir string path is broken
        elif a == "--work-dir":
            work = nxt()
        elif a == "--log-file":
            o += _f_bytes(10, nxt())
        elif a.startswith("-v"):
            o += _f_int(9, a[2:] or 2)
        elif a == "--config":
            o += _f_bytes(51, nxt())
        elif a in _BOOLS:
            o += _f_int(_BOOLS[a], 1)
        elif name == "--manage-cgroups":
            o += _f_int(34, CG_MODES.get(val or "soft", 3))
        elif a == "--prev-images-dir":
            o += _f_bytes(14, nxt())
        elif a == "--page-server":
            addr = port = None
            while i + 1 < len(argv) and argv[i + 1] in ("--address", "--port"):
                k = nxt()
                if k == "--address":
                    addr = nxt()
                else:
                    port = nxt()
            ps = bytearray()
            if addr:
                ps += _f_bytes(1, addr)
            if port:
                ps += _f_int(2, port)
            o += _f_bytes(11, bytes(ps))
        elif a == "--status-fd":
            fd = int(nxt())
            o += _f_int(49, fd)
            fds.append(fd)
        elif a == "--empty-ns":
            if nxt() == "net":
                o += _f_int(38, CLONE_NEWNET)
        elif a == "--freeze-cgroup":
            o += _f_bytes(44, nxt())
        elif a == "--external":
            o += _f_bytes(37, nxt())
        elif a == "--root":
            o += _f_bytes(13, nxt())
        elif a == "--cgroup-root":
            v = nxt()
            ctrl, sep, path = v.rpartition(":") if not v.startswith("/") else ("", "", v)
            m = (_f_bytes(1, ctrl) if ctrl else b"") + _f_bytes(2, path)
            o += _f_bytes(25, m)
        elif a == "--inherit-fd":
            v = nxt()                    # fd[N]:KEY
            n, _, key = v[3:].partition("]:")
            o += _f_bytes(27, _f_bytes(1, key) + _f_int(2, int(n)))
            fds.append(int(n))
        elif a == "--lsm-profile":
            o += _f_bytes(53, nxt())
        elif a == "--lsm-mount-context":
            o += _f_bytes(63, nxt())
        elif a in ("--restore-detached", "--pidfile"):
            if a == "--pidfile":
                nxt()
        else:
            raise CriuError(f"criu rpc: option {a} has no RPC translation")
        i += 1
    o += _f_int(12, 1)                   # notify_scripts: the orphan-pts-master fd arrives
    o += _f_int(50, 1)                   # orphan_pts_master
    if typ == RESTORE:
        o += _f_int(26, 1)               # rst_sibling: the restored init is our child
    return typ, o, images, work, fds


_BOOLS = {"--leave-running": 3, "--ext-unix-sk": 4, "--tcp-established": 5,
          "--shell-job": 7, "--file-locks": 8, "--track-mem": 15, "--auto-dedup": 16,
          "--lazy-pages": 48}
