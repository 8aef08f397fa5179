import json

import pytest

from ociruntime import jsonfast


@pytest.mark.parametrize("doc", [
    {"a": [1, 2.5, True, None, "é\n\u2028"], "b": {"c": -3, "d": ""}},
    [], {}, "x", 0, 1e300, [{"k": [[[]]]}],
])
def test_roundtrip_matches_json(doc):
    s = jsonfast.dumps(doc)
    assert json.loads(s) == doc
    assert jsonfast.loads(s) == doc
    assert jsonfast.loads(json.dumps(doc, indent=2)) == doc


@pytest.mark.parametrize("bad", ["", "{", "[1,]", "{} x", "nope", '{"a":NaN}', b"\xff"])
def test_invalid(bad):
    with pytest.raises(ValueError):
        jsonfast.loads(bad)


@pytest.mark.parametrize("doc", [
    {"a": [1, {"b": []}, {}], "c": "é", "d": None, "e": {"f": [True, 2.5]}}, [], {}, 3,
])
def test_indent_matches_json(doc):
    assert jsonfast.dumps_indent(doc) == json.dumps(doc, indent=2)
