"""The POSIX process lifecycle the macOS backend uses (fork, start fifo, rlimits, cwd, env,
identity by start time), run for real on this host with the exec prefix removed: the plan is
the darwin plan, only sandbox-exec is missing. Every test cleans its processes up."""
import json
import os
import shutil
import signal
import time

import pytest

from ociruntime import platforms
from ociruntime.errors import ContainerNotFound, SetupError, StateError
from ociruntime.platforms import darwin, posix
from ociruntime.platforms.base import CREATED, RUNNING, STOPPED

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX only")


class Unsandboxed(darwin.DarwinPlatform):
    """The darwin backend minus sandbox-exec, so it runs on Linux."""
    name = "posix-test"

    def exec_argv(self, spec):
        return posix.PosixPlatform.exec_argv(self, spec)


def _host(binary):
    p = shutil.which(binary)
    if p is None:
        pytest.skip(f"no {binary} on this host")
    return os.path.realpath(p)


@pytest.fixture
def box(tmp_path):
    """A bundle whose rootfs holds copies of the host's sh and sleep (no chroot here, so
    they run with the host's libraries), and a state dir; kills what a test leaves."""
    bundle = tmp_path / "bundle"
    (bundle / "rootfs" / "bin").mkdir(parents=True)
    (bundle / "rootfs" / "work").mkdir()
    for b in ("sh", "sleep"):
        shutil.copy(_host(b), bundle / "rootfs" / "bin" / b)
    state = tmp_path / "state"
    state.mkdir()
    p = Unsandboxed()

    class Box:
        platform = p
        sd = str(state)
        out = str(tmp_path / "out")

        def create(self, script, best_effort=False, **cfg_extra):
            cfg = {"ociVersion": "1.3.0",
                   "process": {"args": ["sh", "-c", script], "cwd": "/work",
                               "env": ["PATH=/bin", "GREETING=hello"],
                               "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 77,
                                            "hard": 77}]},
                   "root": {"path": "rootfs"},
                   "mounts": [{"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}],
                   "linux": {"namespaces": [{"type": "network"}]}}
            cfg.update(cfg_extra)
            (bundle / "config.json").write_text(json.dumps(cfg))
            return platforms.create("c1", str(bundle), self.sd, best_effort=best_effort,
                                    platform=p, stdio=(None, self.out, self.out))

        def output(self):
            with open(self.out) as f:
                return f.read()

    yield Box()
    try:
        st = json.loads((state / posix.STATE_FILE).read_text())
    except FileNotFoundError:
        return
    try:
        os.killpg(st["pid"], signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        os.waitpid(st["pid"], 0)
    except ChildProcessError:
        pass


def test_create_start_wait_delete(box):
    t = time.monotonic()
    pid = box.create('echo "$GREETING $(pwd) $(ulimit -n) $TMPDIR"; exit 3')
    created_ms = (time.monotonic() - t) * 1000
    p, sd = box.platform, box.sd
    st = p.state(sd)
    assert (st.status, st.pid) == (CREATED, pid)
    assert box.output() == ""  # nothing ran yet
    assert os.path.exists(os.path.join(sd, posix.FIFO))
    p.start(sd)
    assert not os.path.exists(os.path.join(sd, posix.FIFO))
    assert p.wait(sd, timeout=10) == 3
    st = p.state(sd)
    assert (st.status, st.exit_code) == (STOPPED, 3)
    tmp = os.path.join(os.path.realpath(sd), "tmpfs", "0_tmp")
    root = os.path.realpath(os.path.join(sd, "..", "bundle", "rootfs"))
    assert box.output() == f"hello {root}/work 77 {tmp}\n"
    assert os.path.isdir(tmp)
    p.delete(sd)
    assert os.listdir(sd) == []
    with pytest.raises(ContainerNotFound):
        p.state(sd)
    assert created_ms < 2000


def test_start_twice_and_kill_states(box):
    box.create("exec sleep 30")
    p, sd = box.platform, box.sd
    p.start(sd)
    assert p.state(sd).status == RUNNING
    with pytest.raises(StateError, match="not created"):
        p.start(sd)
    with pytest.raises(StateError, match="container still running"):
        p.delete(sd)
    p.kill(sd, signal.SIGTERM)
    assert p.wait(sd, timeout=10) == 128 + signal.SIGTERM
    assert p.state(sd).status == STOPPED
    with pytest.raises(StateError, match="container not running"):
        p.kill(sd, signal.SIGKILL)
    p.delete(sd)


def test_kill_all_reaches_the_process_group(box):
    box.create("sleep 30 & echo $! > child; wait")
    p, sd = box.platform, box.sd
    p.start(sd)
    child = os.path.join(os.path.realpath(sd), "..", "bundle", "rootfs", "work", "child")
    deadline = time.monotonic() + 10
    while not (os.path.exists(child) and open(child).read().strip()):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    cpid = int(open(child).read())
    p.kill(sd, signal.SIGKILL, all=True)
    assert p.wait(sd, timeout=10) == 128 + signal.SIGKILL
    deadline = time.monotonic() + 10
    while (ident := posix.proc_identity(cpid)) is not None and not ident[1]:
        assert time.monotonic() < deadline, "the background child survived kill --all"
        time.sleep(0.01)
    p.delete(sd)


def test_delete_force_and_delete_created(box):
    box.create("exec sleep 30")
    p, sd = box.platform, box.sd
    p.delete(sd)  # a created container may be deleted: it is killed
    box.create("exec sleep 30")
    p.start(sd)
    p.delete(sd, force=True)
    assert os.listdir(sd) == []


def test_kill_before_start(box):
    box.create("echo never")
    p, sd = box.platform, box.sd
    p.kill(sd, signal.SIGKILL)
    assert p.wait(sd, timeout=10) == 128 + signal.SIGKILL
    with pytest.raises(StateError, match="not created"):
        p.start(sd)
    p.delete(sd)
    assert box.output() == ""


def test_recycled_pid_is_not_the_container(box):
    box.create("exec sleep 30")
    p, sd = box.platform, box.sd
    path = os.path.join(sd, posix.STATE_FILE)
    st = json.loads(open(path).read())
    real = st["start"]
    st["start"] = "1"  # as if the pid now belonged to another process
    open(path, "w").write(json.dumps(st))
    assert p.state(sd).status == STOPPED
    st["start"] = real
    open(path, "w").write(json.dumps(st))
    assert p.state(sd).status == CREATED
    p.delete(sd)


def test_setup_errors_come_back_to_create(box):
    with pytest.raises(SetupError, match="setrlimit RLIMIT_NOFILE"):
        box.create("true", process={"args": ["sh"], "cwd": "/work", "rlimits": [
            {"type": "RLIMIT_NOFILE", "soft": 1 << 40, "hard": 1 << 40}]})
    assert os.listdir(box.sd) == []  # no state file, fifo or tmpfs directory left
    with pytest.raises(SetupError, match="process.cwd /.*/nowhere"):
        box.create("true", process={"args": ["sh"], "cwd": "/nowhere"})


def test_exec_failure_is_exit_127(box):
    bundle = os.path.join(box.sd, "..", "bundle")
    with open(os.path.join(bundle, "rootfs", "bin", "broken"), "w") as f:
        f.write("not a program")
    os.chmod(os.path.join(bundle, "rootfs", "bin", "broken"), 0o755)
    box.create("", process={"args": ["broken"], "cwd": "/", "env": ["PATH=/bin"]})
    p, sd = box.platform, box.sd
    p.start(sd)
    assert p.wait(sd, timeout=10) == 127
    assert "ocirun: exec" in box.output()
    p.delete(sd)


def test_refused_config_creates_nothing(box):
    from ociruntime.errors import Unsupported
    with pytest.raises(Unsupported, match="linux.namespaces.0.: no pid namespace"):
        box.create("true", linux={"namespaces": [{"type": "pid"}]})
    assert os.listdir(box.sd) == []
    box.create("true", linux={"namespaces": [{"type": "pid"}]}, best_effort=True)
    box.platform.delete(box.sd)
