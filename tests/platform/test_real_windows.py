"""The Windows backend for real: a Job Object per container, created suspended, limits
enforced, kill/state/delete. Runs on windows-latest (.github/workflows/windows.yml); skipped
elsewhere."""
import ctypes
import json
import os
import sys
import time

import pytest

pytestmark = pytest.mark.skipif(sys.platform != "win32", reason="needs Windows (Job Objects)")

from ociruntime import platforms  # noqa: E402
from ociruntime.platforms.base import CREATED, RUNNING, STOPPED  # noqa: E402


def alive(pid):
    k = ctypes.WinDLL("kernel32", use_last_error=True)
    k.OpenProcess.restype = ctypes.c_void_p
    h = k.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not h:
        return False
    code = ctypes.c_uint32()
    k.GetExitCodeProcess(ctypes.c_void_p(h), ctypes.byref(code))
    k.CloseHandle(ctypes.c_void_p(h))
    return code.value == 259  # STILL_ACTIVE


@pytest.fixture
def win(tmp_path):
    bundle = tmp_path / "bundle"
    (bundle / "rootfs").mkdir(parents=True)
    state = tmp_path / "state"
    state.mkdir()
    p = platforms.current()
    assert p.name == "windows"

    class Win:
        platform, sd, out = p, str(state), str(tmp_path / "out.txt")
        tmp = tmp_path

        def create(self, code, **extra):
            cfg = {"ociVersion": "1.3.0",
                   "process": {"args": [sys.executable, "-c", code], "cwd": str(tmp_path),
                               "env": [f"PATH={os.environ['PATH']}"]},
                   "root": {"path": "rootfs"}}
            for k, v in extra.items():
                cfg.setdefault(k, {}).update(v)
            (bundle / "config.json").write_text(json.dumps(cfg))
            return platforms.create("c1", str(bundle), self.sd, platform=p,
                                    stdio=(None, self.out, self.out))

        def run(self, code, timeout=60, **extra):
            self.create(code, **extra)
            p.start(self.sd)
            rc = p.wait(self.sd, timeout)
            p.delete(self.sd)
            with open(self.out) as f:
                return rc, f.read()

    w = Win()
    yield w
    try:
        p.delete(w.sd, force=True)
    except Exception:
        pass


def test_run_and_exit_code(win):
    rc, out = win.run("import os, sys; print('hello', os.getcwd()); sys.exit(3)")
    assert rc == 3 and out.startswith("hello ")


def test_created_is_suspended_until_start(win):
    pid = win.create("print('ran')")
    p, sd = win.platform, win.sd
    time.sleep(1)
    assert p.state(sd).status == CREATED and p.state(sd).pid == pid
    assert open(win.out).read() == ""
    p.start(sd)
    assert p.wait(sd, 60) == 0
    assert open(win.out).read() == "ran\n"
    p.delete(sd)


def test_job_memory_limit(win):
    rc, out = win.run("b = bytearray(512 << 20)",
                      windows={"resources": {"memory": {"limit": 128 << 20}}})
    assert rc != 0 and "MemoryError" in out


def test_active_process_limit(win):
    rc, out = win.run("import subprocess, sys; subprocess.run([sys.executable, '-c', 'pass'])",
                      linux={"resources": {"pids": {"limit": 1}}})
    assert rc != 0 and "Error" in out


def test_kill_terminates_the_job_and_state_follows(win):
    win.create("import time; time.sleep(120)")
    p, sd = win.platform, win.sd
    p.start(sd)
    assert p.state(sd).status == RUNNING
    p.kill(sd, 15)
    assert p.wait(sd, 60) == 128 + 15
    assert p.state(sd).status == STOPPED
    p.delete(sd)
    assert os.listdir(sd) == []


def test_leftover_processes_die_with_the_job(win):
    code = ("import subprocess, sys, time; "
            "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)']); "
            "print(c.pid, flush=True)")
    rc, out = win.run(code)
    assert rc == 0
    child = int(out.split()[0])
    deadline = time.monotonic() + 30
    while alive(child):
        assert time.monotonic() < deadline, "a process of the job survived its container"
        time.sleep(0.1)


def test_hyperv_refused(win):
    from ociruntime.errors import Unsupported
    with pytest.raises(Unsupported, match="Hyper-V"):
        win.create("pass", windows={"hyperv": {}})
