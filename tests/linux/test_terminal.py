"""Terminals with a real pty: ``run -t``/``exec -t`` relayed to the caller's terminal (input,
output, exit status, window size and its changes, ^C), and the console socket protocol (one
sendmsg, one SCM_RIGHTS fd: the master of a pty of the container's devpts)."""
import array
import fcntl
import json
import os
import pty
import select
import signal
import socket
import struct
import subprocess
import termios
import time

import pytest

from helpers import OCIRUN


class Term:
    """``ocirun ARGS`` on the slave of a fresh pty (its controlling terminal), sized
    rows x cols; we hold the master, as a terminal emulator would."""

    def __init__(self, root, args, rows=24, cols=80):
        pid, fd = pty.fork()
        if pid == 0:
            try:
                fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
                os.execv(OCIRUN, [OCIRUN, "--root", root, *map(str, args)])
            finally:
                os._exit(99)
        self.pid, self.fd, self.out = pid, fd, b""

    def write(self, data):
        os.write(self.fd, data)

    def resize(self, rows, cols):
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def expect(self, text, timeout=10):
        end = time.monotonic() + timeout
        while text.encode() not in self.out:
            left = end - time.monotonic()
            if left <= 0 or not self._read(left):
                raise AssertionError(f"{text!r} not seen in {self.out!r}")
        return self.out

    def _read(self, timeout):
        r, _, _ = select.select([self.fd], [], [], timeout)
        if not r:
            return False
        try:
            data = os.read(self.fd, 4096)
        except OSError:
            return False
        self.out += data
        return bool(data)

    def wait(self, timeout=20):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self._read(0.05)
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                while self._read(0.05):
                    pass
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        os.close(self.fd)
        raise AssertionError(f"ocirun did not exit; output {self.out!r}")


@pytest.fixture
def tbundle(make_bundle):
    def make(args):
        return make_bundle(args, terminal=True)
    return make


def test_run_t_relays_input_output_size_and_status(ocirun, tbundle):
    b = tbundle(["sh"])
    t = Term(ocirun.root, ["run", "-b", b.path, "term-run"], rows=33, cols=101)
    t.expect("# ")
    t.write(b"stty size; tty; echo sum=$((40+2))\n")
    t.expect("sum=42")
    assert b"33 101" in t.out and b"/dev/pts/0" in t.out
    t.resize(50, 132)   # SIGWINCH to ocirun -> the container's pty
    time.sleep(0.3)
    t.write(b"stty size\n")
    t.expect("50 132")
    t.write(b"exit 5\n")
    assert t.wait() == 5
    assert ocirun.ids() == []


def test_run_t_raw_mode_ctrl_c_reaches_the_container(ocirun, tbundle):
    # raw mode: ^C is a byte for the container's line discipline, which signals its
    # foreground process (sleep as pid 1 of its own session: the shell's child here)
    b = tbundle(["sh", "-c", "echo ready; sleep 100; echo after-sleep; exit 3"])
    t = Term(ocirun.root, ["run", "-b", b.path, "term-cc"])
    t.expect("ready")
    time.sleep(0.3)
    t.write(b"\x03")
    # the whole foreground group got SIGINT well before sleep's 100 s (wait() fails after
    # 20 s): sleep died; pid 1 (sh) went on (3) or died of it too (130), kernel-dependent
    assert t.wait() in (3, 130), t.out
    assert ocirun.ids() == []


def test_exec_t_relays(ocirun, make_bundle):
    b = make_bundle(["sleep", "1000"])
    ocirun.ok("run", "-d", "-b", b.path, "term-exec", stdin=subprocess.DEVNULL)
    try:
        t = Term(ocirun.root, ["exec", "-t", "term-exec", "sh"], rows=12, cols=34)
        t.expect("# ")
        t.write(b"stty size; tty; [ -t 0 ] && echo stdin-is-\"\"tty\n")
        t.expect("stdin-is-tty")
        assert b"12 34" in t.out
        t.write(b"exit 4\n")
        assert t.wait() == 4
        # ^C to a foreground exec'd program
        t = Term(ocirun.root, ["exec", "-t", "term-exec", "sleep", "100"])
        time.sleep(0.8)
        t.write(b"\x03")
        assert t.wait() == 128 + signal.SIGINT
    finally:
        ocirun.ok("delete", "-f", "term-exec")


def test_exec_t_without_a_tty_on_stdin(ocirun, make_bundle):
    # stdin a pipe: no raw mode; its EOF becomes the terminal's EOF character
    b = make_bundle(["sleep", "1000"])
    ocirun.ok("run", "-d", "-b", b.path, "term-pipe", stdin=subprocess.DEVNULL)
    try:
        p = ocirun("exec", "-t", "term-pipe", "sh", "-c", "read x; echo got=$x; tty",
                   input="hello\n")
        assert p.returncode == 0, p.stderr
        assert "got=hello" in p.stdout and "/dev/pts/" in p.stdout
        p = ocirun("exec", "-t", "term-pipe", "cat", input="abc\n")
        assert p.returncode == 0 and "abc" in p.stdout
    finally:
        ocirun.ok("delete", "-f", "term-pipe")


class ConsoleSocket:
    """A console-socket receiver: records every message and the fds it carried."""

    def __init__(self, path):
        self.path = str(path)
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(self.path)
        self.srv.listen(1)
        self.srv.settimeout(20)

    def receive(self):
        conn, _ = self.srv.accept()
        with conn:
            msgs = []
            while True:
                fds = array.array("i")
                msg, anc, _, _ = conn.recvmsg(4096, socket.CMSG_SPACE(16 * fds.itemsize))
                for level, typ, data in anc:
                    if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                        fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
                if not msg and not anc:
                    break
                msgs.append((msg, list(fds)))
        return msgs

    def close(self):
        self.srv.close()


def _read_until(fd, text, timeout=10):
    out = b""
    end = time.monotonic() + timeout
    while text.encode() not in out and time.monotonic() < end:
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                out += os.read(fd, 4096)
            except OSError:
                break
    return out


def _check_master(msgs):
    assert len(msgs) == 1, msgs                       # exactly one sendmsg
    name, fds = msgs[0]
    assert len(fds) == 1                              # one SCM_RIGHTS fd
    assert name.startswith(b"/dev/pts/") and len(name) <= 4096
    master = fds[0]
    assert os.major(os.fstat(master).st_rdev) in (5, 128, 129, 130, 131, 132, 133, 134, 135)
    return master


def test_create_with_console_socket(ocirun, tbundle, tmp_path):
    b = tbundle(["sh", "-c", "stty size; tty; read x; echo got=$x; exit 6"])
    b.config["process"]["consoleSize"] = {"height": 17, "width": 45}
    b.write()
    cs = ConsoleSocket(tmp_path / "console.sock")
    try:
        import threading
        got = {}
        th = threading.Thread(target=lambda: got.setdefault("m", cs.receive()))
        th.start()
        ocirun.ok("create", "-b", b.path, "--console-socket", cs.path, "term-cs",
                  stdin=subprocess.DEVNULL)
        th.join(20)
        master = _check_master(got["m"])
        ocirun.ok("start", "term-cs")
        os.write(master, b"hi\n")
        out = _read_until(master, "got=hi")
        os.close(master)
        assert b"17 45" in out and b"/dev/pts/0" in out and b"got=hi" in out, out
    finally:
        cs.close()
    for _ in range(300):
        if ocirun.state("term-cs")["status"] == "stopped":
            break
        time.sleep(0.01)
    ocirun.ok("delete", "term-cs")


def test_exec_with_console_socket_detached(ocirun, make_bundle, tmp_path):
    b = make_bundle(["sleep", "1000"])
    ocirun.ok("run", "-d", "-b", b.path, "term-ecs", stdin=subprocess.DEVNULL)
    cs = ConsoleSocket(tmp_path / "c.sock")
    try:
        import threading
        got = {}
        th = threading.Thread(target=lambda: got.setdefault("m", cs.receive()))
        th.start()
        pidfile = tmp_path / "pid"
        proc = tmp_path / "process.json"
        proc.write_text(json.dumps({"terminal": True, "args": ["sh"], "cwd": "/",
                                    "env": ["PATH=/bin:/usr/bin", "TERM=xterm"],
                                    "consoleSize": {"height": 9, "width": 21}}))
        ocirun.ok("exec", "--process", proc, "--console-socket", cs.path, "--detach",
                  "--pid-file", pidfile, "term-ecs", stdin=subprocess.DEVNULL)
        th.join(20)
        master = _check_master(got["m"])
        pid = int(pidfile.read_text())
        with open(f"/proc/{pid}/ns/mnt") as _:
            pass
        os.write(master, b"stty size; tty; echo $((3*3))x\n")
        out = _read_until(master, "9x")
        assert b"9 21" in out and b"9x" in out, out
        assert os.readlink(f"/proc/{pid}/fd/0").startswith("/dev/pts/")
        os.write(master, b"exit\n")
        os.close(master)
    finally:
        cs.close()
        ocirun.ok("delete", "-f", "term-ecs")


def test_console_socket_errors(ocirun, make_bundle, tbundle, tmp_path):
    b = tbundle(["true"])
    p = ocirun("run", "-d", "-b", b.path, "term-nosock", stdin=subprocess.DEVNULL)
    assert p.returncode == 1 and "cannot allocate tty" in p.stderr
    b2 = make_bundle(["sleep", "1000"])
    ocirun.ok("run", "-d", "-b", b2.path, "term-err", stdin=subprocess.DEVNULL)
    try:
        p = ocirun("exec", "--console-socket", tmp_path / "x.sock", "term-err", "true")
        assert p.returncode == 1 and "cannot use console socket" in p.stderr
        p = ocirun("exec", "-t", "--console-socket", tmp_path / "nosuch.sock", "term-err",
                   "true")
        assert p.returncode == 1 and "console socket" in p.stderr
        assert json.loads(ocirun.ok("ps", "--format", "json", "term-err").stdout) == \
            [ocirun.state("term-err")["pid"]]
    finally:
        ocirun.ok("delete", "-f", "term-err")
    assert ocirun.ids() == []
