"""macOS ctypes (the darwin counterpart of linux/syscalls.py): process identity via libproc's
``proc_pidinfo(pid, PROC_PIDTBSDINFO)``. Loaded only on macOS; returns None elsewhere or on
any failure, and the caller falls back to ``kill(pid, 0)``."""
import ctypes

PROC_PIDTBSDINFO = 3
SZOMB = 5
MAXCOMLEN = 16


class proc_bsdinfo(ctypes.Structure):
    # <sys/proc_info.h>
    _fields_ = [
        ("pbi_flags", ctypes.c_uint32), ("pbi_status", ctypes.c_uint32),
        ("pbi_xstatus", ctypes.c_uint32), ("pbi_pid", ctypes.c_uint32),
        ("pbi_ppid", ctypes.c_uint32), ("pbi_uid", ctypes.c_uint32),
        ("pbi_gid", ctypes.c_uint32), ("pbi_ruid", ctypes.c_uint32),
        ("pbi_rgid", ctypes.c_uint32), ("pbi_svuid", ctypes.c_uint32),
        ("pbi_svgid", ctypes.c_uint32), ("rfu_1", ctypes.c_uint32),
        ("pbi_comm", ctypes.c_char * MAXCOMLEN), ("pbi_name", ctypes.c_char * (2 * MAXCOMLEN)),
        ("pbi_nfiles", ctypes.c_uint32), ("pbi_pgid", ctypes.c_uint32),
        ("pbi_pjobc", ctypes.c_uint32), ("e_tdev", ctypes.c_uint32),
        ("e_tpgid", ctypes.c_uint32), ("pbi_nice", ctypes.c_int32),
        ("pbi_start_tvsec", ctypes.c_uint64), ("pbi_start_tvusec", ctypes.c_uint64),
    ]


_libproc = None


def _lib():
    global _libproc
    if _libproc is None:
        lib = ctypes.CDLL("/usr/lib/libproc.dylib", use_errno=True)
        lib.proc_pidinfo.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_uint64,
                                     ctypes.c_void_p, ctypes.c_int]
        lib.proc_pidinfo.restype = ctypes.c_int
        _libproc = lib
    return _libproc


def bsdinfo(pid):
    """(start time "sec.usec", zombie) for a live pid; None if it does not exist or libproc
    is unavailable (then the caller cannot tell and uses kill(pid, 0))."""
    import sys
    if sys.platform != "darwin":
        return None
    info = proc_bsdinfo()
    try:
        n = _lib().proc_pidinfo(pid, PROC_PIDTBSDINFO, 0, ctypes.byref(info),
                                ctypes.sizeof(info))
    except OSError:
        return None
    if n != ctypes.sizeof(info):
        return None
    return f"{info.pbi_start_tvsec}.{info.pbi_start_tvusec:06d}", info.pbi_status == SZOMB
