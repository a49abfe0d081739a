"""A :class:`~smec_vdb.backend.CollectionSchema` as Milvus fields, both ways: the collection smec-vdb
creates, and the one it reads back (its own, or a foreign one such as pymilvus' quick setup).

Layout (issue 3): primary key ``id`` (INT64 or VARCHAR), one FLOAT_VECTOR field per resolution
(several need Milvus >= 2.4), one SPARSE_FLOAT_VECTOR field per carried sparse vector, and the
payload in one JSON field ``payload``. Each vector field's index follows the collection's layout
(:mod:`smec_vdb.adapters.milvus_layout`); metrics COSINE, IP or L2. What Milvus cannot report back
(the distance, ``payload_indexes``, index parameters such as ``ef_search``, the layout) is kept in
the collection property ``smec.schema``; a collection without it is foreign.

Typed payload columns: filtering inside the JSON field is slow in Milvus Lite (131 ms against 9 ms
on a typed column, 20k rows, measured) and Lite cannot index JSON. So each ``payload_indexes`` key
that is an identifier also gets a nullable typed column ``payload_<key>`` (VARCHAR, INT64, DOUBLE,
BOOL; INVERTED-indexed on a server; nullable columns need Milvus >= 2.5, so before 2.5 there are
none), holding the payload value when it has the declared type and null otherwise. Keys that are
not identifiers get no column. Filters read the JSON payload, not these columns: a column cannot
tell an array from a missing value, and :mod:`smec_vdb.filters` matches array elements.

A migration target keeps a Milvus source's own layout instead (issue 21; ``schema.primary`` set):
its primary key, typed columns with their indexes, dynamic field and partitions
(:mod:`smec_vdb.adapters.milvus_columns`), no JSON payload field, so the application's queries
(``filter="year > 2020", output_fields=["title"]``) answer on the target as on the source. What
Milvus cannot report back (``absent_when_null`` columns, the distance…) is in ``smec.schema`` too.

Creating a collection is all-or-nothing (:func:`create_all_or_nothing`): create, partitions, index
and load, else the half-made collection is dropped.

Example::

    fields, index_params, properties = build_fields(schema, conn)
    create_all_or_nothing(conn, reads, "docs", fields, index_params, properties)
    mapping = read_fields(conn, "docs")     # CollectionFields: the schema, the key, how rows become points
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, replace
from typing import Any, Mapping, Sequence

import numpy as np

from smec_vdb.adapters.milvus_connection import MilvusConnection
from smec_vdb.adapters.milvus_consistency import Reads
from smec_vdb.adapters.milvus_errors import pymilvus
from smec_vdb.adapters.milvus_columns import (
    DYNAMIC_FIELD,
    add_columns,
    check_columns,
    columns_from_fields,
    payload_of,
    primary_of,
    row_of,
)
from smec_vdb.adapters.milvus_layout import field_index
from smec_vdb.adapters.validation import CheckedBatch
from smec_vdb.backend import CollectionSchema, Distance, IndexParams, PayloadType, Point, PointId, Resolution, SparseVector
from smec_vdb.errors import CollectionNotFoundError, ConfigError, DataError, SmecError, UnsupportedServerError
from smec_vdb.layout import Layout, placements

ID_FIELD = "id"
PAYLOAD_FIELD = "payload"
SCHEMA_PROPERTY = "smec.schema"
DEFAULT_PARTITION = "_default"
MAX_VARCHAR = 65535
INT64_MAX = 2**63 - 1
METRICS: dict[str, str] = {"cosine": "COSINE", "dot": "IP", "euclid": "L2"}
DISTANCES: dict[str, Distance] = {v: k for k, v in METRICS.items()}  # type: ignore[misc]
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,199}")


#: payload index types a typed column holds (others, e.g. Qdrant's text or geo, get none: filters read the JSON)
COLUMN_KINDS = ("keyword", "integer", "float", "bool")
#: a Milvus server refuses a JSON value longer than this (``length (66687) of json field (value) exceeds
#: max length (65536)``, measured on 2.3.5); Milvus Lite has no such limit
SERVER_JSON_BYTES = 65536


def indexed_columns(payload_indexes: Mapping[str, PayloadType]) -> dict[str, tuple[str, PayloadType]]:
    """Payload key -> (typed column name, type) for the ``payload_indexes`` keys that are identifiers."""
    return {key: (f"{PAYLOAD_FIELD}_{key}", kind) for key, kind in payload_indexes.items()
            if IDENTIFIER.fullmatch(key) and kind in COLUMN_KINDS}


def fits(kind: PayloadType, value: Any) -> bool:
    """Whether ``value`` can live in a typed column of payload type ``kind`` (bools are not numbers)."""
    if kind == "keyword":
        return isinstance(value, str)
    if kind == "bool":
        return isinstance(value, bool)
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return False
    if kind == "integer":
        return isinstance(value, (int, np.integer)) and bool(-INT64_MAX - 1 <= value <= INT64_MAX)
    return math.isfinite(value)


def column_value(kind: PayloadType, value: Any) -> Any:
    """The typed column's cell for a payload value: the value if it fits ``kind``, else null."""
    if not fits(kind, value):
        return None
    return float(value) if kind == "float" else value


def check_id_range(schema: CollectionSchema, ids: Sequence[PointId]) -> None:
    """DataError for an integer id that a signed 64-bit Milvus key cannot hold."""
    if schema.id_type == "int":
        too_big = next((i for i in ids if isinstance(i, int) and i > INT64_MAX), None)
        if too_big is not None:
            raise DataError(f"Milvus ids are signed 64-bit integers, found {too_big}")


@dataclass(frozen=True)
class CollectionFields:
    """How a collection's Milvus fields hold points, read once from the engine.

    A collection smec-vdb created keeps its payload in the JSON field ``payload``, unless it keeps a
    source's own layout (``columned``: a migration target, ``schema.primary`` set). A *foreign* one
    (e.g. made by ``MilvusClient.create_collection(name, dimension=...)``) is read as it is. Both read
    the payload as the typed columns plus, when dynamic fields are enabled, every dynamic key
    (``$meta``), at top level as pymilvus returns them; a columned one also writes it so.
    """

    schema: CollectionSchema
    pk: str = ID_FIELD
    foreign: bool = False
    columned: bool = False
    #: whether the ``payload_indexes`` keys have typed columns (none before Milvus 2.5: no nullable fields)
    typed_columns: bool = True

    @property
    def in_columns(self) -> bool:
        """The payload lives in typed columns and the dynamic field (not in one JSON field)."""
        return self.foreign or self.columned

    @property
    def columns(self) -> dict[str, tuple[str, PayloadType]]:
        """The ``payload_<key>`` columns of a JSON-payload collection's ``payload_indexes``."""
        return indexed_columns(self.schema.payload_indexes) if self.typed_columns and not self.in_columns else {}

    @property
    def vector_names(self) -> list[str]:
        return [r.name for r in self.schema.resolutions]

    @property
    def partitioned(self) -> bool:
        """Points live in named partitions (read and written per partition)."""
        return bool(self.schema.partitions)

    def names(self, with_vectors: bool | Sequence[str]) -> list[str]:
        if with_vectors is True:
            return self.vector_names + list(self.schema.sparse)
        if with_vectors is False:
            return []
        return [name if name in self.schema.sparse else self.schema.resolution(name).name for name in with_vectors]

    @property
    def payload_fields(self) -> list[str]:
        """The fields a point's payload is read from."""
        if not self.in_columns:
            return [PAYLOAD_FIELD]
        return [*(c.name for c in self.schema.columns), *([DYNAMIC_FIELD] if self.schema.dynamic_field else [])]

    def output_fields(self, with_vectors: bool | Sequence[str]) -> list[str]:
        """Fields to ask for: the key, the payload's fields, then the vectors wanted."""
        return [self.pk, *self.payload_fields, *self.names(with_vectors)]

    def payload(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """The payload of a row (a query's row or a search hit's entity)."""
        if not self.in_columns:
            return dict(row.get(PAYLOAD_FIELD) or {})
        return payload_of(row, self.schema.columns, {self.pk, *self.vector_names, *self.schema.sparse})

    def point(self, row: Mapping[str, Any], vector_names: Sequence[str]) -> Point:
        dense = {n: np.asarray(row[n], dtype=np.float32) for n in vector_names if n not in self.schema.sparse}
        sparse = {n: SparseVector.of(list(row[n]), list(row[n].values())) for n in vector_names
                  if n in self.schema.sparse and row.get(n)}
        return Point(id=row[self.pk], vectors=dense, payload=self.payload(row), sparse=sparse)

    def rows(self, checked: CheckedBatch, start: int, stop: int) -> list[dict[str, Any]]:
        """Rows ``start:stop`` of a validated batch as this (smec-vdb-made) collection stores them."""
        names, columns = self.vector_names, list(self.columns.items())
        vectors = {name: checked.vectors[name][start:stop] for name in names}

        def payload_cells(i: int) -> dict[str, Any]:
            payload = checked.payloads[i]
            if self.columned:
                return row_of(checked.ids[i], payload, self.schema.columns, self.schema.dynamic_field)
            return {PAYLOAD_FIELD: payload,
                    **{column: column_value(kind, payload.get(key)) for key, (column, kind) in columns}}

        return [
            {self.pk: checked.ids[i], **payload_cells(i),
             **{name: vectors[name][i - start] for name in names},
             **{name: (entry.as_dict() if (entry := entries[i]) is not None else {})
                for name, entries in checked.sparse.items()}}
            for i in range(start, stop)
        ]

    def writable(self, target: str, collection: str) -> None:
        if self.foreign:
            raise ConfigError(
                f"{target}: collection {collection!r} was not created by smec-vdb; it is only read (migrate it)"
            )


def check_holdable(schema: CollectionSchema, conn: MilvusConnection) -> None:
    """ConfigError (UnsupportedServerError for an old server) if the connected Milvus cannot hold ``schema``."""
    target, caps = conn.target, conn.capabilities
    if schema.id_type == "any":
        raise ConfigError(
            f"{target}: a Milvus primary key has one type (INT64 or VARCHAR), but the schema asks for "
            "integer and string ids in one collection"
        )
    fields = [r.name for r in schema.resolutions] + list(schema.sparse)
    if len(fields) > 1 and not caps.multi_vector:
        raise UnsupportedServerError(
            f"{target}: the server is {caps.describe()}, which holds one vector field per "
            f"collection, but the schema has {len(fields)} ({', '.join(fields)}): multi-resolution collections "
            "need Milvus >= 2.4; store one resolution (e.g. one dim without the full vector), or write the "
            "target to a Milvus >= 2.4 server or another engine"
        )
    if len(fields) > conn.max_vector_fields:
        raise ConfigError(
            f"Milvus allows {conn.max_vector_fields} vector fields per collection by default "
            f"(proxy.maxVectorFieldNum), the schema has {len(schema.resolutions)} resolutions; store fewer "
            "resolutions, or raise proxy.maxVectorFieldNum in the server's milvus.yaml and pass "
            "MilvusBackend(..., max_vector_fields=N)"
        )
    odd = [r.describe() for r in schema.resolutions if not r.plain]
    if odd:
        raise ConfigError(f"{target}: smec-vdb writes FLOAT_VECTOR fields only (one float32 vector per row), "
                          f"not {', '.join(odd)}")
    if any(r.distance == "manhattan" for r in schema.resolutions) or schema.distance == "manhattan":
        raise ConfigError(f"{target}: Milvus has no Manhattan (L1) metric for dense vectors")
    for name in fields:
        if (not IDENTIFIER.fullmatch(name) or name in (ID_FIELD, PAYLOAD_FIELD)
                or name.startswith(PAYLOAD_FIELD + "_")):
            raise ConfigError(
                f"Milvus vector field names must start with a letter or '_', differ from {ID_FIELD!r} and "
                f"not start with {PAYLOAD_FIELD!r} (reserved for payload columns), found {name!r}"
            )
    check_columns(schema.columns, nullable=caps.nullable_columns, inverted=caps.inverted_index,
                  server=caps.describe())


def build_fields(schema: CollectionSchema, conn: MilvusConnection) -> tuple[Any, Any, dict[str, str]]:
    """(pymilvus schema, index params, collection properties) of a new collection holding ``schema``
    (with ``schema.primary``: the source's key, columns, their indexes and dynamic field, no JSON payload)."""
    DataType = pymilvus().DataType
    columned = schema.primary is not None
    fields = pymilvus().MilvusClient.create_schema(auto_id=False, enable_dynamic_field=columned and schema.dynamic_field)
    key = schema.primary.name if schema.primary is not None else ID_FIELD
    if schema.id_type == "int":
        fields.add_field(key, DataType.INT64, is_primary=True)
    else:
        length = (schema.primary.max_length if schema.primary is not None else None) or MAX_VARCHAR
        fields.add_field(key, DataType.VARCHAR, is_primary=True, max_length=length)
    for r in schema.resolutions:
        fields.add_field(r.name, DataType.FLOAT_VECTOR, dim=r.dim)
    for name in schema.sparse:
        fields.add_field(name, DataType.SPARSE_FLOAT_VECTOR)
    if columned:
        add_columns(fields, schema.columns, DataType)
    else:
        fields.add_field(PAYLOAD_FIELD, DataType.JSON)
    column_types = {"keyword": DataType.VARCHAR, "integer": DataType.INT64, "float": DataType.DOUBLE, "bool": DataType.BOOL}
    # Before Milvus 2.5 a column cannot be null (nor INVERTED-indexed): no typed columns there, the
    # filters read the JSON payload anyway (a non-null sentinel could not tell "missing" from a value).
    columns = indexed_columns(schema.payload_indexes) if conn.capabilities.nullable_columns and not columned else {}
    for column, kind in columns.values():
        extra = {"max_length": MAX_VARCHAR} if kind == "keyword" else {}
        fields.add_field(column, column_types[kind], nullable=True, **extra)
    index_params = conn.client.prepare_index_params()
    for name in schema.sparse:
        index_params.add_index(name, index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
    placed = placements(schema)  # layout: HNSW / HNSW_SQ / FLAT (+ mmap) per resolution
    for r in schema.resolutions:
        index_type, params = field_index(placed[r.name], schema.index)
        index_params.add_index(r.name, index_type=index_type, metric_type=METRICS[schema.distance_of(r.name)],
                               params=params)
    # Milvus Lite filters typed columns fast without an index; a server gets an INVERTED index.
    if not conn.embedded_lite:
        for column, _ in columns.values():
            index_params.add_index(column, index_type="INVERTED")
    for c in schema.columns if columned else ():
        if c.index is not None:
            index_params.add_index(c.name, index_type=c.index)
    return fields, index_params, {SCHEMA_PROPERTY: json.dumps(schema_extras(schema))}


def create_all_or_nothing(conn: MilvusConnection, reads: Reads, collection: str, fields: Any, index_params: Any,
                          properties: dict[str, str] | None, partitions: Sequence[str] = ()) -> None:
    """Create ``collection``, its indexes and load it, or leave nothing behind: on any failure the
    half-made collection is dropped and the engine's error re-raised, mapped.

    The indexes are created without pymilvus's polling wait (>= 0.5 s per index, and Milvus Lite
    lacks the AllocTimestamp call it makes); a server builds them in the background.
    """
    client = conn.client
    try:
        with conn.errors(f"create collection {collection!r}"):
            client.create_collection(collection, schema=fields, consistency_level=reads.read_level,
                                     **({"properties": properties} if properties else {}))
            for partition in partitions:
                client.create_partition(collection, partition)
            client.create_index(collection, index_params, sync=False)
            client.load_collection(collection)
    except SmecError:
        try:
            if client.has_collection(collection):
                client.drop_collection(collection)
        except Exception:  # noqa: BLE001 - the original error is the one to report
            pass
        raise
    reads.loaded(collection)


def schema_extras(schema: CollectionSchema) -> dict[str, Any]:
    """What Milvus cannot report back itself, kept in the ``smec.schema`` collection property."""
    return {
        "distance": schema.distance,
        "payload_indexes": dict(schema.payload_indexes),
        "index": {"kind": schema.index.kind, "m": schema.index.m, "ef_construct": schema.index.ef_construct,
                  "ef_search": schema.index.ef_search},
        **({"layout": schema.layout.to_json()} if schema.layout is not None else {}),
        **({"columned": True, "absent_when_null": [c.name for c in schema.columns if c.absent_when_null]}
           if schema.primary is not None else {}),
    }


def read_fields(conn: MilvusConnection, collection: str) -> CollectionFields:
    """The fields of ``collection`` as the engine describes them (CollectionNotFoundError if absent):
    also its scalar indexes and named partitions."""
    client = conn.client
    DataType = pymilvus().DataType
    with conn.errors(f"describe collection {collection!r}", collection):
        if not client.has_collection(collection):
            raise CollectionNotFoundError(f"{conn.target}: collection {collection!r} does not exist")
        described = client.describe_collection(collection)
        metrics = {
            f["name"]: client.describe_index(collection, f["name"]).get("metric_type", "COSINE")
            for f in described["fields"] if f["type"] == DataType.FLOAT_VECTOR
        }
        vectors = {f["name"] for f in described["fields"] if "VECTOR" in getattr(f["type"], "name", "")}
        indexes = {}
        for index_name in client.list_indexes(collection):
            index = client.describe_index(collection, index_name)
            if index.get("field_name") not in vectors:
                indexes[index["field_name"]] = index["index_type"]
        partitions = tuple(p for p in client.list_partitions(collection) if p != DEFAULT_PARTITION)
    return fields_from_description(described, metrics, indexes, partitions)


def fields_from_description(described: Mapping[str, Any], metrics: Mapping[str, str],
                            indexes: Mapping[str, str] | None = None, partitions: Sequence[str] = ()) -> CollectionFields:
    """The collection's fields: names and key from Milvus, what Milvus cannot report from ``smec.schema``;
    ``indexes``: scalar field -> index type; ``partitions``: the named ones.

    A collection without ``smec.schema`` is foreign: any primary key (INT64 or VARCHAR, auto_id or
    not), its dense vector fields with their metrics, sparse vector fields, typed columns, dynamic
    field and partitions are read as they are.
    """
    DataType = pymilvus().DataType
    name = described["collection_name"]
    fields = described["fields"]
    primary = next(f for f in fields if f.get("is_primary"))
    dense = [f for f in fields if f["type"] == DataType.FLOAT_VECTOR]
    sparse = tuple(f["name"] for f in fields if f["type"] == DataType.SPARSE_FLOAT_VECTOR)
    other_vectors = [f["name"] for f in fields if f["type"] in (DataType.BINARY_VECTOR, DataType.FLOAT16_VECTOR,
                                                                DataType.BFLOAT16_VECTOR, DataType.INT8_VECTOR)]
    if not dense:
        raise ConfigError(f"collection {name!r} has no FLOAT_VECTOR field to compress")
    if other_vectors:
        raise ConfigError(f"collection {name!r} has vector fields of types smec-vdb does not carry: {other_vectors}")
    id_type = "str" if primary["type"] == DataType.VARCHAR else "int"
    properties = described.get("properties") or {}
    extras = json.loads(properties[SCHEMA_PROPERTY]) if SCHEMA_PROPERTY in properties else None
    own = {primary["name"], DYNAMIC_FIELD, *(f["name"] for f in dense), *sparse}
    if extras is None or extras.get("columned"):
        columns = columns_from_fields(fields, own, indexes or {})
        if extras is not None:  # what Milvus cannot report: which nulls stand for a key the payload lacks
            absent = set(extras.get("absent_when_null", ()))
            columns = tuple(replace(c, absent_when_null=c.name in absent) for c in columns)
        layout = dict(columns=columns, primary=primary_of(primary, bool(described.get("auto_id"))),
                      dynamic_field=bool(described.get("enable_dynamic_field")),
                      partitions=() if any(c.partition_key for c in columns) else tuple(partitions))
    if extras is None:
        resolutions = tuple(Resolution(f["name"], int(f["params"]["dim"]), DISTANCES.get(metrics[f["name"]], "cosine"))
                            for f in dense)
        schema = CollectionSchema(resolutions=resolutions, distance=resolutions[0].distance or "cosine",
                                  id_type=id_type, sparse=sparse, **layout)  # type: ignore[arg-type]
        return CollectionFields(schema, pk=primary["name"], foreign=True)
    index = extras.get("index", {})
    distance = extras.get("distance", "cosine")
    payload_indexes = dict(extras.get("payload_indexes", {}))
    field_names = {f["name"] for f in fields}
    typed_columns = all(column in field_names for column, _ in indexed_columns(payload_indexes).values())
    return CollectionFields(CollectionSchema(
        resolutions=tuple(Resolution(f["name"], int(f["params"]["dim"]),
                                     None if DISTANCES.get(metrics[f["name"]]) == distance else DISTANCES.get(metrics[f["name"]]))
                          for f in dense),
        distance=distance,
        id_type=id_type,  # type: ignore[arg-type]
        payload_indexes=payload_indexes,
        index=IndexParams(**index) if index else IndexParams(),
        layout=Layout.from_json(extras["layout"]) if extras.get("layout") else None,
        sparse=sparse,
        **(layout if extras.get("columned") else {}),  # type: ignore[arg-type]
    ), pk=primary["name"], columned=bool(extras.get("columned")), typed_columns=typed_columns)
