"""The filter language (smec_vdb.filters): parsing with typed errors, and the reference semantics."""

from __future__ import annotations

import pytest

from smec_vdb.errors import ConfigError
from smec_vdb.filters import And, AnyOf, Not, Or, Range, matches, parse


def test_parse_builds_the_tree():
    assert parse(None) is None
    assert parse({"k": "v"}) == AnyOf(("k",), ("v",))
    assert parse({"k": [1, 2]}) == AnyOf(("k",), (1, 2))
    assert parse({"a.b": {"$gte": 1, "$lt": 2}}) == Range(("a", "b"), gte=1, lt=2)
    assert parse({"$or": [{"a": 1}, {"$not": {"b": True}}]}) == Or((AnyOf(("a",), (1,)), Not(AnyOf(("b",), (True,)))))
    assert parse({"a": 1, "b": {"$eq": "x", "$in": ["y"]}}) == And(
        (AnyOf(("a",), (1,)), And((AnyOf(("b",), ("x",)), AnyOf(("b",), ("y",))))))


@pytest.mark.parametrize("bad", [
    [1, 2], 1, "x", False, True, {}, {"k": []}, {"k": None}, {"k": {"y": 1}}, {"k": {"$gt": "a"}}, {"k": {"$gt": True}},
    {"k": float("nan")}, {"k": [1, None]}, {"$and": []}, {"$or": {"a": 1}}, {"$not": [1]}, {"$nor": [{"a": 1}]},
    {"a..b": 1}, {"": 1}, {"k": {"$in": 3}}, {"k": {}},
])
def test_malformed_filters_are_config_errors(bad):
    with pytest.raises(ConfigError, match="filter"):
        parse(bad)


@pytest.mark.parametrize("flt, payload, expected", [
    ({"x": 1}, {"x": 1.0}, True), ({"x": 1}, {"x": True}, False), ({"x": True}, {"x": 1}, False),
    ({"x": 1}, {"x": [0, 1]}, True), ({"x": 1}, {"x": "1"}, False), ({"x": "1"}, {"x": "1"}, True),
    ({"x": {"$gt": 1}}, {"x": [0, 2]}, True), ({"x": {"$gt": 1}}, {"x": True}, False),
    ({"a.b": 1}, {"a": {"b": 1}}, True), ({"a.b": 1}, {"a.b": 1}, False), ({"a.b": 1}, {"a": [{"b": 1}]}, False),
    ({"$not": {"x": 1}}, {}, True), ({"x": 1}, {}, False), ({"x": 1}, None, False),
])
def test_reference_semantics(flt, payload, expected):
    assert matches(parse(flt), payload) is expected
