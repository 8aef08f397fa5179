"""Executor selection and the pure parts of the executors (no container, no root)."""
import os
import stat
import subprocess
import sys

import pytest

from ociruntime.errors import SetupError, Unsupported
from ociruntime.executors import handlers, select, wants_wasm
from ociruntime.executors import native, wasm
from ociruntime.executors.base import env_pairs


class NS:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def spec(args, annotations=None, **linux):
    return NS(annotations=annotations or {}, process=NS(args=args, env=[], cwd="/", rlimits=[]),
              linux=NS(resources=None, **linux))


@pytest.mark.parametrize("ann,args,want", [
    ({"run.oci.handler": "wasm"}, ["/app"], True),
    ({"module.wasm.image/variant": "compat"}, ["/app.wasm"], True),
    ({"run.oci.handler": "wasm-smart"}, ["/app.wasm"], True),
    ({"run.oci.handler": "wasm-smart"}, ["app.wat"], True),
    ({"run.oci.handler": "wasm-smart"}, ["/bin/sh"], False),
    ({"module.wasm.image/variant": "compat-smart"}, ["/x.wasm"], True),
    ({"module.wasm.image/variant": "compat-smart"}, ["/envoy"], False),
    ({"module.wasm.image/variant": "compat-smart"}, [], False),
    ({}, ["/app.wasm"], False),                     # crun: no annotation, native
    ({"module.wasm.image/variant": "other"}, ["/app.wasm"], False),
    ({"run.oci.handler": "wasm"}, None, True),
])
def test_wants_wasm(ann, args, want):
    assert wants_wasm(ann, args) is want


def test_unknown_handler_fails_closed():
    with pytest.raises(Unsupported, match='handler "krun" is not supported'):
        wants_wasm({"run.oci.handler": "krun"}, ["/x"])


def test_select_returns_executor_objects():
    assert select(spec(["/bin/sh"])).name == "native"
    assert select(spec(["/a.wasm"], {"run.oci.handler": "wasm-smart"})).name == "wasm"
    assert select(NS(annotations={}, process=None)).name == "native"


def test_select_native_imports_nothing_heavy():
    code = ("import sys; from ociruntime.executors import select\n"
            "class NS:\n def __init__(s, **k): s.__dict__.update(k)\n"
            "select(NS(annotations={}, process=NS(args=['/x.wasm'])))\n"
            "bad = [m for m in sys.modules if 'wasm' in m and m != 'ociruntime.executors']\n"
            "print(bad)")
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert out.stdout.strip() == "[]", out


def test_handlers():
    assert handlers() == ["native", "wasm"]  # the test venv installs wasmtime


def test_exec_unsupported():
    with pytest.raises(Unsupported, match="^exec is not supported for wasm containers$"):
        wasm.exec_unsupported()


def test_env_pairs():
    assert env_pairs(["A=1", "B=x=y", "NOEQ", "=v", "E="]) == [("A", "1"), ("B", "x=y"),
                                                               ("E", "")]


# ---------------------------------------------------------------- native lookup

def test_lookup(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "prog").write_text("")                       # not executable: skipped
    (b / "prog").write_text("")
    os.chmod(b / "prog", 0o755)
    (a / "dir").mkdir()                               # a directory: skipped
    assert native.lookup("prog", f"{a}:{b}") == f"{b}/prog"
    assert native.lookup("/abs/thing", "") == "/abs/thing"
    assert native.lookup("./rel", "") == "./rel"
    with pytest.raises(SetupError, match=r'^exec: "dir": executable file not found in \$PATH$'):
        native.lookup("dir", f"{a}")
    with pytest.raises(SetupError, match="not found"):
        native.lookup("prog", "")                     # empty PATH entry = "." (cwd)
    with pytest.raises(SetupError, match=r'exec: "": executable file not found'):
        native.lookup("", str(b))


# ---------------------------------------------------------------- wasm helpers

def test_memory_limit_tolerant():
    assert wasm.memory_limit(NS(linux=NS(resources=None))) is None
    assert wasm.memory_limit(NS(linux=NS(resources=NS(memory=None)))) is None
    assert wasm.memory_limit(NS(linux=NS(resources=NS(memory=NS(limit=None))))) is None
    assert wasm.memory_limit(NS(linux=NS(resources=NS(memory=NS(limit=-1))))) is None
    assert wasm.memory_limit(NS(linux=NS(resources=NS(memory=NS(limit=1 << 20))))) == 1 << 20
    from ociruntime.config.reader import Obj
    from ociruntime.linux.cgroups import parse_resources
    r = parse_resources(Obj({"memory": {"limit": 8192}}, "linux.resources"))
    assert wasm.memory_limit(NS(linux=NS(resources=r))) == 8192


def test_address_space_limit():
    s = spec(["/x"])
    assert wasm.address_space_limit(s) is None
    s.process.rlimits = [("RLIMIT_NOFILE", 10, 10), ("RLIMIT_AS", 1 << 30, 1 << 31)]
    assert wasm.address_space_limit(s) == 1 << 30
    s.process.rlimits = [{"type": "RLIMIT_AS", "soft": 123, "hard": 456}]
    assert wasm.address_space_limit(s) == 123
    s.process.rlimits = [("RLIMIT_AS", (1 << 64) - 1, (1 << 64) - 1)]   # unlimited
    assert wasm.address_space_limit(s) is None


def test_module_path():
    s = spec(["app.wasm"])
    s.process.cwd = "/srv"
    assert wasm.module_path(s) == ("app.wasm", "/srv/app.wasm")
    s.process.args = ["/abs.wasm"]
    assert wasm.module_path(s) == ("/abs.wasm", "/abs.wasm")
    s.process.args = []
    with pytest.raises(SetupError, match="process.args"):
        wasm.module_path(s)


def _module(*sections):
    out = b"\0asm\x01\0\0\0"
    for sid, body in sections:
        out += bytes([sid, len(body)]) + body
    return out


def _exports(*items):
    body = bytes([len(items)])
    for name, kind in items:
        body += bytes([len(name)]) + name.encode() + bytes([kind, 0])
    return (7, body)


def test_function_exports():
    m = _module((1, b"\x01\x60\x00\x00"), _exports(("_start", 0), ("memory", 2)))
    assert wasm.function_exports(m) == {"_start"}
    assert wasm.function_exports(_module()) == set()
    assert wasm.function_exports(b"\0asm\x01\0\0\0\x07\x05\x01\x06_st") is None  # truncated


def test_check_command():
    wasm.check_command(_module(_exports(("_start", 0))), "m")
    with pytest.raises(Unsupported, match="reactor"):
        wasm.check_command(_module(_exports(("_initialize", 0))), "m")
    with pytest.raises(Unsupported, match="library"):
        wasm.check_command(_module(_exports(("_start", 2))), "m")     # a memory named _start
    with pytest.raises(Unsupported, match="component"):
        wasm.check_command(b"\0asm\x0d\0\x01\0", "m")
    with pytest.raises(SetupError, match="not a WebAssembly binary"):
        wasm.check_command(b"\x7fELF\x02\x01\x01\0", "m")


# ---------------------------------------------------------------- cache

def test_cache_roundtrip_and_mac(tmp_path):
    c = wasm.CompileCache(str(tmp_path / "c"))
    assert c.open()
    try:
        assert c.get("x.cwasm") is None
        assert c.put("x.cwasm", b"artifact-bytes")
        assert bytes(c.get("x.cwasm")) == b"artifact-bytes"
        # the MAC binds the name: the same file under another name is refused
        os.link(tmp_path / "c" / "x.cwasm", tmp_path / "c" / "y.cwasm")
        assert c.get("y.cwasm") is None
        # truncated
        data = (tmp_path / "c" / "x.cwasm").read_bytes()
        (tmp_path / "c" / "x.cwasm").write_bytes(data[:-1])
        assert c.get("x.cwasm") is None
        # a symlink is not followed
        (tmp_path / "elsewhere").write_bytes(data)
        os.chmod(tmp_path / "elsewhere", 0o600)
        os.symlink(tmp_path / "elsewhere", tmp_path / "c" / "z.cwasm")
        assert c.get("z.cwasm") is None
        assert not [n for n in os.listdir(tmp_path / "c") if n.startswith(".tmp")]
    finally:
        c.close()
    st = os.stat(tmp_path / "c")
    assert stat.S_IMODE(st.st_mode) == 0o700


def test_cache_tightens_own_dir_mode(tmp_path):
    d = tmp_path / "c"
    d.mkdir(mode=0o755)
    os.chmod(d, 0o755)
    c = wasm.CompileCache(str(d))
    assert c.open()
    c.close()
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o700


def test_cache_dir_env(monkeypatch):
    monkeypatch.delenv(wasm.CACHE_ENV, raising=False)
    assert wasm.default_cache_dir() == "/var/cache/ocirun/wasm"
    monkeypatch.setenv(wasm.CACHE_ENV, "off")
    assert wasm.default_cache_dir() is None
    monkeypatch.setenv(wasm.CACHE_ENV, "/tmp/x")
    assert wasm.WasmExecutor().cache_dir == "/tmp/x"


def test_capi_refuses_other_major(monkeypatch):
    from ociruntime.linux import syscalls as sc
    monkeypatch.setattr(sc, "_wasmtime", None)
    monkeypatch.setattr(sc, "wasmtime_find_library", lambda: ("/x/_libwasmtime.so", "49.0.1"))
    with pytest.raises(sc.WasmtimeError, match=r"wasmtime 49.0.1 at /x/_libwasmtime.so: "
                                               r"ocirun binds the wasmtime 50.x C API"):
        sc.wasmtime_load()
    monkeypatch.setattr(sc, "wasmtime_find_library", lambda: (_ for _ in ()).throw(
        FileNotFoundError("wasmtime/linux-x86_64/_libwasmtime.so not found on sys.path")))
    with pytest.raises(sc.WasmtimeError, match="not found on sys.path"):
        sc.wasmtime_load()


def test_capi_finds_installed_library():
    from ociruntime.linux import syscalls as sc
    path, version = sc.wasmtime_find_library()
    assert os.path.isfile(path) and version.split(".")[0] == str(sc.WASMTIME_MAJOR)
