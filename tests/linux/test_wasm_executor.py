"""The executors in a fresh interpreter, through tests/linux/exec_driver.py: prepare() with an
fd of a temporary rootfs, chroot into it, run(). Real processes, real signals, real rlimits."""
import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DATA = os.path.join(REPO, "tests", "data", "wasm")
DRIVER = os.path.join(HERE, "exec_driver.py")
SITE = sysconfig.get_paths()["purelib"]
WASM = {"run.oci.handler": "wasm"}

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chroot)")


def wat2wasm(path):
    import wasmtime  # the test process may pay for it; the executor never imports it
    with open(path) as f:
        return wasmtime.wat2wasm(f.read())


@pytest.fixture
def rootfs(tmp_path):
    """A tiny rootfs: every fixture module (.wat) at /, hello.wasm (binary), /data/in.txt,
    an empty /work."""
    root = tmp_path / "rootfs"
    root.mkdir()
    for n in os.listdir(DATA):
        if n.endswith(".wat"):
            shutil.copy(os.path.join(DATA, n), root / n)
    (root / "hello.wasm").write_bytes(wat2wasm(os.path.join(DATA, "hello.wat")))
    (root / "data").mkdir()
    (root / "data" / "in.txt").write_text("input data\n")
    (root / "work").mkdir()
    return root


class Result:
    def __init__(self, p, report, elapsed):
        self.rc = p.returncode
        self.stdout = p.stdout
        self.stderr = p.stderr
        self.report = report
        self.elapsed = elapsed

    def __repr__(self):
        return f"rc={self.rc} stdout={self.stdout!r} stderr={self.stderr!r} report={self.report}"


def drive(rootfs, args, cache=None, annotations=WASM, timeout=30, **kw):
    r, w = os.pipe()
    cfg = {"path": [REPO, SITE], "rootfs": str(rootfs), "args": args,
           "annotations": annotations, "cache": str(cache) if cache else None,
           "report_fd": w, **kw}
    t = time.monotonic()
    try:
        p = subprocess.run([sys.executable, "-I", "-S", DRIVER, json.dumps(cfg)],
                           capture_output=True, text=True, timeout=timeout, pass_fds=(w,))
    finally:
        os.close(w)
    elapsed = time.monotonic() - t
    with os.fdopen(r) as f:
        line = f.read()
    return Result(p, json.loads(line) if line else None, elapsed)


# ---------------------------------------------------------------- running modules

def test_hello_wat_and_wasm(rootfs, tmp_path):
    for prog in ("/hello.wat", "/hello.wasm"):
        res = drive(rootfs, [prog], cache=tmp_path / "c")
        assert (res.rc, res.stdout) == (0, "hello from wasm\n"), res
        assert res.report["executor"] == "wasm"


def test_args_and_env(rootfs):
    res = drive(rootfs, ["echo.wat", "two words", "", "ü"],
                env=["A=1", "B=x=y", "PATH=/bin"])
    assert res.rc == 0, res
    assert res.stdout == "echo.wat\ntwo words\n\nü\n--\nA=1\nB=x=y\nPATH=/bin\n"


@pytest.mark.parametrize("status", [0, 3, 42])
def test_proc_exit_status(rootfs, status):
    res = drive(rootfs, ["/exit.wat", str(status)])
    assert res.rc == status, res


def test_stdin_inherited_and_unterminated_output_flushed(rootfs):
    r, w = os.pipe()
    cfg = {"path": [REPO, SITE], "rootfs": str(rootfs), "args": ["/cat.wat"],
           "annotations": WASM, "cache": None}
    os.write(w, b"line1\nline2 no newline")
    os.close(w)
    try:
        p = subprocess.run([sys.executable, "-I", "-S", DRIVER, json.dumps(cfg)], stdin=r,
                           capture_output=True, timeout=30)
    finally:
        os.close(r)
    assert (p.returncode, p.stdout) == (0, b"line1\nline2 no newline<eof>"), p.stderr


def test_terminal_stdio(rootfs):
    # process.terminal: the init makes a pty slave fds 0/1/2; the module writes to it as is
    master, slave = os.openpty()
    cfg = {"path": [REPO, SITE], "rootfs": str(rootfs), "args": ["/hello.wat"],
           "annotations": WASM, "cache": None}
    try:
        p = subprocess.Popen([sys.executable, "-I", "-S", DRIVER, json.dumps(cfg)], stdin=slave,
                             stdout=slave, stderr=slave, start_new_session=True)
        os.close(slave)
        slave = -1
        assert p.wait(timeout=30) == 0
        out = b""
        while not out.endswith(b"\n"):
            out += os.read(master, 100)
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    assert out == b"hello from wasm\r\n"   # the tty's ONLCR


def test_trap_exits_134_with_message(rootfs):
    res = drive(rootfs, ["/trap.wat"])
    assert res.rc == 134, res
    assert "unreachable" in res.stderr


def test_oob_trap_survives_signal_reset(rootfs):
    # traps are explicit checks, not SIGSEGV handlers: an init resetting signal
    # dispositions between prepare() and run() must not turn a trap into a crash
    for clobber in (False, True):
        res = drive(rootfs, ["/oob.wat"], clobber_signals=clobber)
        assert res.rc == 134, res
        assert "out of bounds memory access" in res.stderr


def test_preopens_root_and_cwd(rootfs):
    res = drive(rootfs, ["../files.wat"], cwd="/work")
    assert res.rc == 0, res
    assert res.stdout == "input data\n"
    assert (rootfs / "work" / "out.txt").read_text() == "written by wasm\n"


def test_module_path_confined_to_rootfs(rootfs, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(os.path.join(DATA, "hello.wat"), outside / "hello.wat")
    os.symlink(str(outside / "hello.wat"), rootfs / "evil.wat")   # absolute: resolved in root
    os.symlink("../../outside/hello.wat", rootfs / "evil2.wat")     # dot-dot: clamped at root
    for prog in ("/evil.wat", "/evil2.wat", f"/../..{outside}/hello.wat"):
        res = drive(rootfs, [prog])
        assert res.rc == 97, res
        assert "No such file or directory" in res.stderr, res
    # the same kind of symlink, pointing inside the rootfs, works
    os.symlink("/hello.wat", rootfs / "good.wat")
    assert drive(rootfs, ["/good.wat"]).rc == 0


def test_memory_limit_caps_linear_memory(rootfs):
    res = drive(rootfs, ["/grow.wat"])
    assert (res.rc, res.stdout) == (0, "grow ok\n"), res
    res = drive(rootfs, ["/grow.wat"], memory=8 << 20)
    assert (res.rc, res.stdout) == (7, "grow refused\n"), res
    res = drive(rootfs, ["/grow.wat"], memory=64 << 20)
    assert (res.rc, res.stdout) == (0, "grow ok\n"), res


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stop_signal_interrupts_busy_loop(rootfs, sig):
    r, w = os.pipe()
    cfg = {"path": [REPO, SITE], "rootfs": str(rootfs), "args": ["/loop.wat"],
           "annotations": WASM, "cache": None}
    p = subprocess.Popen([sys.executable, "-I", "-S", DRIVER, json.dumps(cfg)],
                         stdout=w, stderr=subprocess.PIPE)
    os.close(w)
    try:
        with os.fdopen(r, "rb") as out:
            assert out.readline() == b"looping\n"    # the module is spinning now
            time.sleep(0.2)
            t = time.monotonic()
            p.send_signal(sig)
            rc = p.wait(timeout=10)
            elapsed = time.monotonic() - t
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert rc == -sig, p.stderr.read()
    # epoch interruption, not the STOP_GRACE (2 s) fallback
    assert elapsed < 1.0, elapsed


def test_stop_signal_ends_module_blocked_in_host_call(rootfs):
    # reading an open, silent stdin: no epoch check can fire; STOP_GRACE (2 s) then exit
    r, w = os.pipe()
    cfg = {"path": [REPO, SITE], "rootfs": str(rootfs), "args": ["/cat.wat"],
           "annotations": WASM, "cache": None}
    p = subprocess.Popen([sys.executable, "-I", "-S", DRIVER, json.dumps(cfg)], stdin=r,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    os.close(r)
    try:
        os.write(w, b"ping\n")
        assert p.stdout.readline() == b"ping\n"     # now blocked in fd_read
        t = time.monotonic()
        p.send_signal(signal.SIGTERM)
        rc = p.wait(timeout=10)
        elapsed = time.monotonic() - t
    finally:
        os.close(w)
        if p.poll() is None:
            p.kill()
            p.wait()
    if rc == -signal.SIGTERM:
        # the signal landed on the main thread: read() failed with EINTR, the module
        # returned to wasm and was stopped there
        assert elapsed < 1.0, elapsed
    else:
        # it landed on another thread: the read goes on, STOP_GRACE ends it
        assert rc == 128 + signal.SIGTERM
        assert 1.5 < elapsed < 4, elapsed


def test_rlimit_cpu_kills_spinning_module(rootfs):
    res = drive(rootfs, ["/loop.wat"], rlimits=[["RLIMIT_CPU", 1, 2]], timeout=20)
    assert res.rc in (-signal.SIGXCPU, -signal.SIGKILL), res
    assert res.stdout == "looping\n"


def test_rlimit_as_does_not_break_instantiation(rootfs):
    # Wasmtime's default reserves 4 GiB+ of address space per linear memory
    res = drive(rootfs, ["/grow.wat"], rlimits=[["RLIMIT_AS", 1 << 30, 1 << 30]])
    assert (res.rc, res.stdout) == (0, "grow ok\n"), res


@pytest.mark.parametrize("prog,msg", [
    ("/reactor.wat", "has no _start export (a reactor module)"),
    ("/component.wat", "is a WebAssembly component"),
    ("/missing-import.wat", "unknown import: `env::missing`"),
    ("/nope.wasm", '"/nope.wasm": No such file or directory'),
    ("/data", '"/data": not a regular file'),
])
def test_refused_before_start(rootfs, prog, msg):
    res = drive(rootfs, [prog])
    assert res.rc == 97, res
    assert msg in res.stderr, res


def test_prepare_starts_no_thread_and_skips_python_wasmtime(rootfs):
    res = drive(rootfs, ["/hello.wat"])
    assert res.rc == 0, res
    assert res.report["threads"] == 1
    assert res.report["capi_loaded"] and not res.report["wasmtime_imported"]


# ---------------------------------------------------------------- compile cache

def _cache_files(cache):
    return sorted(n for n in os.listdir(cache) if n.endswith(".cwasm"))


def test_cache_second_start_skips_compilation(rootfs, tmp_path):
    cache = tmp_path / "cache"
    first = drive(rootfs, ["/hello.wat"], cache=cache)
    assert first.rc == 0 and first.report["cache_hit"] is False, first
    st = os.stat(cache)
    assert st.st_mode & 0o777 == 0o700
    files = _cache_files(cache)
    assert len(files) == 1
    assert os.stat(cache / files[0]).st_mode & 0o777 == 0o600
    assert os.stat(cache / "key").st_mode & 0o777 == 0o600
    second = drive(rootfs, ["/hello.wat"], cache=cache)
    assert (second.rc, second.stdout) == (0, "hello from wasm\n"), second
    assert second.report["cache_hit"] is True
    assert second.report["timings"]["compile"] < first.report["timings"]["compile"]
    # other bytes, other entry
    (rootfs / "hello2.wat").write_text((rootfs / "hello.wat").read_text() + "\n")
    assert drive(rootfs, ["/hello2.wat"], cache=cache).report["cache_hit"] is False
    assert len(_cache_files(cache)) == 2


def test_cache_rejects_tampered_artifact(rootfs, tmp_path):
    cache = tmp_path / "cache"
    assert drive(rootfs, ["/exit.wat", "5"], cache=cache).rc == 5
    [name] = _cache_files(cache)
    path = cache / name
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF                      # one flipped byte in the artifact
    path.write_bytes(bytes(data))
    os.chmod(path, 0o600)
    res = drive(rootfs, ["/exit.wat", "5"], cache=cache)
    assert (res.rc, res.report["cache_hit"]) == (5, False), res
    # the bad entry was replaced by a good one
    res = drive(rootfs, ["/exit.wat", "5"], cache=cache)
    assert (res.rc, res.report["cache_hit"]) == (5, True), res
    # an entry with a foreign key (another cache's MAC) is not trusted either
    (cache / "key").write_bytes(os.urandom(32))
    res = drive(rootfs, ["/exit.wat", "5"], cache=cache)
    assert (res.rc, res.report["cache_hit"]) == (5, False), res


def test_cache_not_used_when_not_ours(rootfs, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    os.chown(cache, 65534, 65534)
    try:
        for _ in range(2):
            res = drive(rootfs, ["/hello.wat"], cache=cache)
            assert (res.rc, res.report["cache_hit"]) == (0, False), res
        assert os.listdir(cache) == []
    finally:
        os.chown(cache, 0, 0)


def test_cache_entry_with_loose_mode_ignored(rootfs, tmp_path):
    cache = tmp_path / "cache"
    assert drive(rootfs, ["/hello.wat"], cache=cache).rc == 0
    [name] = _cache_files(cache)
    os.chmod(cache / name, 0o666)
    res = drive(rootfs, ["/hello.wat"], cache=cache)
    assert (res.rc, res.report["cache_hit"]) == (0, False), res


# ---------------------------------------------------------------- native executor

@pytest.fixture
def busybox_root(tmp_path):
    src = os.path.join(REPO, "build", "rootfs", "busybox")
    if not os.path.exists(os.path.join(src, "bin", "busybox")):
        pytest.fail(f"test rootfs missing: run hack/setup.sh ({src})")
    d = tmp_path / "bb"
    subprocess.run(["cp", "-al", src, str(d)], check=True)
    return d


def test_native_path_lookup_in_container(busybox_root):
    res = drive(busybox_root, ["sh", "-c", "echo hi $0"], annotations={},
                env=["PATH=/usr/bin:/bin"])
    assert res.report["executor"] == "native"
    assert (res.rc, res.stdout) == (0, "hi sh\n"), res
    assert not res.report["capi_loaded"]


def test_native_not_found_message(busybox_root):
    res = drive(busybox_root, ["nosuchprog"], annotations={}, env=["PATH=/bin"])
    assert res.rc == 97
    assert 'exec: "nosuchprog": executable file not found in $PATH' in res.stderr


def test_native_signals_reset(busybox_root):
    # CPython ignores SIGPIPE and an ignored signal survives execve: a shell that inherited
    # it would survive this kill; with the default disposition it dies of it
    res = drive(busybox_root, ["sh", "-c", "kill -PIPE $$; echo survived"], annotations={},
                env=["PATH=/bin"])
    assert res.rc == -signal.SIGPIPE, res


def test_wasm_suffix_without_annotation_is_native(busybox_root):
    (busybox_root / "prog.wasm").write_text("#!/bin/sh\necho native\n")
    os.chmod(busybox_root / "prog.wasm", 0o755)
    res = drive(busybox_root, ["/prog.wasm"], annotations={})
    assert (res.report["executor"], res.rc, res.stdout) == ("native", 0, "native\n"), res
    res = drive(busybox_root, ["/prog.wasm"],
                annotations={"module.wasm.image/variant": "compat-smart"})
    # the smart variant takes it as a module (not valid WebAssembly: refused in prepare)
    assert res.rc == 97 and 'wasm module "/prog.wasm"' in res.stderr, res
