"""Payload keys and typed columns, across engines (issue 21 §2): how a schemaless payload becomes Milvus
columns, and how Milvus columns become Qdrant payload keys with payload indexes.

- **Qdrant → Milvus**: a top-level payload key becomes a typed column when every point of the source
  agrees on one scalar JSON type (int → INT64, float → DOUBLE, str → VARCHAR, bool → BOOL) and its
  name can be a Milvus field; a key some points lack becomes a *nullable* column whose null reads
  back as the key being absent (when no point holds it as null; nullable columns need Milvus >= 2.5).
  Every other key (mixed types, an int on some points and a float on others — a DOUBLE column would
  turn ``1`` into ``1.0`` —, objects, arrays, both null and absent) stays in the dynamic field,
  exactly as the source has it. A payload-indexed key that became a column keeps its index.
- **Milvus → Qdrant**: every column's value is a payload key (Qdrant payloads are schemaless) and each
  scalar-indexed column gets a payload index of the matching type.

The survey (:class:`smec_vdb.migrate.plan.KeyStats`) saw every point, so the choice holds for the
whole source; a point written later with another type is refused by the target and found by re-sync.

Example::

    columns, kept_dynamic = columns_from_payloads(survey.keys, survey.seen, reserved={"id", "full"},
                                                  indexed={"year": "integer"}, nullable=True)
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Mapping

from smec_vdb.backend import Column, ColumnType, PayloadType

if TYPE_CHECKING:
    from smec_vdb.migrate.plan import KeyStats

#: a name Milvus takes for a field
FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")
#: the longest VARCHAR Milvus holds
MAX_VARCHAR = 65535
_COLUMN_OF: dict[str, ColumnType] = {"int": "int64", "float": "double", "str": "varchar", "bool": "bool"}
_INDEX_OF: dict[str, PayloadType] = {"varchar": "keyword", "int8": "integer", "int16": "integer", "int32": "integer",
                                     "int64": "integer", "float": "float", "double": "float", "bool": "bool"}
#: the scalar index a typed column gets for a payload index (Milvus's general-purpose one)
SCALAR_INDEX = "INVERTED"
#: before Milvus 2.4: Trie for strings, STL_SORT for numbers, none for booleans
OLD_INDEXES = {"str": "Trie", "int": "STL_SORT", "float": "STL_SORT"}


def columns_from_payloads(keys: Mapping[str, KeyStats], seen: int, *, reserved: set[str],
                          indexed: Mapping[str, PayloadType], nullable: bool, inverted: bool = True
                          ) -> tuple[tuple[Column, ...], dict[str, str]]:
    """(typed columns, {key: why it stays in the dynamic field}) for a source whose ``seen`` points hold
    ``keys``; ``reserved``: field names taken (the key, vectors); ``nullable``: the target has nullable columns;
    ``inverted``: it has the INVERTED scalar index (else an indexed key gets Trie or STL_SORT, Milvus < 2.4)."""
    columns: list[Column] = []
    dynamic: dict[str, str] = {}
    for key, stats in sorted(keys.items()):
        why = _why_dynamic(key, stats, seen, reserved, nullable)
        if why is not None:
            dynamic[key] = why
            continue
        (kind,) = stats.types - {"null"}
        optional = stats.count < seen or "null" in stats.types
        columns.append(Column(key, _COLUMN_OF[kind], nullable=optional,
                              max_length=MAX_VARCHAR if kind == "str" else None,
                              index=(SCALAR_INDEX if inverted else OLD_INDEXES.get(kind)) if key in indexed else None,
                              absent_when_null=stats.count < seen))
    return tuple(columns), dynamic


def _why_dynamic(key: str, stats: KeyStats, seen: int, reserved: set[str], nullable: bool) -> str | None:
    types = stats.types - {"null"}
    if not FIELD_NAME.fullmatch(key) or key in reserved:
        return "not a name a Milvus field can have" if key not in reserved else "the name of another field"
    if len(types) != 1:
        return f"points hold it as {' and '.join(sorted(types)) or 'null only'}"
    (kind,) = types
    if kind not in _COLUMN_OF:
        return f"it holds {'objects' if kind == 'object' else 'arrays'}"
    if kind == "str" and stats.max_bytes > MAX_VARCHAR:
        return f"a string of {stats.max_bytes} bytes is longer than a VARCHAR holds ({MAX_VARCHAR})"
    if stats.count < seen and "null" in stats.types:
        return "some points lack it and some hold null: a column cannot tell the two apart"
    if (stats.count < seen or "null" in stats.types) and not nullable:
        return "some points lack it or hold null, and the target has no nullable columns (Milvus < 2.5)"
    return None


def indexes_from_columns(columns: tuple[Column, ...]) -> dict[str, PayloadType]:
    """The payload indexes a schemaless target gives the source's scalar-indexed columns."""
    return {c.name: _INDEX_OF[c.type] for c in columns if c.index is not None and c.type in _INDEX_OF}


_HOLDS = {"int": ("int8", "int16", "int32", "int64"), "float": ("float", "double"), "str": ("varchar",),
          "bool": ("bool",), "array": ("array", "json"), "object": ("json",)}


def column_holds(column: Column, kind: str) -> bool:
    """Whether ``column`` holds values of JSON type ``kind`` (``null``: when it is nullable)."""
    if kind == "null":
        return column.nullable
    return column.type in _HOLDS.get(kind, ()) or column.type == "json"


def describe(column: Column) -> str:
    """e.g. ``column 'title' varchar(64) nullable, INVERTED index``."""
    kind = column.type + (f"({column.max_length})" if column.max_length else "")
    if column.type == "array":
        kind += f" of {column.element_type}"
    extras = [word for word, on in (("nullable", column.nullable), ("partition key", column.partition_key)) if on]
    if column.default is not None:
        extras.append(f"default {column.default!r}")
    index = f", {column.index} index" if column.index else ""
    return f"column {column.name!r} {kind}{''.join(' ' + e for e in extras)}{index}"
