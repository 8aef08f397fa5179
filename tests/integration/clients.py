"""Real clients (podman 4.3, containerd 1.6, docker 20.10 from Debian) with PRIVATE config and
state dirs, driving a runtime given as a parameter (runc or ocirun).

Every daemon is started with `setsid`, all output to a log file, and stopped by its recorded pid.
A client that cannot start raises ClientError with its log: the fixtures turn that into a test
failure (never a skip)."""
import fcntl
import json
import os
import select
import shutil
import signal
import struct
import subprocess
import tempfile
import termios
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OCIRUN = os.environ.get("OCIRUN", os.path.join(REPO, ".venv", "bin", "ocirun"))
RUNC = shutil.which("runc", path="/usr/sbin:/usr/bin:/sbin:/bin") or "/usr/sbin/runc"
IMAGE = "localhost/ocirun-busybox:latest"
WASM_IMAGE = "localhost/ocirun-wasm:latest"    # hack/mkimage.py --wasm (OCI, annotated)
WASM_ANNOTATION = "module.wasm.image/variant=compat"
PREFIX = "clients"                     # every container name starts with it (shared machine)
# /usr/local/bin may hold another docker CLI: use Debian's binaries by absolute path
PODMAN, CTR, CONTAINERD, DOCKER, DOCKERD = ("/usr/bin/podman", "/usr/bin/ctr",
                                            "/usr/bin/containerd", "/usr/bin/docker",
                                            "/usr/sbin/dockerd")
BASE_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/sbin:/usr/local/bin",
            "HOME": "/root", "LANG": "C.UTF-8"}
# The CRIU every client and runtime must use: the project's 4.1.1 build (tools/criu/install.sh).
# podman asks `criu` on PATH (go-criu, for its version check) and runc runs `criu` from PATH
# when no --criu is given, so each client's environment gets a private directory holding a
# `criu` symlink to it first on PATH (inherited by conmon, containerd, its shims and the
# runtimes), and OCIRUN_CRIU names it for ocirun.
CRIU = os.environ.get("OCIRUN_CLIENT_CRIU", os.path.join(REPO, "build", "criu", "criu"))


class ClientError(Exception):
    pass


def criu_env(base, env):
    """`env` with `base`/criu-bin (a `criu` symlink to CRIU) first on PATH, OCIRUN_CRIU=CRIU,
    and TMPDIR=`base`/tmp: what the clients leave in temporary directories (containerd's
    `ctrd-checkpoint*` image dirs, 8 per run) goes with the base, not into /tmp."""
    d = os.path.join(base, "criu-bin")
    os.makedirs(d, exist_ok=True)
    link = os.path.join(d, "criu")
    if not os.path.islink(link):
        os.symlink(CRIU, link)
    tmp = os.path.join(base, "tmp")
    os.makedirs(tmp, exist_ok=True)
    return dict(env, PATH=d + ":" + env["PATH"], OCIRUN_CRIU=CRIU, TMPDIR=tmp)


def runtime_path(name):
    return {"runc": RUNC, "ocirun": OCIRUN}[name]


def runtime_state(runtime, root, cid):
    """`RUNTIME --root ROOT state ID` as a dict, or None: proves which runtime a client used
    (ocirun cannot read runc's state and runc cannot read ocirun's)."""
    p = subprocess.run([runtime_path(runtime), "--root", root, "state", cid],
                       capture_output=True, text=True, timeout=30)
    return json.loads(p.stdout) if p.returncode == 0 else None


# where each client makes the runtime keep its state (podman passes no --root)
DEFAULT_ROOTS = {"runc": "/run/runc", "ocirun": "/run/ocirun"}


def runtimes():
    names = [n.strip() for n in os.environ.get("OCIRUN_CLIENT_RUNTIMES", "runc,ocirun").split(",")
             if n.strip()]
    for n in names:
        if n not in ("runc", "ocirun"):
            raise ValueError(f"OCIRUN_CLIENT_RUNTIMES: unknown runtime {n!r} (runc, ocirun)")
    return names


# ----------------------------------------------------------------------------- helpers
def run(cmd, env=None, timeout=120, input=None, check=False):
    """Run a client command; stdout/stderr in files (a detached container may inherit them)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        p = subprocess.run(cmd, stdout=out, stderr=err, env=env, timeout=timeout,
                           stdin=subprocess.DEVNULL if input is None else None,
                           input=input.encode() if input is not None else None)
        out.seek(0)
        err.seek(0)
        p.stdout = out.read().decode(errors="replace")
        p.stderr = err.read().decode(errors="replace")
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} -> {p.returncode}\nstdout: {p.stdout}\n"
                             f"stderr: {p.stderr}")
    return p


def start_daemon(cmd, log, env):
    """setsid DAEMON >>log 2>&1 </dev/null &; returns the daemon's pid."""
    with open(log, "ab") as lf:
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=lf, stderr=lf, env=env,
                             start_new_session=True)
    return p


def stop_pid(proc, timeout=20):
    """SIGTERM the daemon by pid, SIGKILL after `timeout` s; reap it."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def kill_pidfile(path):
    try:
        pid = int(open(path).read().strip())
    except (OSError, ValueError):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(200):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def read_log(path, tail=4000):
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")[-tail:]
    except OSError as e:
        return f"(no log: {e})"


def umount_under(path):
    """Lazily unmount everything mounted under `path` (deepest first)."""
    with open("/proc/self/mountinfo") as f:
        mps = [line.split()[4] for line in f]
    for m in sorted((m for m in mps if m == path or m.startswith(path + "/")),
                    key=len, reverse=True):
        subprocess.run(["umount", "-l", m], stderr=subprocess.DEVNULL)


def mounts_under(path):
    with open("/proc/self/mountinfo") as f:
        return [m for m in (line.split()[4] for line in f)
                if m == path or m.startswith(path + "/")]


def remove_cgroup_tree(name):
    """rmdir /sys/fs/cgroup/*/NAME (every v1 hierarchy and the unified one), deepest first: the
    cgroup parent a client used for this session's containers (empty once they are gone)."""
    import glob
    end = time.monotonic() + 10     # a client's last conmon/shim may take a moment to exit
    while True:
        left = []
        for top in sorted(set(os.path.realpath(d)
                              for d in glob.glob(f"/sys/fs/cgroup/*/{name}"))):
            for dirpath, _, _ in sorted(os.walk(top), key=lambda w: -len(w[0])):
                try:
                    os.rmdir(dirpath)
                except OSError:
                    left.append(dirpath)
        if not left or time.monotonic() > end:
            return left
        time.sleep(0.1)


class HostDirs:
    """Host directories a client creates outside its private dirs (hard-coded in it). Those
    that did not exist before are removed again when empty (rmdir: never another user's)."""

    def __init__(self, *paths):
        self.new = [p for p in paths if not os.path.exists(p)]

    def remove(self):
        for p in sorted(self.new, key=len, reverse=True):
            try:
                os.rmdir(p)
            except OSError:
                pass


def wait_for(pred, timeout, what, interval=0.05):
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


def in_pty(cmd, env=None, rows=33, cols=101, steps=(), timeout=30):
    """Run `cmd` with a real pty as its controlling terminal and stdio (window `rows`x`cols`).
    `steps` is a list of (wait_for_text, send_bytes): once the output contains the text, the
    bytes are typed. Returns (exit status, output)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def ctty():
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    p = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env=env,
                         preexec_fn=ctty, close_fds=True)
    os.close(slave)
    out = b""
    steps = list(steps)
    end = time.monotonic() + timeout
    try:
        while True:
            if steps and steps[0][0].encode() in out:
                os.write(master, steps.pop(0)[1])
                continue
            if time.monotonic() > end:
                raise AssertionError(f"pty: timed out; output so far: {out!r}")
            r, _, _ = select.select([master], [], [], 0.2)
            if r:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: the last slave fd closed
                    chunk = b""
                if not chunk:
                    break
                out += chunk
            elif p.poll() is not None:
                # drain what is left, then stop
                r, _, _ = select.select([master], [], [], 0.2)
                if not r:
                    break
        rc = p.wait(timeout=max(1, end - time.monotonic()))
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(master)
    return rc, out.decode(errors="replace")


# ----------------------------------------------------------------------------- podman
class Podman:
    """podman with private containers.conf, storage.conf, --root and --runroot."""

    def __init__(self, base):
        self.base = base
        self.dirs = {k: os.path.join(base, k) for k in
                     ("graph", "run", "tmp", "cni", "cninet", "volumes", "conf")}
        for d in self.dirs.values():
            os.makedirs(d, exist_ok=True)
        self.events = os.path.join(base, "events.log")
        self.wasm_cache = os.path.join(base, "wasm-cache")   # ocirun's, via conmon's env
        self.cgroup_parent = f"ocirun-{PREFIX}-podman-{os.getpid()}"
        self.conf = os.path.join(self.dirs["conf"], "containers.conf")
        self.storage_conf = os.path.join(self.dirs["conf"], "storage.conf")
        nofile = min(1024, _hard_nofile())
        self.env = criu_env(base, dict(
            BASE_ENV, CONTAINERS_CONF=self.conf, CONTAINERS_STORAGE_CONF=self.storage_conf,
            CONTAINERS_REGISTRIES_CONF=os.path.join(self.dirs["conf"], "none.conf")))
        # conmon (which runs `RUNTIME restore`) gets only conmon_env_vars, not podman's env
        conmon_env = json.dumps([f"PATH={self.env['PATH']}", f"OCIRUN_CRIU={CRIU}",
                                 f"OCIRUN_WASM_CACHE={self.wasm_cache}"])
        with open(self.conf, "w") as f:
            f.write(f"""[containers]
log_driver = "k8s-file"
netns = "none"
default_ulimits = ["nofile={nofile}:{nofile}", "nproc=32768:32768"]
[network]
network_backend = "cni"
network_config_dir = "{self.dirs['cninet']}"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{self.events}"
tmp_dir = "{self.dirs['tmp']}"
volume_path = "{self.dirs['volumes']}"
runtime_supports_json = ["ocirun", "runc", "crun"]
conmon_env_vars = {conmon_env}
[engine.runtimes]
ocirun = ["{OCIRUN}"]
runc = ["{RUNC}"]
""")
        with open(self.storage_conf, "w") as f:
            f.write(f"""[storage]
driver = "overlay"
graphroot = "{self.dirs['graph']}"
runroot = "{self.dirs['run']}"
""")
        open(self.env["CONTAINERS_REGISTRIES_CONF"], "w").close()

    def argv(self, *args, runtime=None):
        """The podman command line; `run`/`create` get this session's --cgroup-parent."""
        args = list(args)
        if args and args[0] in ("run", "create"):
            args[1:1] = ["--cgroup-parent", "/" + self.cgroup_parent]
        return self.cmd(runtime) + args

    def cmd(self, runtime=None):
        c = [PODMAN, "--root", self.dirs["graph"], "--runroot", self.dirs["run"],
             "--tmpdir", self.dirs["tmp"], "--storage-driver", "overlay",
             "--cgroup-manager", "cgroupfs", "--events-backend", "file"]
        if runtime:
            c += ["--runtime", runtime_path(runtime)]
        return c

    def __call__(self, *args, runtime=None, check=False, timeout=120, input=None):
        return run(self.argv(*args, runtime=runtime), env=self.env, timeout=timeout,
                   check=check, input=input)

    def start(self, image_tar):
        p = self("load", "-i", image_tar)
        if p.returncode != 0:
            raise ClientError(f"podman load failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
        p = self("image", "exists", IMAGE)
        if p.returncode != 0:
            raise ClientError(f"podman: image {IMAGE} missing after load:\n"
                              f"{self('images').stdout}")

    def load(self, image_tar, tag):
        """Load another image archive (removed with every image at stop())."""
        p = self("load", "-i", image_tar)
        if p.returncode != 0 or self("image", "exists", tag).returncode != 0:
            raise ClientError(f"podman load {image_tar} ({p.returncode}): {tag} missing:\n"
                              f"{p.stdout}\n{p.stderr}")

    def containers(self):
        return self("ps", "-aq").stdout.split()

    def cleanup_containers(self):
        for cid in self.containers():
            self("rm", "-f", "-t", "0", cid)

    def stop(self):
        self.cleanup_containers()
        self("rmi", "-af")
        self("system", "reset", "-f", timeout=60)
        umount_under(self.base)
        return remove_cgroup_tree(self.cgroup_parent) + mounts_under(self.base)


def _hard_nofile():
    import resource
    return resource.getrlimit(resource.RLIMIT_NOFILE)[1]


# ----------------------------------------------------------------------------- containerd
class Containerd:
    """containerd with its own config, root, state and socket; ctr in its own namespace."""

    def __init__(self, base):
        self.base = base
        self.root = os.path.join(base, "root")
        self.state = os.path.join(base, "state")
        self.sock = os.path.join(base, "c.sock")
        self.log = os.path.join(base, "containerd.log")
        self.config = os.path.join(base, "config.toml")
        self.ns = f"ocirun-{PREFIX}-{os.getpid()}"
        self.proc = None
        self.host_dirs = None
        os.makedirs(self.root, exist_ok=True)
        os.makedirs(self.state, exist_ok=True)
        with open(self.config, "w") as f:
            f.write(f"""version = 2
root = "{self.root}"
state = "{self.state}"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{self.sock}"
[ttrpc]
  address = "{self.sock}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
""")
        # the shim (and so the runtime) inherits containerd's environment
        self.wasm_cache = os.path.join(base, "wasm-cache")
        self.env = criu_env(base, dict(BASE_ENV, OCIRUN_WASM_CACHE=self.wasm_cache))

    def root_of(self):
        """The runtime root the runc v2 shim passes (--root) for this namespace."""
        return f"/run/containerd/runc/{self.ns}"

    def ctr_cmd(self):
        return [CTR, "--address", self.sock, "--namespace", self.ns]

    def __call__(self, *args, check=False, timeout=120, input=None):
        # ctr has no dial timeout: everything runs under a timeout
        return run(self.ctr_cmd() + list(args), env=self.env, timeout=timeout, check=check,
                   input=input)

    def start(self, image_tar):
        self.host_dirs = HostDirs("/run/containerd", "/run/containerd/fifo",
                                  "/run/containerd/runc", "/run/containerd/s")
        self.proc = start_daemon([CONTAINERD, "--config", self.config], self.log, self.env)
        end = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise ClientError(f"containerd exited ({self.proc.returncode}):\n"
                                  f"{read_log(self.log)}")
            if os.path.exists(self.sock):
                p = run(["timeout", "5"] + self.ctr_cmd() + ["version"], env=self.env)
                if p.returncode == 0:
                    break
            if time.monotonic() > end:
                raise ClientError(f"containerd did not answer in 30 s:\n{read_log(self.log)}")
            time.sleep(0.1)
        p = self("images", "import", image_tar, timeout=120)
        if p.returncode != 0:
            raise ClientError(f"ctr images import failed:\n{p.stdout}\n{p.stderr}\n"
                              f"{read_log(self.log)}")

    def load(self, image_tar, tag):
        """Import another image archive (removed with every image at stop())."""
        p = self("images", "import", image_tar, timeout=120)
        if p.returncode != 0 or tag not in self("images", "list", "-q").stdout.split():
            raise ClientError(f"ctr images import {image_tar} ({p.returncode}): {tag} missing:"
                              f"\n{p.stdout}\n{p.stderr}")

    def containers(self):
        return self("containers", "list", "-q").stdout.split()

    def tasks(self):
        return [line.split()[0] for line in self("tasks", "list").stdout.splitlines()[1:]
                if line.split()]

    def cleanup_containers(self):
        for t in self.tasks():
            self("tasks", "kill", "-s", "SIGKILL", t)
            for _ in range(100):
                if self("tasks", "delete", t).returncode == 0 or t not in self.tasks():
                    break
                time.sleep(0.1)
        for c in self.containers():
            self("containers", "delete", c)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.cleanup_containers()
            for img in self("images", "list", "-q").stdout.split():
                self("images", "remove", img)
        stop_pid(self.proc)
        umount_under(self.base)
        # the shim's runc root and ctr's cgroup parent are named after the namespace
        left = remove_cgroup_tree(self.ns)
        try:   # ocirun caches `criu --version` in its root (ociruntime/criu.py)
            os.unlink(os.path.join(self.root_of(), ".criu-version"))
        except OSError:
            pass
        try:
            os.rmdir(self.root_of())
        except FileNotFoundError:
            pass
        except OSError:
            left.append(self.root_of())
        if self.host_dirs is not None:
            self.host_dirs.remove()
        return left + mounts_under(self.base)


# ----------------------------------------------------------------------------- docker
class Docker:
    """dockerd with a private daemon.json (data-root, exec-root, pidfile, socket) that registers
    ocirun under `runtimes`; it runs its own managed containerd under exec-root."""

    def __init__(self, base):
        self.base = base
        self.data = os.path.join(base, "data")
        self.exec_root = os.path.join(base, "exec")
        self.pidfile = os.path.join(base, "docker.pid")
        self.sock = os.path.join(base, "d.sock")
        self.log = os.path.join(base, "dockerd.log")
        self.config = os.path.join(base, "daemon.json")
        self.cli_config = os.path.join(base, "cli")
        self.cgroup_parent = f"ocirun-{PREFIX}-docker-{os.getpid()}"
        self.host_dirs = None
        self.proc = None
        for d in (self.data, self.exec_root, self.cli_config):
            os.makedirs(d, exist_ok=True)
        with open(self.config, "w") as f:
            json.dump({
                "data-root": self.data, "exec-root": self.exec_root, "pidfile": self.pidfile,
                "hosts": ["unix://" + self.sock], "storage-driver": "overlay2",
                "iptables": False, "ip-masq": False, "ip-forward": False, "bridge": "none",
                "exec-opts": ["native.cgroupdriver=cgroupfs"], "experimental": True,
                "log-driver": "json-file", "features": {"buildkit": False},
                "runtimes": {"ocirun": {"path": OCIRUN}},
                "cgroup-parent": "/" + self.cgroup_parent,
            }, f, indent=1)
        # inherited by its managed containerd, the shims and the runtimes
        self.env = criu_env(base, dict(BASE_ENV, DOCKER_CONFIG=self.cli_config))

    def cli(self):
        return [DOCKER, "-H", "unix://" + self.sock]

    def __call__(self, *args, check=False, timeout=120, input=None):
        return run(self.cli() + list(args), env=self.env, timeout=timeout, check=check,
                   input=input)

    @staticmethod
    def runtime_flag(runtime):
        return "--runtime=" + {"runc": "runc", "ocirun": "ocirun"}[runtime]

    def start(self, image_tar):
        self.host_dirs = HostDirs("/run/docker", "/run/docker/plugins", "/run/netns",
                                  "/run/containerd", "/run/containerd/fifo",
                                  "/run/containerd/runc", "/run/containerd/s")
        self.proc = start_daemon([DOCKERD, "--config-file", self.config], self.log, self.env)
        end = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise ClientError(f"dockerd exited ({self.proc.returncode}):\n"
                                  f"{read_log(self.log)}")
            if os.path.exists(self.sock) and self("version", timeout=10).returncode == 0:
                break
            if time.monotonic() > end:
                raise ClientError(f"dockerd did not answer in 60 s:\n{read_log(self.log)}")
            time.sleep(0.2)
        p = self("load", "-i", image_tar)
        if p.returncode != 0:
            raise ClientError(f"docker load failed:\n{p.stdout}\n{p.stderr}\n"
                              f"{read_log(self.log)}")

    def containers(self):
        return self("ps", "-aq").stdout.split()

    def cleanup_containers(self):
        ids = self.containers()
        if ids:
            self("rm", "-f", *ids)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.cleanup_containers()
            self("rmi", "-f", IMAGE)
        stop_pid(self.proc, timeout=30)
        # its managed containerd normally exits with it; make sure, by its pid file
        kill_pidfile(os.path.join(self.exec_root, "containerd", "containerd.pid"))
        umount_under(self.base)
        left = remove_cgroup_tree(self.cgroup_parent)
        if self.host_dirs is not None:
            # libnetwork bind-mounts /run/netns on itself (shared): undo it if we made it
            if ("/run/netns" in self.host_dirs.new and "/run/netns" in mounts_under("/run/netns")
                    and not os.listdir("/run/netns")):
                subprocess.run(["umount", "/run/netns"], stderr=subprocess.DEVNULL)
            self.host_dirs.remove()
        return left + mounts_under(self.base)
