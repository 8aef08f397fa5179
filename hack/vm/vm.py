"""Small QEMU (TCG) VM library for the tests that need a pure cgroup v2 host, a stock distro
kernel or two hosts (docs/vm.md). Assets come from hack/setup.d/40-vm.sh (build/vm).

The guest's root is the host's own / (9p, read-only) under a tmpfs overlay, so the host's python,
venv and tools are there; ``share`` (default: the repository) is 9p-mounted read-write at the
same path. /sys/fs/cgroup is cgroup2 (nsdelegate) with every controller. A small agent
(hack/vm/agent.py) runs commands sent over a virtio-serial port: one boot serves many commands.

    with VM(share=REPO, mem=1024) as v:
        rc, out, err = v.run("cat /sys/fs/cgroup/cgroup.controllers", timeout=60)

    with pair(share=REPO) as (a, b):          # two VMs on a private L2 link (no route out)
        rc, out, err = a.run(f"ping -c1 {b.ip}")

CLI: python3 hack/vm/vm.py [--mem MiB] [--cpus N] -- 'SHELL LINE' | PROG ARG...
     (boot, run, print its output, exit with its status)
"""
import contextlib
import json
import os
import shlex
import shutil
import socket
import subprocess
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
VM_DIR = os.environ.get("OCIRUN_VM_DIR", os.path.join(REPO, "build", "vm"))
KERNEL = "vmlinux"
INITRD = "initramfs.cpio.gz"
LINK_NET = "169.254.77"          # pair(): hostA .1, hostB .2 (link-local, never routed)


class VMError(RuntimeError):
    pass


def assets_missing():
    """None when the assets are there, else a one-line reason (for skips)."""
    for f in (KERNEL, INITRD, "modules"):
        if not os.path.exists(os.path.join(VM_DIR, f)):
            return f"VM assets missing: {VM_DIR}/{f} (run hack/setup.d/40-vm.sh)"
    if not shutil.which("qemu-system-x86_64"):
        return "qemu-system-x86_64 not installed (run hack/setup.d/40-vm.sh)"
    return None


class VM:
    def __init__(self, name="ocirun-vm", share=REPO, mem=1024, cpus=1, root="/",
                 netdev=None, ip=None, mac="52:54:00:12:34:56", share_cache="loose"):
        self.name, self.mem, self.cpus, self.root = name, mem, cpus, root
        self.share_cache = share_cache
        self.share = share
        self.netdev, self.mac = netdev, mac
        self.cidr = ip
        self.ip = ip.split("/")[0] if ip else None
        self.proc = self.sock = self.rfile = None
        self.boot_s = None
        self.kernel = None
        self.ctl = tempfile.mkdtemp(prefix=f"ocirun-vmctl-{name}-")
        self.log_path = os.path.join(self.ctl, "console.log")
        self._lock = threading.Lock()

    @staticmethod
    def _fs(tag, path, ro):
        return ["-fsdev", f"local,id={tag},path={path},security_model=none,multidevs=remap"
                + (",readonly=on" if ro else ""),
                "-device", f"virtio-9p-pci,fsdev={tag},mount_tag={tag}"]

    def command(self):
        shares = self.share and self.share != "/"
        net = ["-nic", "none"]
        if self.netdev:
            net = ["-netdev", f"{self.netdev},id=n0",
                   "-device", f"virtio-net-pci,netdev=n0,mac={self.mac}"]
        return ["qemu-system-x86_64", "-accel", "tcg,thread=multi,tb-size=256", "-cpu", "max",
                "-m", str(self.mem), "-smp", str(self.cpus),
                "-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
                "-display", "none", "-serial", f"file:{self.log_path}",
                "-kernel", os.path.join(VM_DIR, KERNEL), "-initrd", os.path.join(VM_DIR, INITRD),
                "-append", f"console=ttyS0 quiet loglevel=1 panic=-1 vm.rwsize={self.mem // 2}m "
                           f"vm.hostname={self.name}"
                           + (f" vm.shares=proj={self.share}" if shares else ""),
                *self._fs("rootfs", self.root, True),
                *self._fs("modules", os.path.join(VM_DIR, "modules", "lib", "modules"), True),
                *self._fs("vmctl", self.ctl, False),
                *(self._fs("proj", self.share, False) if shares else []),
                "-device", "virtio-serial-pci",
                "-chardev", f"socket,id=agent,path={self.ctl}/agent.sock,server=on,wait=off",
                "-device", "virtserialport,chardev=agent,name=agent",
                *net]

    def console(self, tail=4000):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-tail:]
        except OSError:
            return ""

    def _fail(self, what):
        err = ""
        with contextlib.suppress(OSError):
            with open(os.path.join(self.ctl, "qemu.err")) as f:
                err = f.read()[-2000:]
        msg = f"VM {self.name}: {what}\nqemu stderr: {err}\nconsole: {self.console()}"
        self.stop()
        raise VMError(msg)

    def start(self, boot_timeout=180):
        why = assets_missing()
        if why:
            raise VMError(why)
        shutil.copy(os.path.join(HERE, "agent.py"), os.path.join(self.ctl, "agent.py"))
        with open(os.path.join(self.ctl, "cmd.sh"), "w") as f:
            f.write("exec python3 -I /vmctl/agent.py\n")
        with open(os.path.join(self.ctl, "env"), "w") as f:
            f.write(f"VM_CWD='{self.share or '/'}'\nVM_IP='{self.cidr or ''}'\n"
                    f"VM_SHARE_CACHE='{self.share_cache}'\n")
        sock = os.path.join(self.ctl, "agent.sock")
        self.t0 = time.monotonic()
        with open(os.path.join(self.ctl, "qemu.err"), "w") as err:
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=err,
                                         start_new_session=True)
        deadline = self.t0 + boot_timeout
        while not os.path.exists(sock):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self._fail("qemu did not start")
            time.sleep(0.05)
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(sock)
        self.sock.settimeout(max(1.0, deadline - time.monotonic()))
        self.rfile = self.sock.makefile("rb")
        try:
            hello = json.loads(self.rfile.readline() or b"null")
        except (OSError, ValueError):
            hello = None
        if not hello:
            self._fail("the guest agent never said hello")
        self.boot_s = time.monotonic() - self.t0
        self.kernel = hello["hello"]
        self.sock.sendall(b"\n")     # from now on the agent powers off when we disconnect
        return self

    def run(self, cmd, timeout=600, cwd=None, env=None):
        """Run ``cmd`` with /bin/sh in the guest -> (rc, stdout, stderr); rc 124 on timeout
        (its process group is killed). The reply comes when stdout/stderr close: a background
        process must redirect them (``daemon </dev/null >/tmp/log 2>&1 &``)."""
        if not self.sock:
            raise VMError(f"VM {self.name} is not running")
        req = {"cmd": cmd, "cwd": cwd or self.share or "/", "env": env or {}, "timeout": timeout}
        with self._lock:
            self.sock.settimeout(timeout + 60)
            try:
                self.sock.sendall((json.dumps(req) + "\n").encode())
                line = self.rfile.readline()
            except OSError as e:
                line, why = b"", e
            else:
                why = "connection closed"
            if not line:
                self._fail(f"lost the agent during {cmd!r}: {why}")
        resp = json.loads(line)
        return resp["rc"], resp["out"], resp["err"]

    def stop(self):
        if self.proc and self.proc.poll() is None:
            try:
                if not self.sock:
                    raise OSError
                self.sock.settimeout(10)
                self.sock.sendall(b'{"cmd": "__poweroff__"}\n')
                self.proc.wait(timeout=20)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        if self.rfile:
            self.rfile.close()
        if self.sock:
            self.sock.close()
        self.sock = self.rfile = None
        shutil.rmtree(self.ctl, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port):
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            local, st = line.split()[1], line.split()[3]
            if st == "0A" and local == f"0100007F:{port:04X}":
                return True
    return False


@contextlib.contextmanager
def pair(share=REPO, mem=768, **kw):
    """Two VMs, hostA (169.254.77.1) and hostB (.2), on a point-to-point L2 link carried over a
    127.0.0.1 TCP socket between the two QEMU processes: nothing reaches a real interface."""
    port = _free_port()
    b = VM(name="hostB", share=share, mem=mem, netdev=f"socket,listen=127.0.0.1:{port}",
           ip=f"{LINK_NET}.2/24", mac="52:54:00:00:77:02", **kw)
    a = VM(name="hostA", share=share, mem=mem, netdev=f"socket,connect=127.0.0.1:{port}",
           ip=f"{LINK_NET}.1/24", mac="52:54:00:00:77:01", **kw)
    errors = []

    def boot_b():
        try:
            b.start()
        except Exception as e:
            errors.append(e)

    t = threading.Thread(target=boot_b)
    try:
        t.start()
        end = time.monotonic() + 30           # A's QEMU connects once, at start: B listens first
        while not _listening(port) and not errors and time.monotonic() < end:
            time.sleep(0.02)
        a.start()
        t.join()
        if errors:
            raise errors[0]
        yield a, b
    finally:
        t.join()
        a.stop()
        b.stop()


def main(argv):
    import argparse
    p = argparse.ArgumentParser(description="boot the test VM, run COMMAND, exit with its status")
    p.add_argument("--mem", type=int, default=1024)
    p.add_argument("--cpus", type=int, default=1)
    p.add_argument("--timeout", type=int, default=900)
    p.add_argument("command", nargs="+")
    a = p.parse_args(argv)
    import sys
    with VM(mem=a.mem, cpus=a.cpus, share=os.getcwd() if os.getcwd() != "/" else REPO) as v:
        sys.stderr.write(f"vm: {v.kernel} booted in {v.boot_s:.1f}s\n")
        # one argument: a shell command line; several: a command and its arguments
        cmd = a.command[0] if len(a.command) == 1 else shlex.join(a.command)
        rc, out, err = v.run(cmd, timeout=a.timeout)
    sys.stdout.write(out)
    sys.stderr.write(err)
    return rc


if __name__ == "__main__":
    import sys
    sys.exit(main(sys.argv[1:]))
