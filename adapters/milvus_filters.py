"""Milvus boolean expressions: literals, id lists, and :mod:`smec_vdb.filters` conditions as a superset.

Milvus's own JSON comparison conflates booleans and numbers (``true == 1``) and is null-valued on
a missing key (so ``not`` would drop it), so :func:`filter_expression` is a *superset* of the
condition: equality is ``== v or json_contains(.., v)`` (arrays match an element), a range also
lets every array through (``json_contains_all(.., [])`` holds exactly for arrays), and a ``$not``
constrains nothing. The adapter then keeps the rows that :func:`smec_vdb.filters.matches` accepts.
Dotted keys are nested JSON paths inside the payload field. A collection in a source's own layout
(typed columns and a dynamic field, issue 21) is filtered on the column itself (``year > 2020``,
``ARRAY_CONTAINS(tags, "a")``; a value the column's type cannot hold constrains nothing) or on the
dynamic key (``$meta["k"]``, as JSON).

Example::

    filter_expression(parse({"lang": "en"}))
    # 'payload["lang"] == "en" or json_contains(payload["lang"], "en")'
    in_ids("id", [1, 2])                        # 'id in [1, 2]'
"""

from __future__ import annotations

import json
from typing import Any, Sequence

import numpy as np

from smec_vdb.adapters.milvus_columns import DYNAMIC_FIELD
from smec_vdb.adapters.milvus_schema import PAYLOAD_FIELD
from smec_vdb.backend import CollectionSchema, Column, PointId
from smec_vdb.filters import And, AnyOf, Condition, Not, Or, Range


def literal(value: PointId | float | bool) -> str:
    """A Milvus expression literal: ``true``/``false``, numbers as is, strings double-quoted and escaped."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    return json.dumps(str(value), ensure_ascii=False)


def in_ids(field: str, ids: Sequence[PointId]) -> str:
    """``field in [...]`` with escaped literals (pymilvus's own quoting breaks on e.g. a backslash in an id)."""
    return f"{field} in [{', '.join(literal(i) for i in ids)}]"


def filter_expression(condition: Condition | None, columned: CollectionSchema | None = None) -> str:
    """A Milvus boolean expression that every point matching ``condition`` satisfies ("" = no constraint);
    ``columned``: the schema of a collection whose payload is typed columns and a dynamic field."""
    columns = None if columned is None else {c.name: c for c in columned.columns}
    return _superset(condition, columns) or ""


def _superset(c: Condition | None, columns: dict[str, Column] | None) -> str | None:
    if c is None or isinstance(c, Not):
        return None
    if isinstance(c, (And, Or)):
        parts = [_superset(p, columns) for p in c.parts]
        if isinstance(c, And):
            kept = [p for p in parts if p is not None]
            return " and ".join(f"({p})" for p in kept) if kept else None
        return None if any(p is None for p in parts) else " or ".join(f"({p})" for p in parts)
    column = None if columns is None else columns.get(c.path[0])
    if column is not None and column.type != "json":
        return None if len(c.path) > 1 else _on_column(c, column)
    root = PAYLOAD_FIELD if columns is None else column.name if column is not None else DYNAMIC_FIELD
    field = root + "".join(f"[{literal(key)}]" for key in (c.path[1:] if column is not None else c.path))
    if isinstance(c, AnyOf):
        return " or ".join(f"{field} == {literal(v)} or json_contains({field}, {literal(v)})" for v in c.values)
    bounds = [(">", c.gt), (">=", c.gte), ("<", c.lt), ("<=", c.lte)]
    scalar = " and ".join(f"{field} {op} {literal(float(v))}" for op, v in bounds if v is not None)
    return f"({scalar}) or json_contains_all({field}, [])"


def _on_column(c: AnyOf | Range, column: Column) -> str | None:
    """The condition on a typed column: only the values its type holds (None: no constraint)."""
    numeric = column.type in ("int8", "int16", "int32", "int64", "float", "double")
    if isinstance(c, Range):
        bounds = [(">", c.gt), (">=", c.gte), ("<", c.lt), ("<=", c.lte)]
        return " and ".join(f"{column.name} {op} {literal(float(v))}" for op, v in bounds if v is not None) \
            if numeric else None
    kind = column.element_type if column.type == "array" else column.type
    values = [v for v in c.values if _holds(kind, v)]
    if not values or kind is None:
        return None
    if column.type == "array":
        return f"ARRAY_CONTAINS_ANY({column.name}, [{', '.join(literal(v) for v in values)}])"
    integral = kind in ("int8", "int16", "int32", "int64")
    return " or ".join(f"{column.name} == {literal(int(v) if integral else v)}" for v in values)


def _holds(kind: str | None, value: Any) -> bool:
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "varchar":
        return isinstance(value, str)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return kind in ("float", "double") or float(value).is_integer() and kind in ("int8", "int16", "int32", "int64")
