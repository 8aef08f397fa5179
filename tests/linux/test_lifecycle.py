"""Lifecycle through the real CLI: run, create/start/state/kill/delete, hooks, list, ps."""
import json
import os
import signal
import subprocess
import time

import pytest

from helpers import OCIRUN


def test_run_bundle_made_by_ocirun_spec(ocirun, tmp_path, rootfs_src):
    b = tmp_path / "b"
    b.mkdir()
    subprocess.run(["cp", "-al", rootfs_src, str(b / "rootfs")], check=True)
    subprocess.run([OCIRUN, "spec"], cwd=b, check=True)
    cfg = json.loads((b / "config.json").read_text())
    assert "inheritable" not in cfg["process"]["capabilities"]
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["sh", "-c", "echo hi from $(hostname) pid $$; exit 7"]
    (b / "config.json").write_text(json.dumps(cfg))
    p = ocirun("run", "-b", b, "spec1")
    assert p.stdout == "hi from ocirun pid 1\n", p.stderr
    assert p.returncode == 7
    assert ocirun.ids() == []


def test_run_exit_status_of_signal(ocirun, make_bundle):
    # pid 1 ignores SIGKILL from inside its namespace: kill it from the host
    b = make_bundle(["sleep", "30"])
    p = subprocess.Popen([OCIRUN, "--root", ocirun.root, "run", "-b", b.path, "sig"])
    for _ in range(300):
        if ocirun("state", "sig").returncode == 0 and ocirun.state("sig")["status"] == "running":
            break
        time.sleep(0.01)
    ocirun.ok("kill", "sig", "9")
    assert p.wait(10) == 128 + 9


def test_lifecycle_states(ocirun, make_bundle, tmp_path):
    b = make_bundle(["sleep", "30"])
    pidfile = tmp_path / "pid"
    ocirun.ok("create", "--bundle", b.path, "--pid-file", pidfile, "c1")
    raw = pidfile.read_text()
    assert raw.isdigit() and not raw.endswith("\n")
    st = ocirun.state("c1")
    assert st["status"] == "created" and st["pid"] == int(raw)
    assert st["bundle"] == b.path and st["id"] == "c1" and st["ociVersion"]
    assert st["created"].endswith("Z")
    # the init is blocked before exec: it is not yet the user's program
    assert os.readlink(f"/proc/{st['pid']}/exe") != "/bin/sleep"
    ocirun.ok("start", "c1")
    st = ocirun.state("c1")
    assert st["status"] == "running"
    for _ in range(100):
        if "sleep" in open(f"/proc/{st['pid']}/cmdline").read():
            break
        time.sleep(0.01)
    p = ocirun("start", "c1")
    assert p.returncode == 1 and "already running" in p.stderr
    p = ocirun("delete", "c1")
    assert p.returncode == 1 and p.stderr.strip().endswith(
        "ocirun: cannot delete container c1 that is not stopped: running")
    ocirun.ok("kill", "c1", "KILL")
    for _ in range(200):
        if ocirun.state("c1")["status"] == "stopped":
            break
        time.sleep(0.01)
    assert ocirun.state("c1")["status"] == "stopped"
    p = ocirun("kill", "c1", "9")
    assert p.returncode == 1 and "container not running" in p.stderr
    ocirun.ok("delete", "c1")
    p = ocirun("state", "c1")
    assert p.returncode == 1 and "container does not exist" in p.stderr
    assert not os.path.exists(os.path.join(ocirun.root, "c1"))


@pytest.mark.parametrize("sig", ["15", "TERM", "SIGTERM"])
def test_kill_signal_forms(ocirun, make_bundle, sig):
    b = make_bundle(["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.05; done"])
    ocirun.ok("run", "-d", "-b", b.path, "k")
    ocirun.ok("kill", "k", sig)
    for _ in range(200):
        if ocirun.state("k")["status"] == "stopped":
            break
        time.sleep(0.01)
    assert ocirun.state("k")["status"] == "stopped"
    ocirun.ok("delete", "k")


def test_delete_force_running_and_unknown(ocirun, make_bundle):
    b = make_bundle(["sleep", "30"])
    ocirun.ok("run", "-d", "-b", b.path, "f1")
    assert ocirun.state("f1")["status"] == "running"
    ocirun.ok("delete", "--force", "f1")
    assert ocirun.ids() == []
    assert ocirun("delete", "--force", "nosuch").returncode == 0
    assert ocirun("delete", "-force", "nosuch").returncode == 0  # Go-style single dash


def test_delete_created_container(ocirun, make_bundle):
    b = make_bundle(["true"])
    ocirun.ok("create", "-b", b.path, "cr")
    pid = ocirun.state("cr")["pid"]
    ocirun.ok("delete", "cr")
    assert not os.path.exists(f"/proc/{pid}") or \
        open(f"/proc/{pid}/stat").read().split()[2] == "Z"


def test_list_and_ps(ocirun, make_bundle):
    b = make_bundle(["sh", "-c", "sleep 30 & sleep 31 & wait"])
    ocirun.ok("run", "-d", "-b", b.path, "l1")
    assert ocirun.ok("list", "-q").stdout.split() == ["l1"]
    js = json.loads(ocirun.ok("list", "--format", "json").stdout)
    assert js[0]["id"] == "l1" and js[0]["status"] == "running"
    table = ocirun.ok("list").stdout.splitlines()
    assert table[0].split()[:3] == ["ID", "PID", "STATUS"] and "l1" in table[1]
    pid = ocirun.state("l1")["pid"]
    for _ in range(100):
        pids = json.loads(ocirun.ok("ps", "--format", "json", "l1").stdout)
        if len(pids) >= 3:
            break
        time.sleep(0.02)
    assert pid in pids and len(pids) >= 3
    ocirun.ok("delete", "-f", "l1")


def test_hooks_fire_in_order_with_state(ocirun, make_bundle, tmp_path):
    log = tmp_path / "hooks"
    log.mkdir()
    b = make_bundle(["sh", "-c", "echo main >> /hooklog/log"])
    host = f"{log}/log"

    def hook(name, path=host, sh="/bin/sh"):
        # each hook appends its name and the status it was given on stdin
        return {"path": sh, "args": ["sh", "-c",
                f"read s; echo {name} $(echo \"$s\" | grep -o '\"status\":\"[a-z]*\"') >> {path}"]}
    b.config["mounts"].append({"destination": "/hooklog", "type": "bind", "source": str(log),
                               "options": ["rbind", "rw"]})
    b.config["hooks"] = {
        "prestart": [hook("prestart")],
        "createRuntime": [hook("createRuntime")],
        "createContainer": [hook("createContainer")],
        "startContainer": [hook("startContainer", "/hooklog/log")],
        "poststart": [hook("poststart")],
        "poststop": [hook("poststop")],
    }
    b.write()
    ocirun.ok("create", "-b", b.path, "h")
    ocirun.ok("start", "h")
    ocirun.ok("kill", "h", "KILL") if ocirun.state("h")["status"] == "running" else None
    for _ in range(200):
        if ocirun.state("h")["status"] == "stopped":
            break
        time.sleep(0.01)
    ocirun.ok("delete", "h")
    names = [line.split()[0] for line in (log / "log").read_text().splitlines()]
    assert names[:4] == ["prestart", "createRuntime", "createContainer", "startContainer"]
    assert names.index("poststart") > names.index("startContainer")
    assert names[-1] == "poststop" and "main" in names
    statuses = dict(line.split(None, 1) for line in (log / "log").read_text().splitlines()
                    if " " in line)
    assert "creating" in statuses["createRuntime"]
    assert "stopped" in statuses["poststop"]


def test_failing_hook_fails_create_and_cleans(ocirun, make_bundle):
    b = make_bundle(["true"])
    b.config["hooks"] = {"createRuntime": [{"path": "/bin/false"}]}
    b.write()
    p = ocirun("create", "-b", b.path, "hf")
    assert p.returncode == 1
    assert "createRuntime hook #0" in p.stderr and p.stderr.count("\n") == 1
    assert ocirun.ids() == []


def test_run_forwards_sigterm(ocirun, make_bundle):
    b = make_bundle(["sh", "-c", "trap 'exit 42' TERM; while :; do sleep 0.05; done"])
    p = subprocess.Popen([OCIRUN, "--root", ocirun.root, "run", "-b", b.path, "fw"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    for _ in range(200):
        if ocirun("state", "fw").returncode == 0 and ocirun.state("fw")["status"] == "running":
            break
        time.sleep(0.02)
    time.sleep(0.1)
    p.send_signal(signal.SIGTERM)
    assert p.wait(10) == 42


def test_process_rlimits_applied(ocirun, make_bundle):
    import resource
    # lowering is always allowed; raising a hard limit needs CAP_SYS_RESOURCE, which this
    # host's root lacks: keep each hard limit at most the runtime's own
    nproc_hard = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    core_hard = resource.getrlimit(resource.RLIMIT_CORE)[1]
    show = lambda v: "unlimited" if v == resource.RLIM_INFINITY else str(v)  # noqa: E731
    b = make_bundle(args=["sh", "-c", "grep -E 'open files|core file size|processes' "
                                      "/proc/self/limits"])
    b.process["rlimits"] = [
        {"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200},
        {"type": "RLIMIT_CORE", "soft": 4096,
         "hard": 0xFFFFFFFFFFFFFFFF if core_hard == resource.RLIM_INFINITY else core_hard},
        {"type": "RLIMIT_NPROC", "soft": 77,
         "hard": 0xFFFFFFFFFFFFFFFF if nproc_hard == resource.RLIM_INFINITY else nproc_hard}]
    b.write()
    p = ocirun("run", "-b", b.path, "rlim")
    assert p.returncode == 0, p.stderr
    rows = {" ".join(line.split()[:-3]): line.split()[-3:-1] for line in p.stdout.splitlines()}
    assert rows["Max open files"] == ["100", "200"], p.stdout
    assert rows["Max core file size"] == ["4096", show(core_hard)], p.stdout
    assert rows["Max processes"] == ["77", show(nproc_hard)], p.stdout
