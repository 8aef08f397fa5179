"""Opt-in validation of a whole config.json against ``specs/config-schema.json`` (our own
JSON Schema for runtime-spec 1.3; see docs/config-schema.md). Never on the hot path:
``jsonschema`` costs ~60 ms to import and is imported here, inside ``validate``.

``validate(doc)`` returns one message per problem, each starting with the JSON path in the
style of ``ociruntime.config.reader`` errors (``process.user.uid: must be >= 0``), sorted by
path; an empty list means the document conforms.
"""
from .. import osfast as os

_HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMA_PATHS = (
    os.path.join(_HERE, "..", "data", "config-schema.json"),       # an installed package
    os.path.join(_HERE, "..", "..", "specs", "config-schema.json"),  # the source tree
)
_validator = None


def schema_path():
    for p in SCHEMA_PATHS:
        if os.path.exists(p):
            return os.path.normpath(p)
    from ..errors import Unsupported
    raise Unsupported("config schema not found (specs/config-schema.json)")


def _get_validator():
    global _validator
    if _validator is None:
        try:
            import jsonschema
        except ImportError:
            from ..errors import Unsupported
            raise Unsupported("validating config.json needs the jsonschema package "
                              "(pip install 'ocirun[validate]')") from None
        from .. import jsonfast
        with open(schema_path(), "rb") as f:
            schema = jsonfast.loads(f.read())
        cls = jsonschema.validators.validator_for(schema)
        _validator = cls(schema)
    return _validator


def json_path(parts):
    """deque(['process', 'rlimits', 0, 'type']) → 'process.rlimits[0].type'."""
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += f".{p}" if out else str(p)
    return out


_TYPE_NAMES = {"string": "a string", "integer": "an integer", "boolean": "a boolean",
               "array": "an array", "object": "an object", "number": "a number"}


def _messages(err):
    path = json_path(err.absolute_path)
    v, arg = err.validator, err.validator_value
    if v == "required":
        inst = err.instance if isinstance(err.instance, dict) else {}
        return [(f"{path}.{k}" if path else k, "is required") for k in arg if k not in inst]
    if v == "type":
        names = [arg] if isinstance(arg, str) else list(arg)
        msg = "must be " + " or ".join(_TYPE_NAMES.get(n, n) for n in names)
    elif v == "minimum":
        msg = f"must be >= {arg}"
    elif v == "maximum":
        msg = f"must be <= {arg}"
    elif v == "enum":
        msg = f"{err.instance!r} is not one of " + ", ".join(map(str, arg))
    elif v == "pattern":
        msg = f"{err.instance!r} does not match {arg}"
    elif v == "minItems":
        msg = f"must have at least {arg} item{'s' if arg != 1 else ''}"
    elif v == "minLength":
        msg = "must not be empty" if arg == 1 else f"must be at least {arg} characters"
    elif v == "propertyNames":
        msg = f"invalid key: {err.message}"
    else:
        msg = err.message
    return [(path, msg)]


def validate(doc) -> list:
    """Every schema violation of ``doc`` (a decoded config.json) as 'json.path: message'."""
    out = set()
    for err in _get_validator().iter_errors(doc):
        for path, msg in _messages(err):
            out.add((path, msg))
    return [f"{p}: {m}" if p else m for p, m in sorted(out)]


def validate_bundle(bundle) -> list:
    """``validate`` on ``bundle/config.json``; unreadable or non-JSON files are one message."""
    from .. import jsonfast
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, "rb") as f:
            doc = jsonfast.loads(f.read())
    except OSError as e:
        return [f"cannot read {path}: {e.strerror}"]
    except ValueError as e:
        return [f"{path}: invalid JSON: {e}"]
    return validate(doc)
