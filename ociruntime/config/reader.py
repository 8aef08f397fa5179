"""A small typed reader over decoded JSON that knows the JSON path of every value, so that
each concern module can parse its own section of config.json into typed objects and every
error names the field: ``linux.namespaces[2].type: unknown namespace type "foo"``.

Usage in a concern module::

    def parse(o: Obj) -> Thing:            # o wraps e.g. config["linux"]["seccomp"]
        t = Thing()
        t.action = o.str("defaultAction", required=True)
        t.rules = [parse_rule(r) for r in o.objs("syscalls")]
        return t
"""
from .. import osfast as os
from ..errors import ConfigError, OciError

_MISSING = object()
_TYPES = {str: "a string", int: "an integer", bool: "a boolean", list: "an array",
          dict: "an object", float: "a number"}


class Obj:
    __slots__ = ("d", "path")

    def __init__(self, d, path=""):
        if not isinstance(d, dict):
            raise ConfigError(path or "config", "must be an object")
        self.d = d
        self.path = path

    # -- helpers
    def sub(self, key):
        return f"{self.path}.{key}" if self.path else key

    def error(self, key, msg):
        return ConfigError(self.sub(key) if key else self.path, msg)

    def has(self, key):
        return self.d.get(key) is not None

    def keys(self):
        return self.d.keys()

    def _get(self, key, typ, default, required):
        v = self.d.get(key, _MISSING)
        if v is _MISSING or v is None:
            if required:
                raise ConfigError(self.sub(key), "is required")
            return default
        if typ is int:
            if isinstance(v, bool) or not isinstance(v, int):
                if isinstance(v, float) and v.is_integer():
                    return int(v)
                raise ConfigError(self.sub(key), f"must be {_TYPES[int]}")
            return v
        if typ is float:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ConfigError(self.sub(key), f"must be {_TYPES[float]}")
            return v
        if not isinstance(v, typ):
            raise ConfigError(self.sub(key), f"must be {_TYPES[typ]}")
        return v

    # -- scalars
    def str(self, key, default=None, required=False):
        return self._get(key, str, default, required)

    def bool(self, key, default=False, required=False):
        return self._get(key, bool, default, required)

    def int(self, key, default=None, required=False, min=None, max=None):
        v = self._get(key, int, default, required)
        if v is not None and v is not default:
            if min is not None and v < min:
                raise ConfigError(self.sub(key), f"must be >= {min}")
            if max is not None and v > max:
                raise ConfigError(self.sub(key), f"must be <= {max}")
        return v

    def uint32(self, key, default=None, required=False):
        return self.int(key, default, required, 0, 0xFFFFFFFF)

    def uint64(self, key, default=None, required=False):
        return self.int(key, default, required, 0, 0xFFFFFFFFFFFFFFFF)

    def int64(self, key, default=None, required=False):
        return self.int(key, default, required, -(1 << 63), (1 << 63) - 1)

    def num(self, key, default=None, required=False):
        return self._get(key, float, default, required)

    # -- containers
    def obj(self, key, required=False):
        """The sub-object at key as an Obj, or None."""
        v = self._get(key, dict, None, required)
        return None if v is None else Obj(v, self.sub(key))

    def list(self, key, required=False):
        return self._get(key, list, [], required)

    def objs(self, key, required=False):
        """A list of objects, each as an Obj with its index in the path."""
        out = []
        for i, v in enumerate(self.list(key, required)):
            p = f"{self.sub(key)}[{i}]"
            if not isinstance(v, dict):
                raise ConfigError(p, "must be an object")
            out.append(Obj(v, p))
        return out

    def strs(self, key, required=False):
        out = self.list(key, required)
        for i, v in enumerate(out):
            if not isinstance(v, str):
                raise ConfigError(f"{self.sub(key)}[{i}]", "must be a string")
        return list(out)

    def ints(self, key, required=False):
        out = self.list(key, required)
        for i, v in enumerate(out):
            if isinstance(v, bool) or not isinstance(v, int):
                raise ConfigError(f"{self.sub(key)}[{i}]", "must be an integer")
        return list(out)

    def strmap(self, key):
        v = self._get(key, dict, None, False)
        if v is None:
            return {}
        for k, x in v.items():
            if not isinstance(x, str):
                raise ConfigError(f"{self.sub(key)}.{k}", "must be a string")
        return dict(v)


def read_config(bundle):
    """``<bundle>/config.json`` decoded, not validated (``model.load_bundle`` validates it;
    a checkpoint reads the few fields it describes to CRIU without the model). ``bundle``
    is absolute. Raises OciError / ConfigError."""
    from .. import jsonfast
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        if not os.path.isdir(bundle):
            raise OciError(f"bundle {bundle} does not exist") from None
        raise OciError(f"JSON specification file config.json not found in {bundle}") from None
    except OSError as e:
        raise OciError(f"open {path}: {e.strerror}") from None
    try:
        return jsonfast.loads(data)
    except ValueError as e:
        raise ConfigError("config.json", f"invalid JSON: {e}") from None
