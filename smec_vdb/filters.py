"""The payload filter language: one meaning on every engine.

A filter is a JSON object. Each key is a payload path (a dot means nesting: ``"meta.lang"`` is
``payload["meta"]["lang"]``) or an operator; several entries are ANDed::

    {"kind": "function"}                          equality
    {"kind": ["class", "function"]}               any of (also {"kind": {"$in": [...]}})
    {"year": {"$gte": 2020, "$lt": 2024}}         range ($gt, $gte, $lt, $lte; numbers only)
    {"$or": [{"kind": "class"}, {"len": {"$gt": 3}}]}
    {"$and": [...]}, {"$not": {"kind": "class"}}

Values are strings, finite numbers or booleans. Meaning, on every engine:

- numbers compare by value (``1`` matches ``1`` and ``1.0``); booleans are not numbers
  (``1`` never matches ``true``, ``true`` never matches ``1``); strings match exactly;
- a payload array matches a condition when one of its elements does (``{"tags": "a"}`` matches
  ``{"tags": ["a", "b"]}``, ``{"n": {"$gt": 1}}`` matches ``{"n": [0, 2]}``); ranges compare numbers only;
- a dotted path goes through objects, not arrays of objects; a missing key (or ``null``) matches
  no condition, so ``$not`` matches it.

Engine limit (a typed error, see ENGINES.md): qdrant-edge-py 0.9 reads a boolean match as the
integer 1, so a filter on a boolean value is refused there rather than answered wrongly.

:func:`parse` validates a filter into a small tree (ConfigError naming what is wrong, before any
engine call); :func:`matches` evaluates it on a payload — the reference every adapter's
translation is tested against.

Example::

    f = parse({"kind": ["class", "function"], "meta.year": {"$gte": 2020}})
    matches(f, {"kind": "class", "meta": {"year": 2021}})   # True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Union

from smec_vdb.errors import ConfigError

Scalar = Union[str, int, float, bool]
RANGE_OPS = ("$gt", "$gte", "$lt", "$lte")
LEAF_OPS = ("$eq", "$in", *RANGE_OPS)
LOGIC_OPS = ("$and", "$or", "$not")


@dataclass(frozen=True)
class AnyOf:
    """``path`` (a tuple of keys) equals one of ``values`` (or an array there holds one of them)."""

    path: tuple[str, ...]
    values: tuple[Scalar, ...]


@dataclass(frozen=True)
class Range:
    """The number at ``path`` lies within the given bounds (None: unbounded)."""

    path: tuple[str, ...]
    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None


@dataclass(frozen=True)
class And:
    parts: tuple[Condition, ...]


@dataclass(frozen=True)
class Or:
    parts: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    part: Condition


Condition = Union[AnyOf, Range, And, Or, Not]


def parse(filter: Any) -> Condition | None:
    """The filter as a condition tree; None for no filter (``None``). ConfigError for anything malformed.

    An empty object, ``false``, a list or a bare value are errors, not "no filter".
    """
    if filter is None:
        return None
    return _parse_object(filter, "filter")


def _parse_object(obj: Any, where: str) -> Condition:
    if not isinstance(obj, Mapping):
        raise ConfigError(f"{where}: expected a JSON object such as {{\"kind\": \"class\"}}, found {obj!r}")
    if not obj:
        raise ConfigError(f"{where}: expected at least one condition, found an empty object")
    parts = [_parse_entry(key, value, where) for key, value in obj.items()]
    return parts[0] if len(parts) == 1 else And(tuple(parts))


def _parse_entry(key: Any, value: Any, where: str) -> Condition:
    if not isinstance(key, str) or not key:
        raise ConfigError(f"{where}: keys must be non-empty strings, found {key!r}")
    if key in ("$and", "$or"):
        if not isinstance(value, (list, tuple)) or not value:
            raise ConfigError(f"{where}: {key} takes a non-empty list of filters, found {value!r}")
        parts = tuple(_parse_object(v, f"{where}.{key}[{i}]") for i, v in enumerate(value))
        return And(parts) if key == "$and" else Or(parts)
    if key == "$not":
        return Not(_parse_object(value, f"{where}.$not"))
    if key.startswith("$"):
        raise ConfigError(f"{where}: unknown operator {key!r}; known: {', '.join(LOGIC_OPS)} (and per key {', '.join(LEAF_OPS)})")
    path = tuple(key.split("."))
    if not all(path):
        raise ConfigError(f"{where}: key {key!r} has an empty path segment")
    return _parse_leaf(path, value, f"{where}[{key!r}]")


def _parse_leaf(path: tuple[str, ...], value: Any, where: str) -> Condition:
    if isinstance(value, (list, tuple)):
        return AnyOf(path, _scalars(value, where))
    if not isinstance(value, Mapping):
        return AnyOf(path, (_scalar(value, where),))
    unknown = [op for op in value if op not in LEAF_OPS]
    if unknown or not value:
        raise ConfigError(f"{where}: expected a value, a list, or an object of {', '.join(LEAF_OPS)}, found {dict(value)!r}")
    parts: list[Condition] = []
    if "$eq" in value:
        parts.append(AnyOf(path, (_scalar(value["$eq"], where),)))
    if "$in" in value:
        if not isinstance(value["$in"], (list, tuple)):
            raise ConfigError(f"{where}: $in takes a list, found {value['$in']!r}")
        parts.append(AnyOf(path, _scalars(value["$in"], where)))
    bounds = {op[1:]: _number(value[op], where, op) for op in RANGE_OPS if op in value}
    if bounds:
        parts.append(Range(path, **bounds))
    return parts[0] if len(parts) == 1 else And(tuple(parts))


def _scalars(values: Any, where: str) -> tuple[Scalar, ...]:
    if not values:
        raise ConfigError(f"{where}: expected a non-empty list of values, found {list(values)!r}")
    return tuple(_scalar(v, where) for v in values)


def _scalar(value: Any, where: str) -> Scalar:
    if isinstance(value, bool) or isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and math.isfinite(value):
        return value
    raise ConfigError(f"{where}: expected a string, finite number or boolean, found {value!r}")


def _number(value: Any, where: str, op: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{where}: {op} takes a finite number, found {value!r}")
    return value


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def equal(a: Any, b: Scalar) -> bool:
    """Filter equality: numbers by value, booleans only with booleans, strings exactly."""
    if isinstance(b, bool) or isinstance(a, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if is_number(b):
        return is_number(a) and a == b
    return isinstance(a, str) and a == b


def in_range(a: Any, r: Range) -> bool:
    if not is_number(a):
        return False
    return ((r.gt is None or a > r.gt) and (r.gte is None or a >= r.gte)
            and (r.lt is None or a < r.lt) and (r.lte is None or a <= r.lte))


def lookup(payload: Mapping[str, Any] | None, path: tuple[str, ...]) -> Any:
    """The value at ``path`` in ``payload`` (None when absent)."""
    value: Any = payload
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def matches(condition: Condition | None, payload: Mapping[str, Any] | None) -> bool:
    """Whether ``payload`` satisfies ``condition`` (None matches everything): the reference semantics."""
    if condition is None:
        return True
    if isinstance(condition, And):
        return all(matches(p, payload) for p in condition.parts)
    if isinstance(condition, Or):
        return any(matches(p, payload) for p in condition.parts)
    if isinstance(condition, Not):
        return not matches(condition.part, payload)
    value = lookup(payload, condition.path)
    candidates = value if isinstance(value, list) else [value]
    if isinstance(condition, AnyOf):
        return any(equal(c, v) for c in candidates for v in condition.values)
    return any(in_range(c, condition) for c in candidates)


def leaves(condition: Condition | None) -> list[AnyOf | Range]:
    """Every equality/range condition in the tree."""
    if condition is None:
        return []
    if isinstance(condition, (And, Or)):
        return [leaf for part in condition.parts for leaf in leaves(part)]
    if isinstance(condition, Not):
        return leaves(condition.part)
    return [condition]
