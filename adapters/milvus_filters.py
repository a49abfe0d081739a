"""Milvus boolean expressions: literals, id lists, and :mod:`smec_vdb.filters` conditions as a superset.

Milvus's own JSON comparison conflates booleans and numbers (``true == 1``) and is null-valued on
a missing key (so ``not`` would drop it), so :func:`filter_expression` is a *superset* of the
condition: equality is ``== v or json_contains(.., v)`` (arrays match an element), a range also
lets every array through (``json_contains_all(.., [])`` holds exactly for arrays), and a ``$not``
constrains nothing. The adapter then keeps the rows that :func:`smec_vdb.filters.matches` accepts.
Dotted keys are nested JSON paths inside the payload field.

Example::

    filter_expression(parse({"lang": "en"}))
    # 'payload["lang"] == "en" or json_contains(payload["lang"], "en")'
    in_ids("id", [1, 2])                        # 'id in [1, 2]'
"""

from __future__ import annotations

import json
from typing import Sequence

import numpy as np

from smec_vdb.adapters.milvus_schema import PAYLOAD_FIELD
from smec_vdb.backend import PointId
from smec_vdb.filters import And, AnyOf, Condition, Not, Or


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


def filter_expression(condition: Condition | None) -> str:
    """A Milvus boolean expression that every point matching ``condition`` satisfies ("" = no constraint)."""
    return _superset(condition) or ""


def _superset(c: Condition | None) -> str | None:
    if c is None or isinstance(c, Not):
        return None
    if isinstance(c, (And, Or)):
        parts = [_superset(p) for p in c.parts]
        if isinstance(c, And):
            kept = [p for p in parts if p is not None]
            return " and ".join(f"({p})" for p in kept) if kept else None
        return None if any(p is None for p in parts) else " or ".join(f"({p})" for p in parts)
    field = PAYLOAD_FIELD + "".join(f"[{literal(key)}]" for key in c.path)
    if isinstance(c, AnyOf):
        return " or ".join(f"{field} == {literal(v)} or json_contains({field}, {literal(v)})" for v in c.values)
    bounds = [(">", c.gt), (">=", c.gte), ("<", c.lt), ("<=", c.lte)]
    scalar = " and ".join(f"{field} {op} {literal(float(v))}" for op, v in bounds if v is not None)
    return f"({scalar}) or json_contains_all({field}, [])"
