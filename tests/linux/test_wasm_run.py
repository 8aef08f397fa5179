"""Wasm containers through the real ``ocirun`` (bundle annotations, as crun's users write them)."""
import os
import shutil
import subprocess
import time

import pytest

from helpers import OCIRUN

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "wasm")


@pytest.fixture
def env(tmp_path):
    return dict(os.environ, OCIRUN_WASM_CACHE=str(tmp_path / "wasm-cache"))


@pytest.fixture
def wasm_bundle(make_bundle):
    def make(args, annotations=None, **kw):
        b = make_bundle(args=args, **kw)
        for n in os.listdir(DATA):
            if n.endswith(".wat"):
                # the rootfs is hard-linked to the shared one: add files, never modify
                shutil.copy(os.path.join(DATA, n), os.path.join(b.rootfs, n))
        b.config["annotations"] = annotations or {"run.oci.handler": "wasm"}
        return b.write()
    return make


def test_run_hello(ocirun, wasm_bundle, env):
    b = wasm_bundle(["/hello.wat"])
    p = ocirun("run", "--bundle", b.path, "w-hello", env=env)
    assert (p.returncode, p.stdout) == (0, "hello from wasm\n"), p.stderr
    # second start: from the compile cache
    assert any(n.endswith(".cwasm") for n in os.listdir(env["OCIRUN_WASM_CACHE"]))
    p = ocirun("run", "--bundle", b.path, "w-hello", env=env)
    assert (p.returncode, p.stdout) == (0, "hello from wasm\n"), p.stderr


@pytest.mark.parametrize("ann", [{"module.wasm.image/variant": "compat"},
                                 {"run.oci.handler": "wasm-smart"}])
def test_run_annotations_and_env(ocirun, wasm_bundle, env, ann):
    b = wasm_bundle(["echo.wat", "x"], annotations=ann)
    b.process["cwd"] = "/"
    b.process["env"] = ["HELLO=world"]
    b.write()
    p = ocirun("run", "--bundle", b.path, "w-echo", env=env)
    assert (p.returncode, p.stdout) == (0, "echo.wat\nx\n--\nHELLO=world\n"), p.stderr


@pytest.mark.parametrize("prog,status", [(["/exit.wat", "42"], 42), (["/trap.wat"], 134)])
def test_run_exit_status(ocirun, wasm_bundle, env, prog, status):
    b = wasm_bundle(prog)
    p = ocirun("run", "--bundle", b.path, "w-status", env=env)
    assert p.returncode == status, p.stderr


def test_memory_limit_caps_linear_memory(ocirun, wasm_bundle, env):
    b = wasm_bundle(["/grow.wat"])
    b.linux.setdefault("resources", {})["memory"] = {"limit": 8 << 20}
    b.write()
    p = ocirun("run", "--bundle", b.path, "w-mem", env=env)
    assert (p.returncode, p.stdout) == (7, "grow refused\n"), p.stderr


def test_component_refused_at_create(ocirun, wasm_bundle, env):
    b = wasm_bundle(["/component.wat"])
    p = ocirun("run", "--bundle", b.path, "w-comp", env=env)
    assert p.returncode != 0
    assert "is a WebAssembly component" in p.stderr


def test_kill_term_stops_spinning_module(ocirun, wasm_bundle, env, tmp_path):
    b = wasm_bundle(["/loop.wat"])
    out = tmp_path / "out"
    # the container keeps create's stdio: files, not pipes subprocess would wait on
    with open(out, "w") as f, open(tmp_path / "err", "w") as e:
        p = subprocess.run([OCIRUN, "--root", ocirun.root, "create", "--bundle", b.path,
                            "w-loop"], stdout=f, stderr=e, env=env, timeout=60)
    assert p.returncode == 0, (tmp_path / "err").read_text()
    ocirun.ok("start", "w-loop")
    deadline = time.monotonic() + 20
    while out.read_text() != "looping\n":
        assert time.monotonic() < deadline, "module never started"
        time.sleep(0.05)
    time.sleep(0.2)
    assert ocirun.state("w-loop")["status"] == "running"
    t = time.monotonic()
    ocirun.ok("kill", "w-loop", "15")   # pid 1 of its pid namespace: has a handler, so it gets it
    while ocirun.state("w-loop")["status"] != "stopped":
        assert time.monotonic() - t < 5, "SIGTERM did not stop the module"
        time.sleep(0.02)
    assert time.monotonic() - t < 1.5
    ocirun.ok("delete", "w-loop")


def test_foreground_run_forwards_sigterm(ocirun, wasm_bundle, env, tmp_path):
    b = wasm_bundle(["/loop.wat"])
    p = subprocess.Popen([OCIRUN, "--root", ocirun.root, "run", "--bundle", b.path, "w-fg"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        assert p.stdout.readline() == b"looping\n"
        time.sleep(0.2)
        t = time.monotonic()
        p.send_signal(15)
        rc = p.wait(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert rc == 128 + 15, p.stderr.read()
    assert time.monotonic() - t < 1.5


def test_rlimit_cpu_ends_spinning_module(ocirun, wasm_bundle, env):
    # pid 1 of a pid namespace ignores SIGXCPU (default action); the hard limit's SIGKILL ends it
    b = wasm_bundle(["/loop.wat"])
    b.process["rlimits"] = [{"type": "RLIMIT_CPU", "soft": 1, "hard": 2}]
    b.write()
    t = time.monotonic()
    p = ocirun("run", "--bundle", b.path, "w-cpu", env=env, timeout=30)
    assert p.returncode in (128 + 24, 128 + 9), p
    assert p.stdout == "looping\n"
    assert time.monotonic() - t < 15


def test_unprivileged_user(ocirun, wasm_bundle, env):
    b = wasm_bundle(["/echo.wat"])
    b.process["user"] = {"uid": 1000, "gid": 1000}
    b.process["env"] = ["X=1"]
    b.write()
    p = ocirun("run", "--bundle", b.path, "w-user", env=env)
    assert (p.returncode, p.stdout) == (0, "/echo.wat\n--\nX=1\n"), p.stderr


def test_module_and_files_in_a_bind_mounted_volume(ocirun, wasm_bundle, env, tmp_path):
    """The module itself lives in a volume (resolved after the mounts are made) and reads and
    writes files under that mount through the WASI preopens; the host sees what it wrote."""
    vol = tmp_path / "vol"
    vol.mkdir()
    shutil.copy(os.path.join(DATA, "files.wat"), vol / "files.wat")
    (vol / "in.txt").write_text("from the host volume\n")
    b = wasm_bundle(["/data/files.wat"])
    b.process["cwd"] = "/data"
    b.config["mounts"].append({"destination": "/data", "type": "bind", "source": str(vol),
                               "options": ["rbind", "rw"]})
    b.write()
    p = ocirun("run", "--bundle", b.path, "w-vol", env=env)
    assert (p.returncode, p.stdout) == (0, "from the host volume\n"), p.stderr
    assert (vol / "out.txt").read_text() == "written by wasm\n"
    assert not os.path.exists(os.path.join(b.rootfs, "data", "out.txt"))


def test_exec_into_wasm_container_refused(ocirun, wasm_bundle, env, tmp_path):
    """`ocirun exec` into a running Wasm container: one clear line, exit 1, the container
    unharmed (podman exec / ctr tasks exec show the same line)."""
    b = wasm_bundle(["/loop.wat"])
    with open(tmp_path / "out", "w") as f:
        p = subprocess.run([OCIRUN, "--root", ocirun.root, "run", "-d", "--bundle", b.path,
                            "w-exec"], stdin=subprocess.DEVNULL, stdout=f, stderr=f, env=env,
                           timeout=60)
    assert p.returncode == 0, (tmp_path / "out").read_text()
    try:
        for argv in (["/hello.wat"], ["/bin/sh", "-c", "true"]):
            p = ocirun("exec", "w-exec", *argv)
            assert p.returncode == 1, p
            assert p.stderr.strip().endswith("exec is not supported for wasm containers"), p
        assert ocirun.state("w-exec")["status"] == "running"
    finally:
        ocirun("kill", "w-exec", "KILL")
        deadline = time.monotonic() + 10
        while ocirun.state("w-exec")["status"] != "stopped" and time.monotonic() < deadline:
            time.sleep(0.02)
        ocirun.ok("delete", "w-exec")
