"""Windows ctypes (the Windows counterpart of linux/syscalls.py): Job Objects, processes,
events. Structures are plain ctypes and import anywhere (tests check their sizes on Linux);
``kernel32()`` touches ``ctypes.WinDLL`` and is only ever called on Windows.

Layouts and constants are from winnt.h / processthreadsapi.h / jobapi2.h.
"""
import ctypes
from ctypes import c_int64, c_size_t, c_uint16, c_uint32, c_uint64, c_void_p, c_wchar_p

DWORD, WORD, LARGE_INTEGER, SIZE_T, ULONG_PTR, HANDLE = (c_uint32, c_uint16, c_int64, c_size_t,
                                                         c_size_t, c_void_p)

# JOBOBJECTINFOCLASS
JobObjectBasicAccountingInformation = 1
JobObjectBasicUIRestrictions = 4
JobObjectExtendedLimitInformation = 9
JobObjectCpuRateControlInformation = 15

# JOBOBJECT_BASIC_LIMIT_INFORMATION.LimitFlags
JOB_OBJECT_LIMIT_PROCESS_TIME = 0x2
JOB_OBJECT_LIMIT_ACTIVE_PROCESS = 0x8
JOB_OBJECT_LIMIT_AFFINITY = 0x10
JOB_OBJECT_LIMIT_PROCESS_MEMORY = 0x100
JOB_OBJECT_LIMIT_JOB_MEMORY = 0x200
JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION = 0x400
JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE = 0x2000

# JOBOBJECT_CPU_RATE_CONTROL_INFORMATION.ControlFlags
JOB_OBJECT_CPU_RATE_CONTROL_ENABLE = 0x1
JOB_OBJECT_CPU_RATE_CONTROL_WEIGHT_BASED = 0x2
JOB_OBJECT_CPU_RATE_CONTROL_HARD_CAP = 0x4

# JOBOBJECT_BASIC_UI_RESTRICTIONS.UIRestrictionsClass
JOB_OBJECT_UILIMIT_HANDLES = 0x1
JOB_OBJECT_UILIMIT_READCLIPBOARD = 0x2
JOB_OBJECT_UILIMIT_WRITECLIPBOARD = 0x4
JOB_OBJECT_UILIMIT_SYSTEMPARAMETERS = 0x8
JOB_OBJECT_UILIMIT_DISPLAYSETTINGS = 0x10
JOB_OBJECT_UILIMIT_GLOBALATOMS = 0x20
JOB_OBJECT_UILIMIT_DESKTOP = 0x40
JOB_OBJECT_UILIMIT_EXITWINDOWS = 0x80
JOB_OBJECT_UILIMIT_ALL = 0xFF

# access rights, creation flags, waits
JOB_OBJECT_QUERY = 0x4
JOB_OBJECT_TERMINATE = 0x8
EVENT_MODIFY_STATE = 0x2
SYNCHRONIZE = 0x100000
CREATE_SUSPENDED = 0x4
CREATE_NEW_PROCESS_GROUP = 0x200
CREATE_UNICODE_ENVIRONMENT = 0x400
CREATE_NO_WINDOW = 0x08000000
STARTF_USESTDHANDLES = 0x100
INFINITE = 0xFFFFFFFF
WAIT_OBJECT_0 = 0
WAIT_FAILED = 0xFFFFFFFF
STD_HANDLES = (-10, -11, -12)


class JOBOBJECT_BASIC_LIMIT_INFORMATION(ctypes.Structure):
    _fields_ = [("PerProcessUserTimeLimit", LARGE_INTEGER), ("PerJobUserTimeLimit", LARGE_INTEGER),
                ("LimitFlags", DWORD), ("MinimumWorkingSetSize", SIZE_T),
                ("MaximumWorkingSetSize", SIZE_T), ("ActiveProcessLimit", DWORD),
                ("Affinity", ULONG_PTR), ("PriorityClass", DWORD), ("SchedulingClass", DWORD)]


class IO_COUNTERS(ctypes.Structure):
    _fields_ = [(n, c_uint64) for n in ("ReadOperationCount", "WriteOperationCount",
                                        "OtherOperationCount", "ReadTransferCount",
                                        "WriteTransferCount", "OtherTransferCount")]


class JOBOBJECT_EXTENDED_LIMIT_INFORMATION(ctypes.Structure):
    _fields_ = [("BasicLimitInformation", JOBOBJECT_BASIC_LIMIT_INFORMATION),
                ("IoInfo", IO_COUNTERS), ("ProcessMemoryLimit", SIZE_T),
                ("JobMemoryLimit", SIZE_T), ("PeakProcessMemoryUsed", SIZE_T),
                ("PeakJobMemoryUsed", SIZE_T)]


class JOBOBJECT_CPU_RATE_CONTROL_INFORMATION(ctypes.Structure):
    # the union {CpuRate; Weight; {MinRate, MaxRate}} is one DWORD: CpuRate or Weight
    _fields_ = [("ControlFlags", DWORD), ("Value", DWORD)]


class JOBOBJECT_BASIC_UI_RESTRICTIONS(ctypes.Structure):
    _fields_ = [("UIRestrictionsClass", DWORD)]


class JOBOBJECT_BASIC_ACCOUNTING_INFORMATION(ctypes.Structure):
    _fields_ = [("TotalUserTime", LARGE_INTEGER), ("TotalKernelTime", LARGE_INTEGER),
                ("ThisPeriodTotalUserTime", LARGE_INTEGER),
                ("ThisPeriodTotalKernelTime", LARGE_INTEGER),
                ("TotalPageFaultCount", DWORD), ("TotalProcesses", DWORD),
                ("ActiveProcesses", DWORD), ("TotalTerminatedProcesses", DWORD)]


class STARTUPINFOW(ctypes.Structure):
    _fields_ = [("cb", DWORD), ("lpReserved", c_wchar_p), ("lpDesktop", c_wchar_p),
                ("lpTitle", c_wchar_p), ("dwX", DWORD), ("dwY", DWORD), ("dwXSize", DWORD),
                ("dwYSize", DWORD), ("dwXCountChars", DWORD), ("dwYCountChars", DWORD),
                ("dwFillAttribute", DWORD), ("dwFlags", DWORD), ("wShowWindow", WORD),
                ("cbReserved2", WORD), ("lpReserved2", c_void_p), ("hStdInput", HANDLE),
                ("hStdOutput", HANDLE), ("hStdError", HANDLE)]


class PROCESS_INFORMATION(ctypes.Structure):
    _fields_ = [("hProcess", HANDLE), ("hThread", HANDLE), ("dwProcessId", DWORD),
                ("dwThreadId", DWORD)]


def job_structs(limits):
    """JobLimits (windows.py) → the three structures SetInformationJobObject takes:
    (extended limits, cpu rate control or None, ui restrictions). Pure; testable anywhere."""
    ext = JOBOBJECT_EXTENDED_LIMIT_INFORMATION()
    b = ext.BasicLimitInformation
    b.LimitFlags = limits.flags
    b.PerProcessUserTimeLimit = limits.process_user_time or 0
    b.ActiveProcessLimit = limits.active_processes or 0
    b.Affinity = limits.affinity or 0
    ext.ProcessMemoryLimit = limits.process_memory or 0
    ext.JobMemoryLimit = limits.job_memory or 0
    cpu = None
    if limits.cpu_control:
        cpu = JOBOBJECT_CPU_RATE_CONTROL_INFORMATION(limits.cpu_control, limits.cpu_value)
    ui = JOBOBJECT_BASIC_UI_RESTRICTIONS(limits.ui)
    return ext, cpu, ui


_k32 = None


def kernel32():
    """kernel32 with argtypes set; Windows only (ctypes.WinDLL does not exist elsewhere)."""
    global _k32
    if _k32 is not None:
        return _k32
    from ctypes import wintypes as w
    k = ctypes.WinDLL("kernel32", use_last_error=True)
    B, H = w.BOOL, HANDLE
    sig = {
        "CreateJobObjectW": (H, [c_void_p, c_wchar_p]),
        "OpenJobObjectW": (H, [DWORD, B, c_wchar_p]),
        "SetInformationJobObject": (B, [H, ctypes.c_int, c_void_p, DWORD]),
        "QueryInformationJobObject": (B, [H, ctypes.c_int, c_void_p, DWORD,
                                          ctypes.POINTER(DWORD)]),
        "AssignProcessToJobObject": (B, [H, H]),
        "TerminateJobObject": (B, [H, ctypes.c_uint]),
        "CreateProcessW": (B, [c_wchar_p, c_wchar_p, c_void_p, c_void_p, B, DWORD, c_void_p,
                               c_wchar_p, ctypes.POINTER(STARTUPINFOW),
                               ctypes.POINTER(PROCESS_INFORMATION)]),
        "TerminateProcess": (B, [H, ctypes.c_uint]),
        "OpenProcess": (H, [DWORD, B, DWORD]),
        "ResumeThread": (DWORD, [H]),
        "GetExitCodeProcess": (B, [H, ctypes.POINTER(DWORD)]),
        "WaitForSingleObject": (DWORD, [H, DWORD]),
        "WaitForMultipleObjects": (DWORD, [DWORD, ctypes.POINTER(H), B, DWORD]),
        "CreateEventW": (H, [c_void_p, B, B, c_wchar_p]),
        "OpenEventW": (H, [DWORD, B, c_wchar_p]),
        "SetEvent": (B, [H]),
        "CloseHandle": (B, [H]),
        "GetStdHandle": (H, [DWORD]),
        "SetHandleInformation": (B, [H, DWORD, DWORD]),
    }
    for name, (res, args) in sig.items():
        f = getattr(k, name)
        f.restype, f.argtypes = res, args
    _k32 = k
    return k


def check(ok, what):
    """Raise OSError with GetLastError's message when a call failed (0 / NULL)."""
    if not ok:
        err = ctypes.get_last_error()
        raise OSError(None, f"{what}: {ctypes.FormatError(err)}", None, err)
    return ok


def set_job_info(job, cls, struct):
    k = kernel32()
    check(k.SetInformationJobObject(job, cls, ctypes.byref(struct), ctypes.sizeof(struct)),
          f"SetInformationJobObject({cls})")


def job_accounting(job):
    acc = JOBOBJECT_BASIC_ACCOUNTING_INFORMATION()
    check(kernel32().QueryInformationJobObject(job, JobObjectBasicAccountingInformation,
                                               ctypes.byref(acc), ctypes.sizeof(acc), None),
          "QueryInformationJobObject")
    return acc


def env_block(env):
    """KEY=VALUE strings → a CREATE_UNICODE_ENVIRONMENT block (sorted, double-NUL ended)."""
    items = sorted(env, key=lambda kv: kv.partition("=")[0].upper())
    text = "\0".join(items) + "\0\0"
    return ctypes.create_unicode_buffer(text, len(text))
