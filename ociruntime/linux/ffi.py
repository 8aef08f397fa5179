"""The part of ``ctypes`` that syscalls.py uses, built directly on the C extension ``_ctypes``.

Why: ``import ctypes`` runs ctypes/__init__.py, which defines some 30 types, imports
``struct`` and ``types``, builds the function-type caches and creates a libffi callback
at import. That costs ~2.5 ms per process here. Every ``create``, ``run``, ``exec``,
``checkpoint`` and ``restore`` needs a few syscalls without a Python wrapper (setns,
clone3, capset, mount...), and the whole of ``exec`` takes ~15 ms. The objects below are
the ones ctypes itself exposes: the same ``_ctypes`` types, set up the same way. Only what
this project calls is here. Values can be mixed freely with the real ``ctypes`` (the
Wasmtime and Windows code, tests).

x86_64 and aarch64 Linux (LP64): ``long`` is 64 bits, so c_int64/c_uint64/c_size_t are
c_long/c_ulong, as in ctypes on these platforms.
"""
import _ctypes
from _ctypes import (POINTER, Array, Structure, _SimpleCData, addressof,  # noqa: F401
                     byref, get_errno, set_errno, sizeof)

__all__ = ["CDLL", "PyDLL", "POINTER", "Array", "Structure", "LazyStruct", "addressof", "byref",
           "get_errno", "set_errno", "sizeof", "create_string_buffer", "string_at",
           "c_bool", "c_char", "c_char_p", "c_int", "c_uint", "c_short", "c_ushort", "c_long",
           "c_ulong", "c_ubyte", "c_int32", "c_uint32", "c_int64", "c_uint64", "c_size_t",
           "c_void_p"]   # and pythonapi, made on first use (module __getattr__)


def _simple(name, code):
    """A simple C type, as ctypes declares them (``class c_int(_SimpleCData): _type_ = "i"``)."""
    return type(name, (_SimpleCData,), {"_type_": code, "__module__": __name__})


c_bool, c_char, c_char_p, c_void_p = (_simple("c_bool", "?"), _simple("c_char", "c"),
                                      _simple("c_char_p", "z"), _simple("c_void_p", "P"))
c_ubyte, c_short, c_ushort = _simple("c_ubyte", "B"), _simple("c_short", "h"), \
    _simple("c_ushort", "H")
c_int, c_uint = _simple("c_int", "i"), _simple("c_uint", "I")
c_long, c_ulong = _simple("c_long", "l"), _simple("c_ulong", "L")
c_int32, c_uint32 = c_int, c_uint
c_int64, c_uint64, c_size_t = c_long, c_ulong, c_ulong
_ctypes._pointer_type_cache[None] = c_void_p   # POINTER(None) is void *, as in ctypes

_RTLD_NOW = 2


class CDLL:
    """A shared library; ``lib.name`` is its C function ``name`` (int result unless
    ``restype`` is set). The GIL is released during calls; with ``use_errno`` errno is
    saved for ``get_errno()``."""
    _flags = _ctypes.FUNCFLAG_CDECL

    def __init__(self, name, use_errno=False):
        flags = self._flags | (_ctypes.FUNCFLAG_USE_ERRNO if use_errno else 0)

        class _FuncPtr(_ctypes.CFuncPtr):
            _flags_ = flags
            _restype_ = c_int

        self._name = name
        self._FuncPtr = _FuncPtr
        self._handle = _ctypes.dlopen(name, _ctypes.RTLD_LOCAL | _RTLD_NOW)

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        func = self._FuncPtr((name, self))
        func.__name__ = name
        setattr(self, name, func)
        return func


class PyDLL(CDLL):
    """As CDLL, but the GIL is kept across calls (CPython's own API, fork)."""
    _flags = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_PYTHONAPI


class LazyStruct:
    """A C struct type made on first use: creating a Structure type costs ~0.1 M
    instructions (0.35 M for the first), and a command needs two or three of the fifteen
    syscalls.py declares. ``S(...)`` makes an instance, ``S * n`` an array type, ``S.type``
    is the Structure class. ``fields``: a function returning ``_fields_``; ``methods``:
    extra attributes of the class."""
    __slots__ = ("name", "_fields", "_methods", "_type")

    def __init__(self, name, fields, methods=None):
        self.name, self._fields, self._methods, self._type = name, fields, methods, None

    @property
    def type(self):
        if self._type is None:
            ns = dict(self._methods or ())
            ns["_fields_"] = self._fields()
            self._type = type(self.name, (Structure,), ns)
        return self._type

    def __call__(self, *args):
        return self.type(*args)

    def __mul__(self, n):
        return self.type * n


def create_string_buffer(init, size=None):
    """A mutable char array: of ``init`` bytes (NUL-terminated unless ``size`` says
    otherwise), or of ``init`` zero bytes when it is an int."""
    if isinstance(init, int):
        return (c_char * init)()
    buf = (c_char * (len(init) + 1 if size is None else size))()
    buf.value = init
    return buf


def string_at(ptr, size):
    """``size`` bytes at ``ptr``: an address, a pointer, or an array/structure."""
    if isinstance(ptr, int):
        addr = ptr
    elif isinstance(ptr, _ctypes._Pointer):
        addr = c_void_p.from_buffer(ptr).value
    else:   # an array or structure: its own storage
        addr = addressof(ptr)
    return (c_char * size).from_address(addr).raw


_pythonapi = None


def __getattr__(name):
    global _pythonapi
    if name == "pythonapi":   # the running interpreter's own symbols, on first use
        if _pythonapi is None:
            _pythonapi = PyDLL(None)
        return _pythonapi
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
