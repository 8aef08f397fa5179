"""podman 4.3 (+ conmon) driving the runtime given as the `runtime` parameter."""
import json
import os
import time

import pytest

from clients import DEFAULT_ROOTS, IMAGE, in_pty, runtime_state, wait_for

pytestmark = pytest.mark.clients

# pid 1 that exits 0 on SIGTERM (graceful stop) and otherwise idles
IDLE = ["sh", "-c", "trap 'echo bye; exit 0' TERM; echo ready; "
        "while :; do sleep 1 & wait $!; done"]


def run_detached(podman, runtime, name, *extra):
    p = podman("run", "-d", "--name", name, *extra, IMAGE, *IDLE, runtime=runtime)
    assert p.returncode == 0, p.stderr
    wait_for(lambda: "ready" in podman("logs", name).stdout, 20, "container output")
    return p.stdout.strip()


def inspect(podman, name):
    p = podman("inspect", name)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)[0]


def test_run_rm_output_and_exit_code(podman, runtime, name):
    p = podman("run", "--rm", "--name", name, IMAGE, "sh", "-c", "echo hello-$((6*7)); exit 3",
               runtime=runtime)
    assert p.returncode == 3, p.stderr
    assert p.stdout == "hello-42\n", p.stderr
    assert name not in podman("ps", "-a", "--format", "{{.Names}}").stdout


def test_kill_exit_code(podman, runtime, name):
    run_detached(podman, runtime, name)
    p = podman("kill", "-s", "KILL", name)
    assert p.returncode == 0, p.stderr
    p = podman("wait", name)
    assert p.returncode == 0 and p.stdout.strip() == "137", (p.stdout, p.stderr)
    assert inspect(podman, name)["State"]["Status"] == "exited"
    assert podman("rm", name).returncode == 0


def test_detached_stop_graceful_rm(podman, runtime, name):
    cid = run_detached(podman, runtime, name)
    st = inspect(podman, name)["State"]
    assert st["Status"] == "running" and st["Pid"] > 0
    # the container is the runtime's: its own `state` knows it
    rs = runtime_state(runtime, DEFAULT_ROOTS[runtime], cid)
    assert rs and rs["status"] == "running" and rs["pid"] == st["Pid"], rs
    assert name in podman("ps", "--format", "{{.Names}}").stdout
    t0 = time.monotonic()
    p = podman("stop", "-t", "20", name)
    took = time.monotonic() - t0
    assert p.returncode == 0, p.stderr
    assert took < 15, f"stop took {took:.1f} s: SIGTERM did not reach the container"
    st = inspect(podman, name)["State"]
    assert st["Status"] == "exited" and st["ExitCode"] == 0, st
    assert "bye" in podman("logs", name).stdout
    assert podman("rm", name).returncode == 0
    assert podman("inspect", name).returncode != 0


def test_top_and_ps(podman, runtime, name):
    cid = run_detached(podman, runtime, name)
    p = podman("top", name)
    assert p.returncode == 0, p.stderr
    assert "PID" in p.stdout.splitlines()[0]
    assert "sh -c trap" in p.stdout, p.stdout
    p = podman("top", name, "pid", "args")
    assert p.returncode == 0 and "sleep 1" in p.stdout, p.stdout + p.stderr
    p = podman("ps", "--no-trunc", "--format", "{{.ID}} {{.Names}} {{.Status}}")
    line = [x for x in p.stdout.splitlines() if name in x]
    assert line and line[0].startswith(cid) and "Up" in line[0], p.stdout
    assert podman("rm", "-f", "-t", "0", name).returncode == 0


def test_exec_exit_code_and_output(podman, runtime, name):
    run_detached(podman, runtime, name)
    p = podman("exec", name, "sh", "-c", "cat /etc/hostname >/dev/null; echo in-$((2+3)); exit 5")
    assert p.returncode == 5, p.stderr
    assert p.stdout == "in-5\n"
    p = podman("exec", name, "sh", "-c", "kill -TERM $$")
    assert p.returncode == 143, p.stderr
    assert podman("exec", name, "/nonexistent").returncode == 127
    assert podman("rm", "-f", "-t", "0", name).returncode == 0


def freezer_state(pid):
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            if "freezer" in ctrls.split(","):
                with open(f"/sys/fs/cgroup/freezer{path}/freezer.state") as g:
                    return g.read().strip()
    with open(f"/proc/{pid}/cgroup") as f:  # cgroup v2
        path = f.read().split("::", 1)[1].strip()
    with open(f"/sys/fs/cgroup{path}/cgroup.freeze") as g:
        return "FROZEN" if g.read().strip() == "1" else "THAWED"


def test_pause_unpause(podman, runtime, name):
    run_detached(podman, runtime, name)
    pid = inspect(podman, name)["State"]["Pid"]
    assert podman("pause", name).returncode == 0
    assert inspect(podman, name)["State"]["Status"] == "paused"
    assert freezer_state(pid) == "FROZEN"
    assert podman("unpause", name).returncode == 0
    assert inspect(podman, name)["State"]["Status"] == "running"
    assert freezer_state(pid) == "THAWED"
    # a paused container can still be removed (thawed to die)
    assert podman("pause", name).returncode == 0
    p = podman("rm", "-f", "-t", "0", name)
    assert p.returncode == 0, p.stderr


def test_run_it_real_pty(podman, runtime, name):
    rc, out = in_pty(podman.argv(
        "run", "-it", "--rm", "--name", name, IMAGE, "sh", "-c",
        "stty size; tty; read line; echo \"got:$line\"; exit 7", runtime=runtime),
        env=podman.env, steps=[("33 101", b"hello there\r")])
    assert "33 101" in out, out
    assert "/dev/pts/" in out, out
    assert "got:hello there" in out, out
    assert rc == 7, out


def test_exec_it_real_pty(podman, runtime, name):
    run_detached(podman, runtime, name)
    rc, out = in_pty(podman.argv(
        "exec", "-it", name, "sh", "-c", "stty size; read line; echo \"got:$line\"; exit 9"),
        env=podman.env, rows=21, cols=77, steps=[("21 77", b"typed\r")])
    assert "21 77" in out and "got:typed" in out, out
    assert rc == 9, out
    assert podman("rm", "-f", "-t", "0", name).returncode == 0


def test_json_error_logging(podman, runtime, name):
    """runtime_supports_json lists the runtime: podman passes --log FILE --log-format json; the
    runtime's error arrives as JSON lines and podman shows the message (not the JSON)."""
    p = podman("run", "--name", name, IMAGE, "/nonexistent-cmd", runtime=runtime)
    assert p.returncode == 127, p.stderr
    assert "/nonexistent-cmd" in p.stderr and "no such file or directory" in p.stderr, p.stderr
    assert '{"level"' not in p.stderr
    cid = inspect(podman, name)["Id"]
    log = os.path.join(podman.dirs["run"], "overlay-containers", cid, "userdata", "oci-log")
    with open(log) as f:
        lines = [json.loads(x) for x in f.read().splitlines() if x.strip()]
    assert lines, f"{log} is empty"
    assert all(set(x) >= {"level", "msg", "time"} for x in lines), lines
    assert lines[-1]["level"] == "error" and "/nonexistent-cmd" in lines[-1]["msg"], lines
    # again: the log now has two lines; podman still shows the runtime's message
    p = podman("start", name)
    assert p.returncode != 0
    assert "/nonexistent-cmd" in p.stderr and "no such file or directory" in p.stderr, p.stderr
    with open(log) as f:
        assert len([json.loads(x) for x in f.read().splitlines() if x.strip()]) == 2
    assert podman("rm", name).returncode == 0


def test_rlimit_error_reported(podman, runtime, name):
    """No CAP_SYS_RESOURCE here: raising a hard limit fails with the runtime's rlimit error."""
    p = podman("run", "--rm", "--name", name, "--ulimit", "nofile=1048576:1048576", IMAGE, "true",
               runtime=runtime)
    assert p.returncode != 0
    assert "rlimit" in p.stderr and "operation not permitted" in p.stderr, p.stderr
