"""hack/vm/rsh.py, the remote shell the two-VM migration test gives hack/migrate and rsync
(docs/migration.md), on 127.0.0.1: stdout/stderr kept apart, stdin passed through to EOF, the
exit status returned, and rsync through it as ``-e``."""
import os
import socket
import subprocess
import sys
import time

import pytest
from helpers import REPO

RSH = os.path.join(REPO, "hack", "vm", "rsh.py")


@pytest.fixture
def server():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = subprocess.Popen([sys.executable, RSH, "serve", "--bind", "127.0.0.1", "--port",
                          str(port)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield [sys.executable, RSH, "-p", str(port)]
    finally:
        p.kill()
        p.wait()


def test_streams_and_status(server):
    p = subprocess.run(server + ["127.0.0.1", "tr a-z A-Z; echo err >&2; exit 7"],
                       input=b"hello\n" * 50000, capture_output=True, timeout=30)
    assert p.returncode == 7
    assert p.stdout == b"HELLO\n" * 50000
    assert p.stderr == b"err\n"
    # user@host and -l USER as rsync and hack/migrate pass them; words joined like ssh
    p = subprocess.run(server + ["-l", "root", "root@127.0.0.1", "echo", "a", "b"],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    assert (p.returncode, p.stdout) == (0, b"a b\n")


def test_killed_command_and_no_server(server):
    p = subprocess.run(server + ["127.0.0.1", "kill -9 $$"], stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=30)
    assert p.returncode == 137
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = subprocess.run([sys.executable, RSH, "-p", str(port), "127.0.0.1", "true"],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    assert p.returncode == 255
    assert p.stderr == f"rsh: cannot connect to 127.0.0.1:{port}: Connection refused\n".encode()


def test_rsync_through_it(server, tmp_path):
    if subprocess.run(["which", "rsync"], capture_output=True).returncode != 0:
        pytest.skip("rsync is not installed (hack/setup.d/30-criu.sh installs it)")
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    data = os.urandom(3 << 20)
    (src / "d" / "f").write_bytes(data)
    os.symlink("d/f", src / "l")
    p = subprocess.run(["rsync", "-a", "-e", " ".join(server), f"{src}/",
                        f"127.0.0.1:{tmp_path}/dst/"], capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "dst" / "d" / "f").read_bytes() == data
    assert os.readlink(tmp_path / "dst" / "l") == "d/f"
