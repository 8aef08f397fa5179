"""The Wasm executor: runs a WASI preview 1 command module in-process on Wasmtime.

prepare() (host still visible, no threads): load Wasmtime's library, read the module through
the rootfs fd (openat2 RESOLVE_IN_ROOT), check it is a core command module, and compile it —
or load the compiled artifact from the on-disk cache (``/var/cache/ocirun/wasm``) after
checking its MAC. run() (after the switch to the container's root and every privilege drop):
WASI context (args, env, stdio, preopens "/" and the cwd), store limits, then ``_start``;
the process exits with the module's status.

Status: proc_exit(n) -> n; returning from _start -> 0; a trap -> 134 (message on stderr);
SIGTERM/SIGINT/SIGHUP -> the module is interrupted (epoch) and the process ends as if killed
by that signal (128+n when it is a pid namespace's init, which cannot kill itself).
See docs/wasm.md.
"""
import os

from ..errors import SetupError, Unsupported
from .base import Executor, env_pairs, reset_signals, write_err
from .wasm_cache import (CACHE_ENV, DEFAULT_CACHE_DIR, CompileCache,  # noqa: F401
                         default_cache_dir, read_all, sha256)

TRAP_STATUS = 134                 # 128 + SIGABRT, as wasmtime's CLI
FAIL_STATUS = 1                   # the module could not be instantiated
STOP_SIGNALS = (1, 2, 15)         # SIGHUP SIGINT SIGTERM: interrupt the module
STOP_GRACE = 2.0                  # s; then exit even if the module is blocked in a host call

_WASM_MAGIC = b"\0asm"
_CORE_VERSION = b"\x01\0\0\0"


def exec_unsupported():
    """``ocirun exec`` into a Wasm container: there is no second process to start."""
    raise Unsupported("exec is not supported for wasm containers")


# ---------------------------------------------------------------- config helpers

def memory_limit(spec):
    """linux.resources.memory.limit in bytes, or None (absent, 0 or -1 = unlimited)."""
    res = spec.linux.resources
    mem = getattr(res, "memory", None) if res is not None else None
    cur = getattr(mem, "limit", None) if mem is not None else None
    if isinstance(cur, bool) or not isinstance(cur, int) or cur <= 0:
        return None
    return cur


def address_space_limit(spec):
    """The soft RLIMIT_AS of process.rlimits, or None."""
    proc = getattr(spec, "process", None)
    for r in getattr(proc, "rlimits", None) or ():
        if isinstance(r, dict):
            name, soft = r.get("type"), r.get("soft")
        elif isinstance(r, (tuple, list)):
            name, soft = r[0], r[1]
        else:
            name, soft = getattr(r, "type", None), getattr(r, "soft", None)
        if name == "RLIMIT_AS" and isinstance(soft, int) and 0 <= soft < (1 << 63):
            return soft
    return None


def module_path(spec):
    """(args[0] as given, the absolute path inside the container) — relative to process.cwd,
    like a program path (no $PATH search)."""
    proc = spec.process
    if proc is None or not proc.args:
        raise SetupError("process.args: a Wasm container needs the module path as args[0]")
    arg0 = proc.args[0]
    if arg0.startswith("/"):
        return arg0, arg0
    return arg0, os.path.join(proc.cwd or "/", arg0)


# ---------------------------------------------------------------- module inspection

def _uleb(b, i):
    r = shift = 0
    while True:
        x = b[i]
        i += 1
        r |= (x & 0x7F) << shift
        if x < 0x80:
            return r, i
        shift += 7


def function_exports(wasm):
    """Names of the functions a core module exports (reads the export section only);
    None if the binary is too malformed to tell (the compiler then reports why)."""
    try:
        i = 8
        while i < len(wasm):
            sid = wasm[i]
            size, i = _uleb(wasm, i + 1)
            if sid == 7:
                n, j = _uleb(wasm, i)
                names = set()
                for _ in range(n):
                    ln, j = _uleb(wasm, j)
                    name = bytes(wasm[j:j + ln])
                    j += ln
                    kind = wasm[j]
                    _, j = _uleb(wasm, j + 1)
                    if kind == 0:
                        names.add(name.decode("utf-8", "replace"))
                return names
            i += size
        return set()
    except IndexError:
        return None


def check_command(wasm, shown):
    """Refuse what cannot run as a container process (components, reactors)."""
    if wasm[:4] != _WASM_MAGIC:
        raise SetupError(f'wasm module "{shown}": not a WebAssembly binary')
    if wasm[4:8] != _CORE_VERSION:
        raise Unsupported(f'wasm module "{shown}" is a WebAssembly component: only WASI '
                          f'preview 1 command modules (exporting _start) can run')
    names = function_exports(wasm)
    if names is not None and "_start" not in names:
        kind = "a reactor" if "_initialize" in names else "a library"
        raise Unsupported(f'wasm module "{shown}" has no _start export ({kind} module): only '
                          f'WASI preview 1 command modules can run as a container process')


# ---------------------------------------------------------------- the executor

class WasmExecutor(Executor):
    name = "wasm"

    def __init__(self, cache_dir=...):
        self.cache_dir = default_cache_dir() if cache_dir is ... else cache_dir
        self.cache_hit = False
        self.timings = {}   # seconds per prepare() phase, for docs/tests
        self._lib = None
        self._signalled = 0

    # -- prepare: before pivot_root, no threads
    def prepare(self, spec, rootfs_fd):
        import time
        t0 = time.perf_counter()
        from ..linux import syscalls as capi
        try:
            lib = capi.wasmtime_load()
        except capi.WasmtimeError as e:
            raise Unsupported(f"wasm: {e}") from None
        t1 = time.perf_counter()
        shown, inside = module_path(spec)
        raw = self._read_module(rootfs_fd, inside, shown)
        t2 = time.perf_counter()

        as_limit = address_space_limit(spec)
        flags = "epoch=1,signals_traps=0,parallel=0" + (",reserve=0" if as_limit is not None
                                                         else "")
        engine = self._engine(lib, as_limit is not None)
        lib_st = os.stat(lib.path)
        flavor = sha256(f"{lib.version}\0{lib_st.st_size}\0{lib_st.st_mtime_ns}\0{flags}"
                        .encode()).hexdigest()[:16]
        name = f"{sha256(raw).hexdigest()}.{flavor}.cwasm"
        t3 = time.perf_counter()

        cache = None
        if self.cache_dir:
            cache = CompileCache(self.cache_dir)
            if not cache.open():
                cache = None
        try:
            module = None
            if cache is not None:
                artifact = cache.get(name)
                if artifact is not None:
                    try:
                        module = lib.module_deserialize(engine, bytes(artifact))
                    except capi.WasmtimeError:
                        module = None  # other engine build/CPU: recompile and replace
            self.cache_hit = module is not None
            t4 = time.perf_counter()
            if module is None:
                wasm = raw
                if raw[:4] != _WASM_MAGIC:  # the text format (.wat)
                    try:
                        wasm = lib.wat2wasm(raw)
                    except capi.WasmtimeError as e:
                        raise SetupError(f'wasm module "{shown}": {e}') from None
                check_command(wasm, shown)
                try:
                    module = lib.module_new(engine, wasm)
                except capi.WasmtimeError as e:
                    raise SetupError(f'wasm module "{shown}": {e}') from None
                if cache is not None:
                    cache.put(name, lib.module_serialize(module))
            t5 = time.perf_counter()
        finally:
            if cache is not None:
                cache.close()

        # imports are resolved now, so a missing one fails `create`, not the started process
        linker = lib.wasmtime_linker_new(engine)
        lib.check(lib.wasmtime_linker_define_wasi(linker), "wasi")
        pre = capi.ffi.c_void_p()
        try:
            lib.check(lib.wasmtime_linker_instantiate_pre(linker, module, capi.ffi.byref(pre)),
                      "link")
        except capi.WasmtimeError as e:
            raise SetupError(f'wasm module "{shown}": {e}') from None
        t6 = time.perf_counter()

        proc = spec.process
        self._lib, self._capi, self._engine_ptr = lib, capi, engine
        self._linker, self._pre = linker, pre
        self._argv = [a.encode() for a in proc.args]
        self._env = [(k.encode(), v.encode()) for k, v in env_pairs(proc.env)]
        self._cwd = (proc.cwd or "/").encode()
        self._mem = memory_limit(spec)
        self.timings = {"load": t1 - t0, "read": t2 - t1, "engine+hash": t3 - t2,
                        "cache": t4 - t3, "compile": t5 - t4, "link": t6 - t5,
                        "total": t6 - t0}
        # everything run() touches, imported while the host's stdlib is visible
        import _signal  # noqa: F401
        import _thread  # noqa: F401
        self._time = time

    @staticmethod
    def _read_module(rootfs_fd, inside, shown):
        from ..linux.syscalls import openat2
        try:
            fd = openat2(rootfs_fd, inside, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
        except OSError as e:
            raise SetupError(f'wasm module "{shown}": {e.strerror}') from None
        try:
            st = os.fstat(fd)
            if st.st_mode & 0o170000 != 0o100000:
                raise SetupError(f'wasm module "{shown}": not a regular file')
            return read_all(fd, st.st_size)
        finally:
            os.close(fd)

    @staticmethod
    def _engine(lib, no_reserve):
        cfg = lib.wasm_config_new()
        lib.wasmtime_config_epoch_interruption_set(cfg, True)
        # no compiler threads: prepare() runs before the init's last namespace calls
        lib.wasmtime_config_parallel_compilation_set(cfg, False)
        # explicit checks instead of SIGSEGV/SIGILL handlers: traps keep working whatever the
        # init does to signal dispositions, and Python's handlers are left alone
        lib.wasmtime_config_signals_based_traps_set(cfg, False)
        if no_reserve:  # RLIMIT_AS: no multi-GiB virtual reservations per linear memory
            lib.wasmtime_config_memory_reservation_set(cfg, 0)
            lib.wasmtime_config_memory_guard_size_set(cfg, 0)
            lib.wasmtime_config_memory_reservation_for_growth_set(cfg, 0)
        engine = lib.wasm_engine_new_with_config(cfg)  # takes the config
        if not engine:
            raise SetupError("wasm: cannot create the Wasmtime engine")
        return engine

    # -- run: the last step, never returns
    def run(self, spec):
        import _signal
        import _thread
        import gc
        gc.enable()   # the container's whole life: entry() turned it off for start-up
        if self._lib is None:
            raise SetupError("wasm: run() before prepare()")
        lib, capi = self._lib, self._capi
        ctypes = capi.ffi

        # signals: defaults (as a native process would have), except the stop signals,
        # which get a handler so that they reach us even as a pid namespace's init; their
        # C-level handler writes to the wakeup pipe, which wakes the watcher thread even
        # while this thread is inside Wasmtime
        reset_signals()
        r, w = os.pipe2(os.O_CLOEXEC)
        os.set_blocking(w, False)
        try:
            _thread.start_new_thread(self._watch, (r,))
        except RuntimeError:  # RLIMIT_NPROC, pids.max: keep default dispositions
            os.close(r)
            os.close(w)
        else:
            for s in STOP_SIGNALS:
                _signal.signal(s, self._on_stop)
            _signal.set_wakeup_fd(w, warn_on_full_buffer=False)

        try:
            store, ctx = self._store()
        except capi.WasmtimeError as e:
            write_err(f"ocirun: wasm: {e}")
            os._exit(FAIL_STATUS)
        inst = capi.WasmtimeInstance()
        trap = ctypes.c_void_p()
        err = lib.wasmtime_instance_pre_instantiate(self._pre, ctx, ctypes.byref(inst),
                                                    ctypes.byref(trap))
        if not err and not trap.value:
            err = lib.wasmtime_linker_define_instance(self._linker, ctx, b"", 0,
                                                      ctypes.byref(inst))
            if not err:
                func = capi.WasmtimeFunc()
                err = lib.wasmtime_linker_get_default(self._linker, ctx, b"", 0,
                                                      ctypes.byref(func))
                if not err:
                    if self._signalled:  # stopped while setting up (before the deadline)
                        self._die(self._signalled)
                    err = lib.wasmtime_func_call(ctx, ctypes.byref(func), None, 0, None, 0,
                                                 ctypes.byref(trap))
        self._finish(err, trap.value)

    def _store(self):
        lib = self._lib
        wasi = lib.wasi_config_new()
        c_p = self._capi.ffi.c_char_p
        argv = (c_p * len(self._argv))(*self._argv)
        if not lib.wasi_config_set_argv(wasi, len(self._argv), argv):
            raise self._capi.WasmtimeError("cannot set WASI argv")
        names = (c_p * max(len(self._env), 1))(*[k for k, _ in self._env])
        values = (c_p * max(len(self._env), 1))(*[v for _, v in self._env])
        if not lib.wasi_config_set_env(wasi, len(self._env), names, values):
            raise self._capi.WasmtimeError("cannot set WASI environment")
        lib.wasi_config_inherit_stdin(wasi)
        lib.wasi_config_inherit_stdout(wasi)
        lib.wasi_config_inherit_stderr(wasi)
        # fd 3 = "/" (the container's root: run() is after pivot_root), fd 4 = "." (cwd)
        if not lib.wasi_config_preopen_dir(wasi, b"/", b"/", True):
            raise self._capi.WasmtimeError("cannot preopen / for WASI")
        if not lib.wasi_config_preopen_dir(wasi, self._cwd, b".", True):
            raise self._capi.WasmtimeError(f"cannot preopen the cwd {self._cwd.decode()}")
        store = lib.wasmtime_store_new(self._engine_ptr, None, None)
        ctx = lib.wasmtime_store_context(store)
        if self._mem:
            lib.wasmtime_store_limiter(store, self._mem, -1, -1, -1, -1)
        lib.wasmtime_context_set_epoch_deadline(ctx, 1)
        lib.check(lib.wasmtime_context_set_wasi(ctx, wasi), "wasi")  # takes the config
        return store, ctx

    def _finish(self, err, trap):
        lib = self._lib
        if self._signalled:
            self._die(self._signalled)
        if err:
            status = lib.exit_status(err)
            if status is not None:
                os._exit(status & 0xFF)
            write_err(f"ocirun: wasm: {lib.take_error(err)}")
            os._exit(FAIL_STATUS)
        if trap:
            msg = lib.take_trap(trap)
            if self._signalled:
                self._die(self._signalled)
            write_err(msg if msg.startswith("wasm trap") else f"wasm trap: {msg}")
            os._exit(TRAP_STATUS)
        os._exit(0)

    def _on_stop(self, signum, frame):
        """Python-level handler: runs in the main thread once it is back from Wasmtime (e.g.
        when the signal interrupted a host call with EINTR), maybe before the watcher ran."""
        if not self._signalled:
            self._signalled = signum

    def _watch(self, r):
        """Watcher thread: a stop signal interrupts the module at its next epoch check;
        one blocked in a host call (read on stdin, sleep) gets STOP_GRACE seconds."""
        while True:
            try:
                b = os.read(r, 64)
            except InterruptedError:
                continue
            if not b:
                return
            for sig in b:
                if sig in STOP_SIGNALS:
                    if not self._signalled:
                        self._signalled = sig
                    # whoever noted the signal first, the module must stop
                    self._lib.wasmtime_engine_increment_epoch(self._engine_ptr)
                    self._time.sleep(STOP_GRACE)
                    # still here: blocked in a host call. Only the main thread may change a
                    # disposition (to die of the signal itself), so exit with 128+n
                    os._exit(128 + self._signalled)

    @staticmethod
    def _die(sig):
        import _signal
        _signal.signal(sig, _signal.SIG_DFL)
        _signal.pthread_sigmask(_signal.SIG_UNBLOCK, [sig])
        os.kill(os.getpid(), sig)
        os._exit(128 + sig)  # a pid namespace's init ignores its own SIG_DFL signals
