"""A minimal ctypes binding of the Wasmtime C API (wasm.h / wasmtime.h), just what the Wasm
executor uses, over the native library shipped inside the ``wasmtime`` PyPI package.

Why not ``import wasmtime``: the Python package binds its whole C API at import and pulls in
``pathlib``, ``typing``, ``platform``, ``enum``…: ~45-70 ms per start here, while loading the
library itself takes ~3 ms. Every container start is a fresh interpreter, so the executor binds
the ~35 functions it calls itself. Only opaque pointers cross this boundary: the one C struct
read here is ``wasm_byte_vec_t`` (stable since the first wasm-c-api); ``wasmtime_func_t`` is
and ``wasmtime_instance_t`` are only
ever passed by pointer to opaque, generously sized buffers.

The signatures are those of the Wasmtime C API of SUPPORTED_MAJOR; ``load()`` refuses another
major version (C signatures change between majors) with a clear error.

This is a foreign-library binding, not a syscall wrapper, which is why it lives with the
executor rather than in ``linux/syscalls.py``.
"""
import ctypes
import os
import sys

SUPPORTED_MAJOR = 50

_P = ctypes.c_void_p
_SZ = ctypes.c_size_t
_BOOL = ctypes.c_bool
_I64 = ctypes.c_int64
_U64 = ctypes.c_uint64
_CP = ctypes.c_char_p


class ByteVec(ctypes.Structure):
    """wasm_byte_vec_t (also wasm_name_t, wasm_message_t)."""
    _fields_ = [("size", _SZ), ("data", ctypes.POINTER(ctypes.c_ubyte))]

    def bytes(self):
        return ctypes.string_at(self.data, self.size) if self.size else b""


class Func(ctypes.Structure):
    """Opaque storage for a wasmtime_func_t (16 bytes in the 50 C API; 64 reserved)."""
    _fields_ = [("_opaque", ctypes.c_uint64 * 8)]


class Instance(ctypes.Structure):
    """Opaque storage for a wasmtime_instance_t (16 bytes in the 50 C API; 64 reserved)."""
    _fields_ = [("_opaque", ctypes.c_uint64 * 8)]


_BVP = ctypes.POINTER(ByteVec)
_PP = ctypes.POINTER(_P)

# name: (restype, argtypes)
_SIGS = {
    "wasm_config_new": (_P, []),
    "wasmtime_config_epoch_interruption_set": (None, [_P, _BOOL]),
    "wasmtime_config_parallel_compilation_set": (None, [_P, _BOOL]),
    "wasmtime_config_signals_based_traps_set": (None, [_P, _BOOL]),
    "wasmtime_config_memory_reservation_set": (None, [_P, _U64]),
    "wasmtime_config_memory_guard_size_set": (None, [_P, _U64]),
    "wasmtime_config_memory_reservation_for_growth_set": (None, [_P, _U64]),
    "wasmtime_config_native_unwind_info_set": (None, [_P, _BOOL]),
    "wasm_engine_new_with_config": (_P, [_P]),
    "wasm_engine_delete": (None, [_P]),
    "wasmtime_engine_increment_epoch": (None, [_P]),
    "wasmtime_wat2wasm": (_P, [_CP, _SZ, _BVP]),
    "wasmtime_module_new": (_P, [_P, _CP, _SZ, _PP]),
    "wasmtime_module_delete": (None, [_P]),
    "wasmtime_module_serialize": (_P, [_P, _BVP]),
    "wasmtime_module_deserialize": (_P, [_P, _CP, _SZ, _PP]),
    "wasm_byte_vec_delete": (None, [_BVP]),
    "wasmtime_error_message": (None, [_P, _BVP]),
    "wasmtime_error_exit_status": (_BOOL, [_P, ctypes.POINTER(ctypes.c_int)]),
    "wasmtime_error_delete": (None, [_P]),
    "wasm_trap_message": (None, [_P, _BVP]),
    "wasm_trap_delete": (None, [_P]),
    "wasmtime_store_new": (_P, [_P, _P, _P]),
    "wasmtime_store_context": (_P, [_P]),
    "wasmtime_store_limiter": (None, [_P, _I64, _I64, _I64, _I64, _I64]),
    "wasmtime_store_delete": (None, [_P]),
    "wasmtime_context_set_epoch_deadline": (None, [_P, _U64]),
    "wasmtime_context_set_wasi": (_P, [_P, _P]),
    "wasi_config_new": (_P, []),
    "wasi_config_set_argv": (_BOOL, [_P, _SZ, ctypes.POINTER(_CP)]),
    "wasi_config_set_env": (_BOOL, [_P, _SZ, ctypes.POINTER(_CP), ctypes.POINTER(_CP)]),
    "wasi_config_inherit_stdin": (None, [_P]),
    "wasi_config_inherit_stdout": (None, [_P]),
    "wasi_config_inherit_stderr": (None, [_P]),
    "wasi_config_preopen_dir": (_BOOL, [_P, _CP, _CP, _BOOL]),
    "wasmtime_linker_new": (_P, [_P]),
    "wasmtime_linker_define_wasi": (_P, [_P]),
    "wasmtime_linker_module": (_P, [_P, _P, _CP, _SZ, _P]),
    "wasmtime_linker_get_default": (_P, [_P, _P, _CP, _SZ, ctypes.POINTER(Func)]),
    "wasmtime_linker_delete": (None, [_P]),
    "wasmtime_linker_instantiate_pre": (_P, [_P, _P, _PP]),
    "wasmtime_instance_pre_instantiate": (_P, [_P, _P, ctypes.POINTER(Instance), _PP]),
    "wasmtime_instance_pre_delete": (None, [_P]),
    "wasmtime_linker_define_instance": (_P, [_P, _P, _CP, _SZ, ctypes.POINTER(Instance)]),
    "wasmtime_func_call": (_P, [_P, ctypes.POINTER(Func), _P, _SZ, _P, _SZ, _PP]),
}


class WasmtimeError(Exception):
    """A wasmtime_error_t or wasm_trap_t turned into its message."""


class Lib:
    """The loaded library: ``lib.fn(...)`` calls the C function ``fn``."""

    def __init__(self, path, version):
        self.path = path
        self.version = version
        dll = ctypes.CDLL(path)  # CDLL releases the GIL during calls (epoch thread relies on it)
        for name, (res, args) in _SIGS.items():
            f = getattr(dll, name)
            f.restype = res
            f.argtypes = args
            setattr(self, name, f)
        self._dll = dll

    # ---- errors
    def take_error(self, err):
        """Message of a wasmtime_error_t*, which is freed."""
        vec = ByteVec()
        self.wasmtime_error_message(err, ctypes.byref(vec))
        msg = vec.bytes().decode("utf-8", "replace")
        self.wasm_byte_vec_delete(ctypes.byref(vec))
        self.wasmtime_error_delete(err)
        return msg

    def check(self, err, what):
        if err:
            raise WasmtimeError(f"{what}: {self.take_error(err)}")

    def exit_status(self, err):
        """The WASI proc_exit status carried by an error, or None."""
        st = ctypes.c_int()
        return st.value if self.wasmtime_error_exit_status(err, ctypes.byref(st)) else None

    def take_trap(self, trap):
        vec = ByteVec()
        self.wasm_trap_message(trap, ctypes.byref(vec))
        msg = vec.bytes().decode("utf-8", "replace")
        self.wasm_byte_vec_delete(ctypes.byref(vec))
        self.wasm_trap_delete(trap)
        return msg

    def take_vec(self, vec):
        b = vec.bytes()
        self.wasm_byte_vec_delete(ctypes.byref(vec))
        return b

    # ---- wrappers used by the executor
    def wat2wasm(self, text):
        vec = ByteVec()
        self.check(self.wasmtime_wat2wasm(text, len(text), ctypes.byref(vec)), "wat")
        return self.take_vec(vec)

    def module_new(self, engine, wasm):
        out = _P()
        self.check(self.wasmtime_module_new(engine, wasm, len(wasm), ctypes.byref(out)),
                   "compile")
        return out

    def module_serialize(self, module):
        vec = ByteVec()
        self.check(self.wasmtime_module_serialize(module, ctypes.byref(vec)), "serialize")
        return self.take_vec(vec)

    def module_deserialize(self, engine, data):
        out = _P()
        self.check(self.wasmtime_module_deserialize(engine, data, len(data), ctypes.byref(out)),
                   "deserialize")
        return out


def find_library():
    """(path of the wasmtime shared library, version) from the installed ``wasmtime`` package,
    found on sys.path without importing it. Raises FileNotFoundError."""
    machine = os.uname().machine
    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(machine.lower(), machine)
    rel = os.path.join("wasmtime", f"linux-{machine}", "_libwasmtime.so")
    for d in sys.path:
        p = os.path.join(d or ".", rel)
        if os.path.exists(p):
            version = "unknown"
            try:
                for n in os.listdir(d or "."):
                    if n.startswith("wasmtime-") and n.endswith((".dist-info", ".egg-info")):
                        version = n[len("wasmtime-"):].rsplit(".", 1)[0]
                        break
            except OSError:
                pass
            return p, version
    raise FileNotFoundError(f"{rel} not found on sys.path (pip install wasmtime)")


_lib = None


def load():
    """The process-wide Lib (loaded once). Raises WasmtimeError if missing or unsupported."""
    global _lib
    if _lib is None:
        try:
            path, version = find_library()
        except FileNotFoundError as e:
            raise WasmtimeError(str(e)) from None
        major = version.split(".", 1)[0]
        if major != str(SUPPORTED_MAJOR):
            raise WasmtimeError(f"wasmtime {version} at {path}: ocirun binds the wasmtime "
                                f"{SUPPORTED_MAJOR}.x C API (pip install 'wasmtime=="
                                f"{SUPPORTED_MAJOR}.*')")
        _lib = Lib(path, version)
    return _lib
