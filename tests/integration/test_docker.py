"""docker 20.10 (dockerd + its managed containerd) with ocirun registered in daemon.json
`runtimes`; every container uses --network none."""
import json
import os
import time

import pytest

from clients import IMAGE, in_pty, runtime_state, wait_for

pytestmark = pytest.mark.clients

IDLE = ["sh", "-c", "trap 'echo bye; exit 0' TERM; echo ready; "
        "while :; do sleep 1 & wait $!; done"]


def run_detached(docker, runtime, name):
    p = docker("run", "-d", "--network", "none", docker.runtime_flag(runtime), "--name", name,
               IMAGE, *IDLE)
    assert p.returncode == 0, p.stderr
    wait_for(lambda: "ready" in docker("logs", name).stdout, 20, "container output")


def state(docker, name):
    p = docker("inspect", name)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)[0]["State"]


def test_run_output_exit_code_rm(docker, runtime, name):
    p = docker("run", "--rm", "--network", "none", docker.runtime_flag(runtime), "--name", name,
               IMAGE, "sh", "-c", "echo d-$((3*3)); exit 2")
    assert p.stdout == "d-9\n", p.stderr
    assert p.returncode == 2, p.stderr
    assert name not in docker("ps", "-a", "--format", "{{.Names}}").stdout


def test_runtime_is_used(docker, runtime, name):
    run_detached(docker, runtime, name)
    p = docker("inspect", "--format", "{{.HostConfig.Runtime}}", name)
    assert p.stdout.strip() == runtime
    # dockerd 20.10 gives every runtime the root <exec-root>/runtime-runc/moby
    cid = docker("inspect", "--format", "{{.Id}}", name).stdout.strip()
    root = os.path.join(docker.exec_root, "runtime-runc", "moby")
    assert os.path.isdir(os.path.join(root, cid))
    rs = runtime_state(runtime, root, cid)
    assert rs and rs["status"] == "running" and rs["pid"] == state(docker, name)["Pid"], rs
    assert docker("rm", "-f", name).returncode == 0


def test_stop_graceful_top_rm(docker, runtime, name):
    run_detached(docker, runtime, name)
    st = state(docker, name)
    assert st["Status"] == "running" and st["Pid"] > 0
    p = docker("top", name)
    assert p.returncode == 0, p.stderr
    assert str(st["Pid"]) in p.stdout and "sleep 1" in p.stdout, p.stdout
    t0 = time.monotonic()
    p = docker("stop", "-t", "20", name)
    assert p.returncode == 0, p.stderr
    assert time.monotonic() - t0 < 15, "SIGTERM did not stop the container"
    st = state(docker, name)
    assert st["Status"] == "exited" and st["ExitCode"] == 0, st
    assert "bye" in docker("logs", name).stdout
    assert docker("rm", name).returncode == 0
    assert name not in docker("ps", "-a", "--format", "{{.Names}}").stdout


def test_kill_exit_code(docker, runtime, name):
    run_detached(docker, runtime, name)
    assert docker("kill", name).returncode == 0
    p = docker("wait", name)
    assert p.stdout.strip() == "137", (p.stdout, p.stderr)
    assert docker("rm", name).returncode == 0


def test_exec(docker, runtime, name):
    run_detached(docker, runtime, name)
    p = docker("exec", name, "sh", "-c", "echo x-$((5+5)); exit 3")
    assert p.stdout == "x-10\n", p.stderr
    assert p.returncode == 3, p.stderr
    assert docker("rm", "-f", name).returncode == 0


def test_pause_unpause(docker, runtime, name):
    run_detached(docker, runtime, name)
    assert docker("pause", name).returncode == 0
    assert state(docker, name)["Status"] == "paused"
    assert docker("unpause", name).returncode == 0
    assert state(docker, name)["Status"] == "running"
    assert docker("pause", name).returncode == 0
    p = docker("rm", "-f", name)
    assert p.returncode == 0, p.stderr


def test_run_it_real_pty(docker, runtime, name):
    rc, out = in_pty(docker.cli() + [
        "run", "-it", "--rm", "--network", "none", docker.runtime_flag(runtime), "--name", name,
        IMAGE, "sh", "-c",
        # docker sizes the console right after start: wait until it is set
        "i=0; while [ $i -lt 30 ] && ! stty -a 2>/dev/null | grep -q 'rows [1-9]'; do"
        " sleep 0.1; i=$((i+1)); done; stty size; read line; echo \"got:$line\"; exit 6"],
        env=docker.env, rows=25, cols=90, steps=[("25 90", b"docker-in\r")])
    assert "25 90" in out and "got:docker-in" in out, out
    assert rc == 6, out


def test_exec_it_real_pty(docker, runtime, name):
    run_detached(docker, runtime, name)
    rc, out = in_pty(docker.cli() + [
        "exec", "-it", name, "sh", "-c",
        "i=0; while [ $i -lt 30 ] && ! stty -a 2>/dev/null | grep -q 'rows [1-9]'; do"
        " sleep 0.1; i=$((i+1)); done; stty size; read line; echo \"got:$line\"; exit 4"],
        env=docker.env, rows=26, cols=91, steps=[("26 91", b"exec-in\r")])
    assert "26 91" in out and "got:exec-in" in out, out
    assert rc == 4, out
    assert docker("rm", "-f", name).returncode == 0
