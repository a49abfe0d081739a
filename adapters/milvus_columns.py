"""Typed columns of a Milvus collection (issue 21): read from a foreign collection's description, created
again in a migration target, and the payload of a point split into them and the dynamic field.

A migration target of a Milvus source keeps the source's schema: its primary key (name, type,
max_length; auto_id sources keep their generated ids, written explicitly), every scalar column
with its type, nullability, default, max_length (arrays: element type and capacity), its scalar
index and the partition-key flag, and the dynamic-field setting; nothing moves into a JSON blob.
A point's payload is its columns plus, with a dynamic field, every other key (``$meta``), as
pymilvus returns them at top level. A column marked ``absent_when_null`` (made from a Qdrant payload
key some points lack) reads a null as the key being absent.

What a server cannot hold is refused before anything is written (:func:`check_columns`): nullable
columns before Milvus 2.5 (2.3.5 accepts ``nullable`` and silently ignores it, measured) and the
INVERTED scalar index before 2.4 (2.3.5: "index type not match [expected=Trie]").

Example::

    columns = columns_from_fields(described["fields"], primary, vector_names, {"title": "INVERTED"})
    row = row_of(payload, columns, dynamic=True)        # {"title": "a", "year": 2021, "extra": {...}}
    payload = payload_of(row, columns, skip={"doc_id", "dense"})
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from smec_vdb.backend import Column, PointId, PrimaryKey
from smec_vdb.errors import ConfigError, DataError

#: Milvus DataType names of the column types smec-vdb reads and writes
TYPE_NAMES: dict[str, str] = {"bool": "BOOL", "int8": "INT8", "int16": "INT16", "int32": "INT32", "int64": "INT64",
                              "float": "FLOAT", "double": "DOUBLE", "varchar": "VARCHAR", "json": "JSON",
                              "array": "ARRAY"}
_TYPES_BY_NAME = {v: k for k, v in TYPE_NAMES.items()}
_INT_BOUNDS = {"int8": 2**7, "int16": 2**15, "int32": 2**31, "int64": 2**63}
DYNAMIC_FIELD = "$meta"
MAX_VARCHAR = 65535
#: scalar indexes a server before 2.4 lacks (it has Trie for VARCHAR, STL_SORT for numbers)
INDEXES_SINCE_2_4 = ("INVERTED", "BITMAP")


def column_type(data_type: Any) -> str | None:
    """The column type of a pymilvus ``DataType`` (None: not a scalar column smec-vdb knows)."""
    return _TYPES_BY_NAME.get(getattr(data_type, "name", str(data_type)))


def default_value(field: Mapping[str, Any]) -> Any:
    """A field's default as a Python value (describe_collection gives a protobuf ``ValueField``)."""
    proto = field.get("default_value")
    if proto is None or not hasattr(proto, "WhichOneof"):
        return proto
    which = proto.WhichOneof("data")
    return None if which is None else getattr(proto, which)


def primary_of(field: Mapping[str, Any], auto_id: bool) -> PrimaryKey:
    return PrimaryKey(field["name"], auto_id=bool(field.get("auto_id", auto_id)),
                      max_length=field.get("params", {}).get("max_length"))


def columns_from_fields(fields: Sequence[Mapping[str, Any]], skip: set[str], indexes: Mapping[str, str]
                        ) -> tuple[Column, ...]:
    """The scalar columns among ``fields`` (a description's), but those in ``skip`` (the key, the vectors);
    ``indexes``: field name -> its scalar index type. ConfigError for a scalar type smec-vdb cannot read."""
    columns = []
    for f in fields:
        if f["name"] in skip or f.get("is_dynamic"):
            continue
        kind = column_type(f["type"])
        if kind is None:
            raise ConfigError(f"column {f['name']!r} is of type {f['type']!r}, which smec-vdb does not read yet")
        params = f.get("params", {})
        element = f.get("element_type")
        columns.append(Column(
            f["name"], kind, nullable=bool(f.get("nullable")), default=default_value(f),  # type: ignore[arg-type]
            max_length=params.get("max_length"), element_type=None if element is None else column_type(element),  # type: ignore[arg-type]
            max_capacity=params.get("max_capacity"), index=indexes.get(f["name"]),
            partition_key=bool(f.get("is_partition_key"))))
    return tuple(columns)


def add_columns(schema: Any, columns: Sequence[Column], data_type: Any) -> None:
    """Add ``columns`` to a pymilvus ``CollectionSchema`` (``data_type``: pymilvus ``DataType``)."""
    for c in columns:
        extra: dict[str, Any] = {}
        if c.max_length is not None or "varchar" in (c.type, c.element_type):
            extra["max_length"] = c.max_length or MAX_VARCHAR  # a server needs one; Milvus Lite does not report it
        if c.element_type is not None:
            extra["element_type"] = getattr(data_type, TYPE_NAMES[c.element_type])
        if c.max_capacity is not None:
            extra["max_capacity"] = c.max_capacity
        if c.nullable:
            extra["nullable"] = True
        if c.default is not None:
            extra["default_value"] = c.default
        if c.partition_key:
            extra["is_partition_key"] = True
        schema.add_field(c.name, getattr(data_type, TYPE_NAMES[c.type]), **extra)


def check_columns(columns: Sequence[Column], nullable: bool, inverted: bool, server: str) -> None:
    """ConfigError naming what the connected Milvus (``server``) cannot hold: a nullable column without
    ``nullable`` support, an INVERTED/BITMAP index without ``inverted`` support."""
    for c in columns:
        if c.nullable and not nullable:
            raise ConfigError(f"{server} has no nullable fields (they came with Milvus 2.5; it would silently make "
                              f"{c.name!r} not nullable): migrate to a Milvus >= 2.5 server or another engine")
        if c.index in INDEXES_SINCE_2_4 and not inverted:
            raise ConfigError(f"{server} has no {c.index} scalar index (from Milvus 2.4) for column {c.name!r}: "
                              "migrate to a Milvus >= 2.4 server or another engine")


def row_of(point_id: PointId, payload: Mapping[str, Any], columns: Sequence[Column], dynamic: bool) -> dict[str, Any]:
    """The column cells and dynamic keys of one point's payload; DataError if a value does not fit its
    column, or a key is no column and the collection has no dynamic field."""
    row: dict[str, Any] = {}
    named = {c.name for c in columns}
    for c in columns:
        value = payload.get(c.name)
        if value is None and not c.nullable and c.default is None:
            raise DataError(f"payload of id {point_id!r} has no value for column {c.name!r}, which is not nullable")
        if value is not None and not fits(c, value):
            raise DataError(f"payload of id {point_id!r}: key {c.name!r} holds {value!r}, which a {c.type} column "
                            "cannot hold")
        row[c.name] = value
    extra = {k: v for k, v in payload.items() if k not in named}
    if extra and not dynamic:
        raise DataError(f"payload of id {point_id!r} has keys {sorted(extra)} that are no column, and the collection "
                        "has no dynamic field")
    row.update(extra)
    return row


def payload_of(row: Mapping[str, Any], columns: Sequence[Column], skip: set[str]) -> dict[str, Any]:
    """A point's payload from a row: every field but those in ``skip`` and the dynamic field itself,
    a null in an ``absent_when_null`` column left out."""
    absent = {c.name for c in columns if c.absent_when_null}
    return {k: v for k, v in row.items()
            if k not in skip and k != DYNAMIC_FIELD and not (v is None and k in absent)}


def fits(c: Column, value: Any) -> bool:
    """Whether ``value`` is held exactly by column ``c`` (bools are not numbers, ints not floats)."""
    if c.type == "bool":
        return isinstance(value, bool)
    if c.type in _INT_BOUNDS:
        bound = _INT_BOUNDS[c.type]
        return isinstance(value, int) and not isinstance(value, bool) and -bound <= value < bound
    if c.type in ("float", "double"):
        return isinstance(value, float) and math.isfinite(value)
    if c.type == "varchar":
        return isinstance(value, str) and (c.max_length is None or len(value.encode()) <= c.max_length)
    if c.type == "array":
        return isinstance(value, list) and (c.max_capacity is None or len(value) <= c.max_capacity)
    return True  # json
