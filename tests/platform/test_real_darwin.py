"""The macOS backend for real: sandbox-exec, rlimits, network denial, kill/state/delete.
Runs on macos-latest (.github/workflows/macos.yml); skipped elsewhere."""
import json
import os
import shutil
import signal
import socket
import sys

import pytest

pytestmark = pytest.mark.skipif(sys.platform != "darwin", reason="needs macOS (sandbox-exec)")

from ociruntime import platforms  # noqa: E402
from ociruntime.platforms.base import CREATED, RUNNING, STOPPED  # noqa: E402


@pytest.fixture
def mac(tmp_path):
    tmp_path = tmp_path.resolve()  # /var → /private/var: the sandbox sees real paths
    bundle = tmp_path / "bundle"
    (bundle / "rootfs" / "bin").mkdir(parents=True)
    (bundle / "rootfs" / "work").mkdir()
    for b in ("/bin/bash", "/bin/echo", "/bin/sleep", "/bin/cat"):
        shutil.copy(b, bundle / "rootfs" / "bin")
    state = tmp_path / "state"
    state.mkdir()
    secret = tmp_path / "secret"
    secret.write_text("host secret\n")
    p = platforms.current()
    assert p.name == "darwin"

    class Mac:
        platform, sd, out = p, str(state), str(tmp_path / "out")
        secret_path = str(secret)

        def run(self, args, netns=True, timeout=30, **extra):
            self.create(args, netns, **extra)
            p.start(self.sd)
            code = p.wait(self.sd, timeout)
            p.delete(self.sd)
            with open(self.out) as f:
                return code, f.read()

        def create(self, args, netns=True, **extra):
            cfg = {"ociVersion": "1.3.0",
                   "process": {"args": args, "cwd": "/work", "env": ["PATH=/bin"],
                               "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 64,
                                            "hard": 64}]},
                   "root": {"path": "rootfs", "readonly": True},
                   "mounts": [{"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}],
                   "linux": {"namespaces": [{"type": "network"}] if netns else []}}
            cfg.update(extra)
            (bundle / "config.json").write_text(json.dumps(cfg))
            return platforms.create("c1", str(bundle), self.sd, platform=p,
                                    stdio=(None, self.out, self.out))

    m = Mac()
    yield m
    try:
        p.delete(m.sd, force=True)
    except Exception:
        pass


def test_echo(mac):
    assert mac.run(["echo", "hello"]) == (0, "hello\n")


def test_rlimits_cwd_and_tmpdir(mac):
    code, out = mac.run(["bash", "-c", 'ulimit -n; pwd; echo x > "$TMPDIR/f" && echo tmp-ok'])
    lines = out.splitlines()
    assert code == 0 and lines[0] == "64" and lines[1].endswith("/rootfs/work")
    assert lines[2] == "tmp-ok"


def test_sandbox_denies_host_files_and_rootfs_writes(mac):
    code, out = mac.run(["bash", "-c", f'cat {mac.secret_path} || echo read-denied; '
                                       'echo x > /dev/null && echo devnull-ok; '
                                       'echo x > "$PWD/new" || echo write-denied'])
    assert "host secret" not in out
    assert "read-denied" in out and "devnull-ok" in out and "write-denied" in out


def test_exec_outside_rootfs_denied(mac):
    code, out = mac.run(["bash", "-c", "/bin/ls / || echo exec-denied"])
    assert "exec-denied" in out


@pytest.mark.parametrize("netns,connects", [(True, False), (False, True)])
def test_network_only_without_netns(mac, netns, connects):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    try:
        code, out = mac.run(["bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{port} && "
                                           "echo connected || echo refused"], netns=netns)
    finally:
        srv.close()
    assert ("connected" in out) == connects, out


def test_lifecycle_kill(mac):
    pid = mac.create(["sleep", "30"])
    p, sd = mac.platform, mac.sd
    assert p.state(sd).status == CREATED and p.state(sd).pid == pid
    p.start(sd)
    assert p.state(sd).status == RUNNING
    p.kill(sd, signal.SIGTERM)
    assert p.wait(sd, 10) == 128 + signal.SIGTERM
    assert p.state(sd).status == STOPPED
    p.delete(sd)
    assert not os.path.exists(os.path.join(sd, "platform.json"))


def test_unenforceable_config_refused(mac):
    from ociruntime.errors import Unsupported
    with pytest.raises(Unsupported, match="no pid namespace on darwin"):
        mac.create(["echo"], linux={"namespaces": [{"type": "pid"}]})
