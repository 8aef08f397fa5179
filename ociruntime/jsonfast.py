"""JSON without ``import json``.

``json`` pulls in ``re`` (json.decoder, json.scanner): ~9 ms per process here, on a hot path
whose whole budget is ~20 ms. The C accelerator ``_json`` does the real work in both
directions; this module gives it the small context object it needs. Output is compact
(``separators=(",", ":")``) and ASCII-escaped, like ``json.dumps(..., separators=(",",":"))``.
"""
import _json

__all__ = ["loads", "dumps", "JSONDecodeError"]


class JSONDecodeError(ValueError):
    def __init__(self, msg, pos):
        super().__init__(f"{msg} at offset {pos}")
        self.pos = pos


def _constant(name):
    raise JSONDecodeError(f"invalid constant {name}", 0)


class _Ctx:
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = staticmethod(_constant)
    memo = None


_scan = _json.make_scanner(_Ctx())
_WS = " \t\n\r"


def loads(s):
    if isinstance(s, (bytes, bytearray)):
        s = s.decode("utf-8-sig") if s[:3] == b"\xef\xbb\xbf" else s.decode("utf-8")
    i, n = 0, len(s)
    while i < n and s[i] in _WS:
        i += 1
    try:
        obj, end = _scan(s, i)
    except StopIteration as e:
        raise JSONDecodeError("expecting value", e.value) from None
    except (ValueError, SystemError):
        # error path only: let the stdlib parser (which imports re) produce the message
        import json
        try:
            json.loads(s)
        except json.JSONDecodeError as e:
            raise JSONDecodeError(e.msg, e.pos) from None
        raise JSONDecodeError("invalid JSON", i) from None
    while end < n and s[end] in _WS:
        end += 1
    if end != n:
        raise JSONDecodeError("extra data", end)
    return obj


def _default(o):
    raise TypeError(f"object of type {type(o).__name__} is not JSON serializable")


def _floatstr(o):
    return float.__repr__(o)


_enc = _json.make_encoder(None, _default, _json.encode_basestring_ascii, None, ":", ",",
                          False, False, True)


def dumps(obj):
    return "".join(_enc(obj, 0))


def dumps_indent(obj, indent=2, _level=0):
    """Indented output (like ``json.dumps(obj, indent=2)``) for human-facing commands."""
    pad = " " * (indent * (_level + 1))
    end = " " * (indent * _level)
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f"{pad}{_json.encode_basestring_ascii(str(k))}: "
                 f"{dumps_indent(v, indent, _level + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + end + "}"
    if isinstance(obj, (list, tuple)):
        if not obj:
            return "[]"
        items = [pad + dumps_indent(v, indent, _level + 1) for v in obj]
        return "[\n" + ",\n".join(items) + "\n" + end + "]"
    return dumps(obj)


def read_arg(path):
    """The bytes of a command-line file argument, ``-`` meaning stdin (``exec --process``,
    ``update -r``); runc's wording when it cannot be opened."""
    import sys
    try:
        if path == "-":
            return sys.stdin.buffer.read()
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        from .errors import OciError
        raise OciError(f"open {path}: {(e.strerror or str(e)).lower()}") from None
