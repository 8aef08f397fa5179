"""containerd 1.6 (runc v2 shim) through `ctr run --runc-binary RUNTIME`."""
import pytest

from clients import IMAGE, in_pty, runtime_path, runtime_state, wait_for

pytestmark = pytest.mark.clients

IDLE = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1 & wait $!; done"]


def run_detached(ctr, runtime, name, *args):
    p = ctr("run", "-d", "--runc-binary", runtime_path(runtime), IMAGE, name, *(args or IDLE))
    assert p.returncode == 0, p.stderr
    return task_pid(ctr, name)


def task_row(ctr, name):
    for line in ctr("tasks", "list").stdout.splitlines()[1:]:
        f = line.split()
        if f and f[0] == name:
            return f  # TASK PID STATUS
    return None


def task_pid(ctr, name):
    row = wait_for(lambda: task_row(ctr, name), 10, f"task {name}")
    return int(row[1])


def task_status(ctr, name):
    row = task_row(ctr, name)
    return row[2] if row else None


def remove(ctr, name):
    ctr("tasks", "kill", "-s", "SIGKILL", name)
    wait_for(lambda: task_status(ctr, name) in (None, "STOPPED"), 10, "task stopped")
    ctr("tasks", "delete", name)
    p = ctr("containers", "delete", name)
    assert p.returncode == 0, p.stderr


def test_run_rm_output_and_exit_code(ctr, runtime, name):
    p = ctr("run", "--rm", "--runc-binary", runtime_path(runtime), IMAGE, name,
            "sh", "-c", "echo hi-$((40+2)); exit 4")
    assert p.stdout == "hi-42\n", p.stderr
    assert p.returncode == 4, p.stderr
    assert name not in ctr.containers()


def test_detached_ps_kill_delete(ctr, runtime, name):
    pid = run_detached(ctr, runtime, name)
    assert task_status(ctr, name) == "RUNNING"
    # the shim's runtime root: the runtime's own `state` knows the container
    rs = runtime_state(runtime, f"/run/containerd/runc/{ctr.ns}", name)
    assert rs and rs["status"] == "running" and rs["pid"] == pid, rs
    p = ctr("tasks", "ps", name)
    assert p.returncode == 0, p.stderr
    pids = [int(line.split()[0]) for line in p.stdout.splitlines()[1:] if line.split()]
    assert pid in pids and len(pids) >= 2, p.stdout   # sh and its sleep
    # delete of a running task is refused
    assert ctr("tasks", "delete", name).returncode != 0
    # graceful: SIGTERM, the trap exits 0
    assert ctr("tasks", "kill", name).returncode == 0
    wait_for(lambda: task_status(ctr, name) == "STOPPED", 15, "task stopped after SIGTERM")
    p = ctr("tasks", "delete", name)
    assert p.returncode == 0, p.stderr
    assert "status 0" in p.stdout or p.stdout == "", p.stdout
    assert ctr("containers", "delete", name).returncode == 0
    assert name not in ctr.containers()


def test_kill_sigkill_exit_status(ctr, runtime, name):
    run_detached(ctr, runtime, name)
    assert ctr("tasks", "kill", "-s", "SIGKILL", name).returncode == 0
    wait_for(lambda: task_status(ctr, name) == "STOPPED", 15, "task stopped after SIGKILL")
    p = ctr("tasks", "delete", name)
    assert p.returncode == 0, p.stderr
    assert "137" in p.stdout + p.stderr, (p.stdout, p.stderr)
    assert ctr("containers", "delete", name).returncode == 0


def test_task_exec(ctr, runtime, name):
    run_detached(ctr, runtime, name)
    p = ctr("tasks", "exec", "--exec-id", "e1", name, "sh", "-c", "echo ex-$((1+1)); exit 6")
    assert p.stdout == "ex-2\n", p.stderr
    assert p.returncode == 6, p.stderr
    remove(ctr, name)


def test_pause_resume(ctr, runtime, name):
    run_detached(ctr, runtime, name)
    assert ctr("tasks", "pause", name).returncode == 0
    assert task_status(ctr, name) == "PAUSED"
    assert ctr("tasks", "resume", name).returncode == 0
    assert task_status(ctr, name) == "RUNNING"
    remove(ctr, name)


def test_run_tty_real_pty(ctr, runtime, name):
    rc, out = in_pty(ctr.ctr_cmd() + [
        "run", "-t", "--rm", "--runc-binary", runtime_path(runtime), IMAGE, name, "sh", "-c",
        # ctr sizes the console only after the task started (runc alike): wait for it
        # (busybox `stty size` prints an error and exits 0 while the size is unset)
        "i=0; while [ $i -lt 30 ] && ! stty -a 2>/dev/null | grep -q 'rows [1-9]'; do"
        " sleep 0.1; i=$((i+1));"
        "done; stty size;"
        "read line; echo \"got:$line\"; exit 8"],
        env=ctr.env, rows=40, cols=120, steps=[("40 120", b"from-pty\r")])
    assert "40 120" in out and "got:from-pty" in out, out
    assert rc == 8, out
    assert name not in ctr.containers()


def test_task_exec_tty_real_pty(ctr, runtime, name):
    run_detached(ctr, runtime, name)
    rc, out = in_pty(ctr.ctr_cmd() + [
        "tasks", "exec", "-t", "--exec-id", "e2", name, "sh", "-c",
        "i=0; while [ $i -lt 30 ] && ! stty -a 2>/dev/null | grep -q 'rows [1-9]'; do"
        " sleep 0.1; i=$((i+1)); done; stty size; tty; read line; echo \"got:$line\"; exit 5"],
        env=ctr.env, rows=30, cols=70, steps=[("30 70", b"exec-tty\r")])
    assert "30 70" in out and "/dev/pts/" in out and "got:exec-tty" in out, out
    assert rc == 5, out
    remove(ctr, name)
