"""PlatformRuntime: the Runtime API (and so the CLI) over a platform backend, as ocirun runs on
macOS and Windows. Driven for real on this host with the darwin backend minus sandbox-exec
(the same stand-in test_platforms_posix.py uses)."""
import json
import os
import shutil

import pytest

from ociruntime.errors import ContainerExists, ContainerNotFound, StateError, Unsupported
from ociruntime.platforms import darwin, posix
from ociruntime.platforms.runtime import RUNTIME_FILE, PlatformRuntime

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX only")


class Unsandboxed(darwin.DarwinPlatform):
    name = "posix-test"

    def exec_argv(self, spec):
        return posix.PosixPlatform.exec_argv(self, spec)


@pytest.fixture
def rt(tmp_path):
    warnings = []
    r = PlatformRuntime(root=str(tmp_path / "root"), platform=Unsandboxed(),
                        warn=warnings.append)
    r.warnings = warnings
    yield r
    for s in r.list():
        r.delete(s["id"], force=True)


def bundle(tmp_path, script, **extra):
    b = tmp_path / "bundle"
    if not b.exists():
        (b / "rootfs" / "bin").mkdir(parents=True)
        for name in ("sh", "sleep"):
            host = shutil.which(name)
            if host is None:
                pytest.skip(f"no {name} on this host")
            shutil.copy(os.path.realpath(host), b / "rootfs" / "bin" / name)
    cfg = {"ociVersion": "1.3.0", "root": {"path": "rootfs"},
           "process": {"args": ["sh", "-c", script], "cwd": "/", "env": ["PATH=/bin"]},
           "annotations": {"org.example": "x"}}
    cfg.update(extra)
    (b / "config.json").write_text(json.dumps(cfg))
    return str(b)


def test_lifecycle_state_list_delete(rt, tmp_path):
    b = bundle(tmp_path, "exec sleep 30")
    pid_file = str(tmp_path / "pid")
    pid = rt.create("c1", b, pid_file=pid_file)
    assert open(pid_file).read() == str(pid)
    st = rt.state("c1")
    assert (st["status"], st["pid"], st["bundle"]) == ("created", pid, b)
    assert st["annotations"] == {"org.example": "x"}
    with pytest.raises(ContainerExists, match="container with id exists: c1"):
        rt.create("c1", b)
    rt.start("c1")
    assert rt.state("c1")["status"] == "running"
    with pytest.raises(StateError, match="already running"):
        rt.start("c1")
    with pytest.raises(StateError, match="cannot delete container c1 that is not stopped"):
        rt.delete("c1")
    assert [s["id"] for s in rt.list()] == ["c1"]
    rt.kill("c1", "KILL")
    assert rt.wait("c1", timeout=10) == 137
    assert rt.state("c1")["status"] == "stopped"
    with pytest.raises(StateError, match="container not running"):
        rt.kill("c1", "TERM")
    rt.delete("c1")
    assert not os.path.exists(os.path.join(rt.root, "c1"))
    with pytest.raises(ContainerNotFound):
        rt.state("c1")


def test_run_foreground_exit_status(rt, tmp_path):
    assert rt.run("c2", bundle(tmp_path, "exit 7")) == 7
    assert rt.list() == []


def test_refusal_leaves_nothing_and_best_effort_warns(rt, tmp_path):
    b = bundle(tmp_path, "exit 0", linux={"seccomp": {"defaultAction": "SCMP_ACT_ERRNO"}})
    with pytest.raises(Unsupported, match="cannot enforce: linux.seccomp"):
        rt.create("c3", b)
    assert os.listdir(rt.root) == []
    assert rt.run("c3", b, best_effort=True) == 0
    assert any("dropped linux.seccomp" in w for w in rt.warnings)
    assert os.listdir(rt.root) == []


def test_terminal_and_fds_refused_clearly(rt, tmp_path):
    b = bundle(tmp_path, "exit 0")
    with pytest.raises(Unsupported, match="--console-socket: terminals are not supported"):
        rt.create("c4", b, console_socket="/tmp/x.sock")
    with pytest.raises(Unsupported, match="--preserve-fds"):
        rt.create("c4", b, preserve_fds=1)
    assert not os.path.exists(os.path.join(rt.root, "c4"))


def test_state_file_written(rt, tmp_path):
    rt.create("c5", bundle(tmp_path, "exit 0"))
    meta = json.load(open(os.path.join(rt.root, "c5", RUNTIME_FILE)))
    assert meta["platform"] == "posix-test" and meta["id"] == "c5"
    rt.delete("c5", force=True)


def test_cli_uses_the_platform_seam_off_linux(tmp_path, monkeypatch, capsys):
    """On a non-Linux sys.platform the CLI builds a PlatformRuntime: the same commands and
    flags (here create --best-effort, state, start, delete) reach the backend."""
    import sys
    from ociruntime import platforms
    from ociruntime.cli import main as cli
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setattr(platforms, "current", lambda: Unsandboxed())
    b = bundle(tmp_path, "exec sleep 30", linux={"sysctl": {"kernel.x": "1"}})
    root = str(tmp_path / "root")
    assert cli.main(["--root", root, "create", "-b", b, "c6"]) == 1
    assert "cannot enforce: linux.sysctl" in capsys.readouterr().err
    assert cli.main(["--root", root, "create", "--best-effort", "-b", b, "c6"]) in (0, None)
    assert "dropped linux.sysctl" in capsys.readouterr().err
    assert cli.main(["--root", root, "state", "c6"]) in (0, None)
    assert json.loads(capsys.readouterr().out)["status"] == "created"
    assert cli.main(["--root", root, "delete", "--force", "c6"]) in (0, None)
    assert os.listdir(root) == []


def test_linux_only_operations_are_refused(rt):
    for op in ("exec", "pause", "update", "checkpoint"):
        with pytest.raises(Unsupported, match=f"{op} is not supported on posix-test"):
            getattr(rt, op)("c7")
