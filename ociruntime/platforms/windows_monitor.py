"""The per-container monitor on Windows: ``python -m ociruntime.platforms.windows_monitor
STATE_DIR``, started by ``WindowsPlatform.create``.

It holds the only handle to the container's Job Object (KILL_ON_JOB_CLOSE: when the monitor
exits, whatever is left in the job is killed, like a pid namespace losing its init), creates
the process suspended, assigns it to the job and only then lets it run, when ``start`` sets the
named start event. It writes ``monitor.ready`` ({"pid"} or {"error"}) and, when the process
exits, ``exit.json`` ({"exit"}), then exits itself.
"""
import ctypes
import os
import sys

from . import _win32 as W
from .windows import EXIT_FILE, READY_FILE, JobLimits


def _write(state_dir, name, doc):
    from .. import jsonfast
    p = os.path.join(state_dir, name)
    with open(p + ".tmp", "w") as f:
        f.write(jsonfast.dumps(doc))
    os.replace(p + ".tmp", p)


def _std_handles(stdio):
    """Inheritable handles for the container's stdin/stdout/stderr: the files named in
    ``stdio`` or the monitor's own standard handles."""
    import msvcrt
    handles, keep = [], []
    modes = ("rb", "ab", "ab")
    for i in range(3):
        name = stdio[i] if i < len(stdio) else None
        if name:
            f = open(name, modes[i])
            keep.append(f)
            fd = f.fileno()
        else:
            fd = i
        try:
            os.set_inheritable(fd, True)
            handles.append(msvcrt.get_osfhandle(fd))
        except OSError:
            handles.append(None)
    return handles, keep


def run(state_dir):
    from .. import jsonfast
    with open(os.path.join(state_dir, "monitor.json"), "rb") as f:
        doc = jsonfast.loads(f.read())
    k = W.kernel32()
    job = W.check(k.CreateJobObjectW(None, doc["job"]), "CreateJobObjectW")
    ext, cpu, ui = W.job_structs(JobLimits.from_dict(doc["limits"]))
    W.set_job_info(job, W.JobObjectExtendedLimitInformation, ext)
    W.set_job_info(job, W.JobObjectBasicUIRestrictions, ui)
    if cpu is not None:
        W.set_job_info(job, W.JobObjectCpuRateControlInformation, cpu)
    start = W.check(k.CreateEventW(None, True, False, doc["event"]), "CreateEventW")

    handles, keep = _std_handles(doc.get("stdio") or [])
    si = W.STARTUPINFOW()
    si.cb = ctypes.sizeof(si)
    si.dwFlags = W.STARTF_USESTDHANDLES
    si.hStdInput, si.hStdOutput, si.hStdError = handles
    pi = W.PROCESS_INFORMATION()
    env = W.env_block(doc["env"])
    cmdline = ctypes.create_unicode_buffer(doc["cmdline"])  # CreateProcessW may write to it
    W.check(k.CreateProcessW(doc["app"], cmdline, None, None, True,
                             W.CREATE_SUSPENDED | W.CREATE_UNICODE_ENVIRONMENT |
                             W.CREATE_NEW_PROCESS_GROUP | W.CREATE_NO_WINDOW, env, doc["cwd"],
                             ctypes.byref(si),
                             ctypes.byref(pi)), f"CreateProcessW {doc['app']}")
    for f in keep:
        f.close()
    if not k.AssignProcessToJobObject(job, pi.hProcess):
        err = ctypes.get_last_error()
        k.TerminateProcess(pi.hProcess, 1)
        raise OSError(None, f"AssignProcessToJobObject: {ctypes.FormatError(err)}")
    _write(state_dir, READY_FILE, {"pid": pi.dwProcessId})

    # created: wait for start (the event) or for the process to be terminated (kill/delete)
    objs = (W.HANDLE * 2)(start, pi.hProcess)
    r = k.WaitForMultipleObjects(2, objs, False, W.INFINITE)
    if r == W.WAIT_OBJECT_0:
        if k.ResumeThread(pi.hThread) == 0xFFFFFFFF:
            k.TerminateJobObject(job, 1)
    k.WaitForSingleObject(pi.hProcess, W.INFINITE)
    code = W.DWORD()
    k.GetExitCodeProcess(pi.hProcess, ctypes.byref(code))
    _write(state_dir, EXIT_FILE, {"exit": code.value})
    for h in (pi.hThread, pi.hProcess, start, job):  # closing the job kills what is left
        k.CloseHandle(h)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    state_dir = argv[0]
    try:
        run(state_dir)
    except Exception as e:  # reported to create through monitor.ready
        msg = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        if not os.path.exists(os.path.join(state_dir, READY_FILE)):
            _write(state_dir, READY_FILE, {"error": msg or type(e).__name__})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
