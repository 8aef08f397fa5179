"""The Windows monitor and lifecycle against a fake kernel32 (a test double of the ctypes
calls): the order that makes a Job Object race-free — create suspended, assign to the job,
and only resume after ``start`` — and the state/kill/start/delete logic. The real calls run
on windows-latest (tests/platform/test_real_windows.py)."""
import ctypes
import json
import os

import pytest

from ociruntime.errors import StateError
from ociruntime.platforms import _win32 as W
from ociruntime.platforms import windows, windows_monitor
from ociruntime.platforms.base import CREATED, RUNNING, STOPPED


class FakeKernel32:
    def __init__(self, wait_result=W.WAIT_OBJECT_0, exit_code=7):
        self.calls = []
        self.wait_result = wait_result
        self.exit_code = exit_code
        self.infos = {}
        self.jobs = {}          # name -> active processes
        self.events_set = []
        self.terminated = []

    def _rec(self, name, *args):
        self.calls.append((name,) + args)

    def CreateJobObjectW(self, sa, name):
        self._rec("CreateJobObjectW", name)
        return 100

    def SetInformationJobObject(self, job, cls, ref, size):
        st = ref._obj
        assert size == ctypes.sizeof(st)
        self.infos[cls] = type(st).from_buffer_copy(st)
        self._rec("SetInformationJobObject", cls)
        return 1

    def CreateEventW(self, sa, manual, initial, name):
        self._rec("CreateEventW", name, manual, initial)
        return 200

    def CreateProcessW(self, app, cmdline, pa, ta, inherit, flags, env, cwd, si, pi):
        self._rec("CreateProcessW", app, cmdline.value, flags, cwd, inherit)
        self.env = ctypes.wstring_at(ctypes.addressof(env), len(env) - 1)
        p = pi._obj
        p.hProcess, p.hThread, p.dwProcessId, p.dwThreadId = 300, 301, 4242, 4243
        return 1

    def AssignProcessToJobObject(self, job, proc):
        self._rec("AssignProcessToJobObject", job, proc)
        return 1

    def WaitForMultipleObjects(self, n, objs, wait_all, ms):
        self._rec("WaitForMultipleObjects", n, list(objs), wait_all)
        return self.wait_result

    def ResumeThread(self, h):
        self._rec("ResumeThread", h)
        return 1

    def WaitForSingleObject(self, h, ms):
        self._rec("WaitForSingleObject", h)
        return 0

    def GetExitCodeProcess(self, h, ref):
        ref._obj.value = self.exit_code
        return 1

    def TerminateProcess(self, h, code):
        self._rec("TerminateProcess", h, code)
        return 1

    def CloseHandle(self, h):
        self._rec("CloseHandle", h)
        return 1

    # used by WindowsPlatform
    def OpenJobObjectW(self, access, inherit, name):
        return 500 if name in self.jobs else None

    def QueryInformationJobObject(self, h, cls, ref, size, ret):
        assert cls == W.JobObjectBasicAccountingInformation
        ref._obj.ActiveProcesses = next(iter(self.jobs.values()))
        return 1

    def TerminateJobObject(self, h, code):
        self.terminated.append(code)
        for k in self.jobs:
            self.jobs[k] = 0
        return 1

    def OpenEventW(self, access, inherit, name):
        return 600

    def SetEvent(self, h):
        self.events_set.append(h)
        return 1

    def OpenProcess(self, access, inherit, pid):
        return None


def _monitor_doc(tmp_path, limits):
    job, event = windows.object_names(str(tmp_path))
    doc = {"limits": limits.as_dict(), "app": "C:\\Windows\\System32\\cmd.exe",
           "cmdline": 'cmd /c "echo hi"', "env": ["PATH=C:\\x", "A=1"], "cwd": "C:\\work",
           "job": job, "event": event, "stdio": []}
    (tmp_path / "monitor.json").write_text(json.dumps(doc))
    return doc


@pytest.fixture
def fake(monkeypatch):
    k = FakeKernel32()
    monkeypatch.setattr(W, "kernel32", lambda: k)
    monkeypatch.setattr(windows_monitor, "_std_handles", lambda stdio: ([1, 2, 3], []))
    return k


def test_monitor_creates_suspended_assigns_then_resumes(tmp_path, fake):
    lim = windows.JobLimits()
    lim.job_memory, lim.flags = 1 << 20, lim.flags | W.JOB_OBJECT_LIMIT_JOB_MEMORY
    lim.cpu_control, lim.cpu_value = W.JOB_OBJECT_CPU_RATE_CONTROL_ENABLE | \
        W.JOB_OBJECT_CPU_RATE_CONTROL_HARD_CAP, 2500
    doc = _monitor_doc(tmp_path, lim)
    ready_seen = []
    orig = fake.WaitForMultipleObjects

    def wait_multi(*a):  # the pid is reported before the monitor waits for start
        ready_seen.append(json.loads((tmp_path / windows.READY_FILE).read_text()))
        return orig(*a)
    fake.WaitForMultipleObjects = wait_multi
    assert windows_monitor.main([str(tmp_path)]) == 0
    names = [c[0] for c in fake.calls]
    assert names[:5] == ["CreateJobObjectW", "SetInformationJobObject",
                         "SetInformationJobObject", "SetInformationJobObject", "CreateEventW"]
    i_create, i_assign = names.index("CreateProcessW"), names.index("AssignProcessToJobObject")
    i_wait, i_resume = names.index("WaitForMultipleObjects"), names.index("ResumeThread")
    assert i_create < i_assign < i_wait < i_resume
    create = fake.calls[i_create]
    assert create[1:4] == (doc["app"], doc["cmdline"], W.CREATE_SUSPENDED |
                           W.CREATE_UNICODE_ENVIRONMENT | W.CREATE_NEW_PROCESS_GROUP |
                           W.CREATE_NO_WINDOW)
    assert create[4] == "C:\\work"
    assert fake.calls[i_assign][1:] == (100, 300)
    assert fake.calls[i_resume][1:] == (301,)
    assert fake.calls[names.index("CreateJobObjectW")][1] == doc["job"]
    assert ready_seen == [{"pid": 4242}]
    assert fake.env == "A=1\0PATH=C:\\x\0"
    ext = fake.infos[W.JobObjectExtendedLimitInformation]
    assert ext.JobMemoryLimit == 1 << 20
    assert ext.BasicLimitInformation.LimitFlags & W.JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
    assert fake.infos[W.JobObjectCpuRateControlInformation].Value == 2500
    assert fake.infos[W.JobObjectBasicUIRestrictions].UIRestrictionsClass == 0xFF
    assert json.loads((tmp_path / windows.EXIT_FILE).read_text()) == {"exit": 7}
    assert ("CloseHandle", 100) in fake.calls[i_resume:]  # the job is closed last


def test_monitor_never_resumes_a_process_killed_before_start(tmp_path, fake):
    fake.wait_result = W.WAIT_OBJECT_0 + 1  # the process handle, not the start event
    fake.exit_code = 137
    _monitor_doc(tmp_path, windows.JobLimits())
    assert windows_monitor.main([str(tmp_path)]) == 0
    assert "ResumeThread" not in [c[0] for c in fake.calls]
    assert json.loads((tmp_path / windows.EXIT_FILE).read_text()) == {"exit": 137}


def test_monitor_reports_failures_to_create(tmp_path, fake, monkeypatch):
    _monitor_doc(tmp_path, windows.JobLimits())
    fake.AssignProcessToJobObject = lambda job, proc: 0
    monkeypatch.setattr(ctypes, "get_last_error", lambda: 5, raising=False)
    monkeypatch.setattr(ctypes, "FormatError", lambda e: "Access is denied.", raising=False)
    assert windows_monitor.main([str(tmp_path)]) == 1
    ready = json.loads((tmp_path / windows.READY_FILE).read_text())
    assert ready == {"error": "AssignProcessToJobObject: Access is denied."}
    assert ("TerminateProcess", 300, 1) in fake.calls  # never left running outside the job


@pytest.fixture
def plat(tmp_path, fake):
    job, event = windows.object_names(str(tmp_path))
    (tmp_path / windows.STATE_FILE).write_text(json.dumps(
        {"platform": "windows", "id": "c1", "pid": 4242, "monitor": 1, "job": job,
         "event": event, "started": False}))
    fake.jobs[job] = 1
    return windows.WindowsPlatform(), str(tmp_path), fake


def test_state_start_kill_delete(plat):
    p, sd, fake = plat
    assert p.state(sd).status == CREATED
    p.start(sd)
    assert fake.events_set == [600]
    assert p.state(sd).status == RUNNING
    with pytest.raises(StateError, match="not created"):
        p.start(sd)
    with pytest.raises(StateError, match="still running"):
        p.delete(sd)
    p.kill(sd, 15)
    assert fake.terminated == [128 + 15]
    assert p.state(sd).status == STOPPED
    with pytest.raises(StateError, match="container not running"):
        p.kill(sd, 9)
    with open(os.path.join(sd, windows.EXIT_FILE), "w") as f:
        f.write('{"exit": 143}')
    assert p.wait(sd, 1) == 143 and p.state(sd).exit_code == 143
    p.delete(sd)
    assert os.listdir(sd) == []


def test_delete_force_terminates_the_job(plat):
    p, sd, fake = plat
    p.start(sd)
    fake_job = next(iter(fake.jobs))
    orig = fake.TerminateJobObject

    def terminate(h, code):  # the monitor records the exit when the job empties
        with open(os.path.join(sd, windows.EXIT_FILE), "w") as f:
            f.write(json.dumps({"exit": code}))
        del fake.jobs[fake_job]
        return orig(h, code) if fake.jobs else 1
    fake.TerminateJobObject = terminate
    p.delete(sd, force=True)
    assert os.listdir(sd) == []


def test_job_gone_without_exit_record_is_stopped(plat):
    p, sd, fake = plat
    fake.jobs.clear()
    st = p.state(sd)
    assert (st.status, st.exit_code) == (STOPPED, None)
    assert p.wait(sd, 1) is None
