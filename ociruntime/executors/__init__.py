"""Workload executors: ``select(spec)`` picks how the container's process is started.

Wasm follows crun's annotations: ``run.oci.handler: wasm`` or ``module.wasm.image/variant:
compat`` always; ``wasm-smart`` / ``compat-smart`` only when ``process.args[0]`` ends in
``.wasm`` or ``.wat`` (so native sidecars in the same pod stay native). A ``.wasm`` program
without an annotation runs natively, as in crun. The Wasm executor module is imported only
when selected, and Wasmtime is loaded only in its prepare().
"""
from ..errors import Unsupported

HANDLER = "run.oci.handler"
VARIANT = "module.wasm.image/variant"
_ALWAYS = {HANDLER: ("wasm",), VARIANT: ("compat",)}
_SMART = {HANDLER: ("wasm-smart",), VARIANT: ("compat-smart",)}
WASM_SUFFIXES = (".wasm", ".wat")


def wants_wasm(annotations, args):
    """True when the annotations select the Wasm executor for a process with ``args``."""
    ann = annotations or {}
    handler = ann.get(HANDLER)
    if handler and handler not in _ALWAYS[HANDLER] + _SMART[HANDLER]:
        raise Unsupported(f'annotation {HANDLER}: handler "{handler}" is not supported '
                          f'(supported: wasm, wasm-smart)')
    for key in (HANDLER, VARIANT):
        v = ann.get(key)
        if v in _ALWAYS[key]:
            return True
        if v in _SMART[key] and args and str(args[0]).endswith(WASM_SUFFIXES):
            return True
    return False


def select(spec):
    """The Executor for ``spec`` (its ``annotations`` and ``process.args``)."""
    proc = spec.process
    if wants_wasm(spec.annotations, proc.args if proc is not None else None):
        from .wasm import WasmExecutor
        return WasmExecutor()
    from .native import NativeExecutor
    return NativeExecutor()


def handlers():
    """Executor names this host can run (``wasm`` only if Wasmtime's library is installed);
    for the ``annotations`` of ``ocirun features``. Does not load Wasmtime."""
    from ..linux.syscalls import wasmtime_find_library
    try:
        wasmtime_find_library()
    except FileNotFoundError:
        return ["native"]
    return ["native", "wasm"]


def feature_annotations():
    """Suggested ``features.annotations`` entries: {"run.oci.ocirun.wasm": "true"|"false",
    "run.oci.ocirun.wasm.engine": "wasmtime X.Y.Z"} (no library load)."""
    from ..linux.syscalls import wasmtime_find_library
    try:
        _, version = wasmtime_find_library()
    except FileNotFoundError:
        return {"run.oci.ocirun.wasm": "false"}
    return {"run.oci.ocirun.wasm": "true", "run.oci.ocirun.wasm.engine": f"wasmtime {version}"}
