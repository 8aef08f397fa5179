import pytest

from ociruntime.config.reader import Obj
from ociruntime.errors import ConfigError


def test_paths_in_errors():
    o = Obj({"linux": {"namespaces": [{"type": "pid"}, {"type": 3}]}})
    ns = o.obj("linux").objs("namespaces")
    assert ns[0].str("type") == "pid"
    with pytest.raises(ConfigError, match=r"^linux\.namespaces\[1\]\.type: must be a string$"):
        ns[1].str("type")


def test_required_and_ranges():
    o = Obj({"uid": -1, "flag": 1})
    with pytest.raises(ConfigError, match="^gid: is required$"):
        o.uint32("gid", required=True)
    with pytest.raises(ConfigError, match="^uid: must be >= 0$"):
        o.uint32("uid")
    with pytest.raises(ConfigError, match="^flag: must be a boolean$"):
        o.bool("flag")
