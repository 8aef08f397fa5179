"""Wasm images through real clients with ocirun: podman 4.3 running an image annotated
`module.wasm.image/variant=compat` (the annotation travels from the OCI image manifest to
config.json) and `ctr run --runc-binary ocirun --annotation module.wasm.image/variant=compat`.

The image (hack/mkimage.py --wasm) is a scratch image holding the WAT modules of
tests/data/wasm at /. Every module runs through each client: hello, args/env echo, stdin and
a terminal, file read/write under a bind mount or volume, exit codes, traps (134), an endless
loop stopped by SIGTERM/SIGKILL (and, podman, by RLIMIT_CPU), memory growth past the
container's memory limit refused, modules refused at create, exec refused.

ocirun only: runc has no Wasm handler (without the annotation the `.wat` file is exec'ed
natively and fails, as it would with runc: one case shows it). The harness's per-test and
per-session cleanup checks (containers, mounts, cgroups) apply as for every client case.
docs/clients.md has the table of cases."""
import json
import os
import subprocess
import sys
import time

import pytest

import clients
from clients import (IMAGE, WASM_ANNOTATION, WASM_IMAGE, in_pty, runtime_path, runtime_state,
                     wait_for)

pytestmark = [pytest.mark.clients,
              pytest.mark.skipif("ocirun" not in clients.runtimes(),
                                 reason="OCIRUN_CLIENT_RUNTIMES has no ocirun (runc has no Wasm)")]

OCIRUN = runtime_path("ocirun")


@pytest.fixture(scope="session")
def wasm_image_tar():
    out = os.path.join(clients.REPO, "build", "images", "wasm-oci.tar")
    p = subprocess.run([sys.executable, os.path.join(clients.REPO, "hack", "mkimage.py"),
                        "--wasm", "--format", "oci", "-o", out], capture_output=True, text=True)
    if p.returncode != 0:
        pytest.fail(f"hack/mkimage.py --wasm failed:\n{p.stderr}")
    return out


@pytest.fixture(scope="session")
def wasm_podman_session(podman_session, wasm_image_tar):
    try:
        podman_session.load(wasm_image_tar, WASM_IMAGE)
    except clients.ClientError as e:
        pytest.fail(str(e), pytrace=False)
    return podman_session


@pytest.fixture(scope="session")
def wasm_ctr_session(containerd_session, wasm_image_tar):
    try:
        containerd_session.load(wasm_image_tar, WASM_IMAGE)
    except clients.ClientError as e:
        pytest.fail(str(e), pytrace=False)
    return containerd_session


@pytest.fixture
def wpodman(wasm_podman_session, podman):
    return podman


@pytest.fixture
def wctr(wasm_ctr_session, ctr):
    return ctr


def podman_run(podman, name, *args, opts=()):
    """podman run --rm with ocirun; the annotation comes from the image alone."""
    return podman("run", "--rm", "--name", name, *opts, WASM_IMAGE, *args, runtime="ocirun")


def ctr_run(ctr, name, *args, opts=(), annotate=True):
    ann = ["--annotation", WASM_ANNOTATION] if annotate else []
    return ctr("run", "--rm", "--runc-binary", OCIRUN, *ann, *opts, WASM_IMAGE, name, *args)


def echo_sections(out):
    argv, sep, env = out.partition("--\n")
    assert sep, out
    return argv.splitlines(), env.splitlines()


# ----------------------------------------------------------------------------- podman
def test_podman_config_json_has_the_image_annotation(wpodman, name):
    """podman 4.3 copies the image manifest's annotations into the container's config.json
    (written by `podman init`, which also runs the runtime's `create`)."""
    p = wpodman("create", "--name", name, WASM_IMAGE, runtime="ocirun")
    assert p.returncode == 0, p.stderr
    cid = p.stdout.strip()
    try:
        p = wpodman("init", name)
        assert p.returncode == 0, p.stderr
        path = os.path.join(wpodman.dirs["graph"], "overlay-containers", cid, "userdata",
                            "config.json")
        with open(path) as f:
            spec = json.load(f)
        assert spec["annotations"].get("module.wasm.image/variant") == "compat", spec
        assert spec["process"]["args"] == ["/hello.wat"]
        rs = runtime_state("ocirun", clients.DEFAULT_ROOTS["ocirun"], cid)
        assert rs and rs["status"] == "created", rs
    finally:
        assert wpodman("rm", "-f", "-t", "0", name).returncode == 0


def cache_entries(client):
    try:
        return sorted(n for n in os.listdir(client.wasm_cache) if n.endswith(".cwasm"))
    except FileNotFoundError:
        return []


def test_podman_hello(wpodman, name):
    p = podman_run(wpodman, name)                       # the image's Cmd: /hello.wat
    assert (p.returncode, p.stdout) == (0, "hello from wasm\n"), p.stderr
    # the compiled module went to the session's cache (OCIRUN_WASM_CACHE through conmon)
    assert cache_entries(wpodman), os.listdir(wpodman.base)
    p = podman_run(wpodman, name)                       # again: from the cache
    assert (p.returncode, p.stdout) == (0, "hello from wasm\n"), p.stderr


def test_podman_annotation_flag(wpodman, name):
    """`podman run --annotation` selects the handler too (what podman >= 4.6 needs, since it no
    longer copies image annotations)."""
    p = podman_run(wpodman, name, "/hello.wat", opts=["--annotation", "run.oci.handler=wasm"])
    assert (p.returncode, p.stdout) == (0, "hello from wasm\n"), p.stderr


def test_podman_compat_smart_busybox_image(wpodman, name):
    """`compat-smart` on a native image: a `.wat` first argument runs on Wasmtime (the module
    from a read-only bind mount), anything else natively."""
    data = os.path.join(clients.REPO, "tests", "data", "wasm")
    opts = ["--annotation", "module.wasm.image/variant=compat-smart", "-v", f"{data}:/w:ro"]
    p = wpodman("run", "--rm", "--name", name, *opts, IMAGE, "/w/hello.wat", runtime="ocirun")
    assert (p.returncode, p.stdout) == (0, "hello from wasm\n"), p.stderr
    p = wpodman("run", "--rm", "--name", name, *opts, IMAGE, "sh", "-c", "echo native; exit 5",
                runtime="ocirun")
    assert (p.returncode, p.stdout) == (5, "native\n"), p.stderr


def test_podman_args_env(wpodman, name):
    p = podman_run(wpodman, name, "/echo.wat", "x", "y z", opts=["-e", "HELLO=world"])
    assert p.returncode == 0, p.stderr
    argv, env = echo_sections(p.stdout)
    assert argv == ["/echo.wat", "x", "y z"], p.stdout
    assert "HELLO=world" in env and "container=podman" in env, p.stdout


def test_podman_files_in_volume(wpodman, name, tmp_path):
    vol = tmp_path / "vol"
    vol.mkdir()
    (vol / "in.txt").write_text("from the host volume\n")
    p = podman_run(wpodman, name, "/files.wat", opts=["-v", f"{vol}:/data", "-w", "/data"])
    assert (p.returncode, p.stdout) == (0, "from the host volume\n"), p.stderr
    assert (vol / "out.txt").read_text() == "written by wasm\n"


def test_podman_files_in_named_volume(wpodman, name):
    """A podman named volume: the module writes out.txt there; a second container reads it
    back (files.wat copies /data/in.txt: the volume is seeded by a first run with cwd /data)."""
    vname = name + "-vol"
    assert wpodman("volume", "create", vname).returncode == 0
    try:
        path = wpodman("volume", "inspect", vname, "--format", "{{.Mountpoint}}").stdout.strip()
        with open(os.path.join(path, "in.txt"), "w") as f:
            f.write("named volume\n")
        p = podman_run(wpodman, name, "/files.wat", opts=["-v", f"{vname}:/data", "-w", "/data"])
        assert (p.returncode, p.stdout) == (0, "named volume\n"), p.stderr
        with open(os.path.join(path, "out.txt")) as f:
            assert f.read() == "written by wasm\n"
    finally:
        assert wpodman("volume", "rm", "-f", vname).returncode == 0


def test_podman_stdin(wpodman, name):
    p = wpodman("run", "-i", "--rm", "--name", name, WASM_IMAGE, "/cat.wat", runtime="ocirun",
                input="line one\nline two\n")
    assert (p.returncode, p.stdout) == (0, "line one\nline two\n<eof>"), p.stderr


def test_podman_tty(wpodman, name):
    """`podman run -it`: the module's stdio is the container's terminal; ^D ends its input."""
    rc, out = in_pty(wpodman.argv("run", "-it", "--rm", "--name", name, WASM_IMAGE, "/cat.wat",
                                  runtime="ocirun"),
                     env=wpodman.env, steps=[("", b"typed\r"), ("typed\r\ntyped", b"\x04")])
    assert rc == 0, out
    assert "typed\r\ntyped" in out and out.rstrip().endswith("<eof>"), repr(out)


@pytest.mark.parametrize("code", [0, 3, 42])
def test_podman_exit_code(wpodman, name, code):
    p = podman_run(wpodman, name, "/exit.wat", str(code))
    assert p.returncode == code, p.stderr


@pytest.mark.parametrize("module", ["trap.wat", "oob.wat"])
def test_podman_trap(wpodman, name, module):
    p = podman_run(wpodman, name, "/" + module)
    assert p.returncode == 134, (p.stdout, p.stderr)
    assert "wasm trap" in p.stderr, p.stderr


REFUSED = [("component.wat", "is a WebAssembly component"),
           ("reactor.wat", "has no _start export"),
           ("missing-import.wat", "unknown import"),
           ("nonexistent.wat", "nonexistent.wat")]


@pytest.mark.parametrize("module,message", REFUSED, ids=[m for m, _ in REFUSED])
def test_podman_refused_module(wpodman, name, module, message):
    """Refused at the runtime's `create`: podman shows ocirun's one line (nothing is left: the
    harness checks containers now and mounts/cgroups at the end of the session)."""
    p = podman_run(wpodman, name, "/" + module)
    assert p.returncode not in (0, 134) and message in p.stderr, (p.returncode, p.stderr)
    assert "Traceback" not in p.stderr


def test_podman_memory_limit_refuses_growth(wpodman, name):
    p = podman_run(wpodman, name, "/grow.wat")          # no limit: 16 MiB more is fine
    assert (p.returncode, p.stdout) == (0, "grow ok\n"), p.stderr
    p = podman_run(wpodman, name, "/grow.wat", opts=["--memory", "12m"])
    assert (p.returncode, p.stdout) == (7, "grow refused\n"), p.stderr


def inspect_state(podman, name):
    p = podman("inspect", name, "--format", "{{json .State}}")
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def podman_loop(podman, name):
    p = podman("run", "-d", "--name", name, WASM_IMAGE, "/loop.wat", runtime="ocirun")
    assert p.returncode == 0, p.stderr
    cid = p.stdout.strip()
    wait_for(lambda: "looping" in podman("logs", name).stdout, 20, "the module's output")
    st = inspect_state(podman, name)
    rs = runtime_state("ocirun", clients.DEFAULT_ROOTS["ocirun"], cid)
    assert rs and rs["status"] == "running" and rs["pid"] == st["Pid"], rs
    assert rs["annotations"]["module.wasm.image/variant"] == "compat", rs
    return cid


def test_podman_stop_endless_loop(wpodman, name):
    podman_loop(wpodman, name)
    # exec into a Wasm container: ocirun's one-line refusal reaches the user
    p = wpodman("exec", name, "/hello.wat")
    assert p.returncode != 0 and "not supported for wasm" in p.stderr, (p.returncode, p.stderr)
    t = time.monotonic()
    p = wpodman("stop", "-t", "20", name)
    took = time.monotonic() - t
    assert p.returncode == 0, p.stderr
    assert took < 10, f"stop took {took:.1f} s: SIGTERM did not stop the spinning module"
    st = inspect_state(wpodman, name)
    assert st["Status"] == "exited" and st["ExitCode"] == 128 + 15, st
    assert wpodman("rm", name).returncode == 0


def test_podman_kill_endless_loop(wpodman, name):
    podman_loop(wpodman, name)
    assert wpodman("kill", "-s", "KILL", name).returncode == 0
    p = wpodman("wait", name)
    assert (p.returncode, p.stdout.strip()) == (0, "137"), (p.stdout, p.stderr)
    assert wpodman("rm", name).returncode == 0


def test_podman_ulimit_cpu_ends_endless_loop(wpodman, name):
    """`--ulimit cpu=1:2` (process.rlimits RLIMIT_CPU): the spinning module is ended by the
    kernel (SIGXCPU is ignored by a pid-namespace init; the hard limit's SIGKILL is not)."""
    # any --ulimit replaces containers.conf's default_ulimits, and podman's own nofile and
    # nproc defaults are above this host's hard limits: state them too
    nofile = min(1024, clients._hard_nofile())
    t = time.monotonic()
    p = podman_run(wpodman, name, "/loop.wat",
                   opts=["--ulimit", "cpu=1:2", "--ulimit", f"nofile={nofile}:{nofile}",
                         "--ulimit", "nproc=32768:32768"])
    assert p.returncode in (128 + 24, 128 + 9), (p.returncode, p.stderr)
    assert p.stdout == "looping\n"
    assert time.monotonic() - t < 30


# ----------------------------------------------------------------------------- containerd
def test_ctr_without_annotation_runs_native(wctr, name):
    """Control: containerd does not pass image annotations; without --annotation the `.wat`
    file is exec'ed as a native program (not executable: permission denied)."""
    p = ctr_run(wctr, name, "/hello.wat", annotate=False)
    assert p.returncode != 0 and "permission denied" in p.stderr, (p.returncode, p.stderr)
    assert "hello from wasm" not in p.stdout
    wctr("containers", "delete", name)


@pytest.mark.parametrize("how", ["annotation", "label"])
def test_ctr_hello(wctr, name, how):
    """`--annotation K=V` sets the annotation; ctr 1.6 also copies `--label K=V` into the spec's
    annotations (what older guides use)."""
    if how == "annotation":
        p = ctr_run(wctr, name)                         # the image's Cmd: /hello.wat
    else:
        p = ctr_run(wctr, name, opts=["--label", WASM_ANNOTATION], annotate=False)
    assert (p.returncode, p.stdout) == (0, "hello from wasm\n"), p.stderr
    assert cache_entries(wctr)      # OCIRUN_WASM_CACHE reached the runtime through the shim


def test_ctr_args_env(wctr, name):
    p = ctr_run(wctr, name, "/echo.wat", "x", "y z", opts=["--env", "HELLO=world"])
    assert p.returncode == 0, p.stderr
    argv, env = echo_sections(p.stdout)
    assert argv == ["/echo.wat", "x", "y z"], p.stdout
    assert "HELLO=world" in env, p.stdout


def test_ctr_files_in_mount(wctr, name, tmp_path):
    vol = tmp_path / "vol"
    vol.mkdir()
    (vol / "in.txt").write_text("from the host mount\n")
    p = ctr_run(wctr, name, "/files.wat", opts=[
        "--mount", f"type=bind,src={vol},dst=/data,options=rbind:rw", "--cwd", "/data"])
    assert (p.returncode, p.stdout) == (0, "from the host mount\n"), p.stderr
    assert (vol / "out.txt").read_text() == "written by wasm\n"


def test_ctr_tty(wctr, name):
    """`ctr run -t`: the module reads the container's terminal; ^D ends its input. (Without -t,
    ctr 1.6 never closes the task's stdin at end of input, with runc as with ocirun: no
    piped-stdin case for ctr.)"""
    rc, out = in_pty(wctr.ctr_cmd() + [
        "run", "-t", "--rm", "--runc-binary", OCIRUN, "--annotation", WASM_ANNOTATION,
        WASM_IMAGE, name, "/cat.wat"],
        env=wctr.env, steps=[("", b"typed\r"), ("typed\r\ntyped", b"\x04")])
    assert rc == 0, out
    assert "typed\r\ntyped" in out and out.rstrip().endswith("<eof>"), repr(out)


@pytest.mark.parametrize("code", [0, 3, 42])
def test_ctr_exit_code(wctr, name, code):
    p = ctr_run(wctr, name, "/exit.wat", str(code))
    assert p.returncode == code, p.stderr


@pytest.mark.parametrize("module", ["trap.wat", "oob.wat"])
def test_ctr_trap(wctr, name, module):
    p = ctr_run(wctr, name, "/" + module)
    assert p.returncode == 134, (p.stdout, p.stderr)
    assert "wasm trap" in p.stderr, p.stderr


@pytest.mark.parametrize("module,message", REFUSED, ids=[m for m, _ in REFUSED])
def test_ctr_refused_module(wctr, name, module, message):
    p = ctr_run(wctr, name, "/" + module)
    assert p.returncode not in (0, 134) and message in p.stderr, (p.returncode, p.stderr)
    assert "Traceback" not in p.stderr
    wctr("containers", "delete", name)     # ctr keeps the container when its task fails


def test_ctr_memory_limit_refuses_growth(wctr, name):
    p = ctr_run(wctr, name, "/grow.wat")
    assert (p.returncode, p.stdout) == (0, "grow ok\n"), p.stderr
    p = ctr_run(wctr, name, "/grow.wat", opts=["--memory-limit", str(12 << 20)])
    assert (p.returncode, p.stdout) == (7, "grow refused\n"), p.stderr


def task_row(ctr, name):
    for line in ctr("tasks", "list").stdout.splitlines()[1:]:
        f = line.split()
        if f and f[0] == name:
            return f                                    # TASK PID STATUS
    return None


def ctr_loop(ctr, name, log):
    p = ctr("run", "-d", "--runc-binary", OCIRUN, "--annotation", WASM_ANNOTATION,
            "--log-uri", f"file://{log}", WASM_IMAGE, name, "/loop.wat")
    assert p.returncode == 0, p.stderr
    row = wait_for(lambda: task_row(ctr, name), 10, f"task {name}")
    wait_for(lambda: os.path.exists(log) and "looping" in open(log).read(), 20,
             "the module's output")
    rs = runtime_state("ocirun", f"/run/containerd/runc/{ctr.ns}", name)
    assert rs and rs["status"] == "running" and rs["pid"] == int(row[1]), rs
    assert task_row(ctr, name)[2] == "RUNNING"


def ctr_stopped_status(ctr, name, timeout):
    wait_for(lambda: (task_row(ctr, name) or [None] * 3)[2] == "STOPPED", timeout,
             "task stopped")
    p = ctr("tasks", "delete", name)
    assert p.returncode == 0, p.stderr
    assert ctr("containers", "delete", name).returncode == 0
    return p.stdout + p.stderr


def test_ctr_kill_term_endless_loop(wctr, name, tmp_path):
    ctr_loop(wctr, name, tmp_path / "out.log")
    p = wctr("tasks", "exec", "--exec-id", "e1", name, "/hello.wat")
    assert p.returncode != 0 and "not supported for wasm" in p.stderr, (p.returncode, p.stderr)
    t = time.monotonic()
    assert wctr("tasks", "kill", name).returncode == 0   # SIGTERM
    out = ctr_stopped_status(wctr, name, 10)
    assert time.monotonic() - t < 5
    assert "143" in out, out


def test_ctr_kill_sigkill_endless_loop(wctr, name, tmp_path):
    ctr_loop(wctr, name, tmp_path / "out.log")
    assert wctr("tasks", "kill", "-s", "SIGKILL", name).returncode == 0
    out = ctr_stopped_status(wctr, name, 10)
    assert "137" in out, out
