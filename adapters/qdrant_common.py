"""What both Qdrant adapters (qdrant-client and qdrant-edge) share: id codec, payloads, vectors, filters, schema JSON.

Qdrant point ids are unsigned integers or UUIDs, both allowed in one collection. Any other string
id is stored under ``uuid5(SMEC_ID_NAMESPACE, id)`` with the original kept in the payload key
``_smec_id``. That mapping verifies itself: a payload's ``_smec_id`` is read as the id only when
the point's UUID *is* ``uuid5`` of it, so a user payload key ``_smec_id`` (or any ``_smec*`` key)
on an integer- or UUID-id point is an ordinary payload key, kept and returned unchanged.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, replace
from typing import Any, Mapping, Sequence

import numpy as np

from smec_vdb.adapters.validation import CheckedBatch, check_batch
from smec_vdb.backend import UNNAMED, Batch, CollectionSchema, IndexParams, PayloadLimits, PointId, Resolution, SparseVector
from smec_vdb.errors import ConfigError, DataError
from smec_vdb.filters import And, AnyOf, Condition, Or, Range
from smec_vdb.layout import Layout

SMEC_ID_KEY = "_smec_id"
SMEC_ID_NAMESPACE = uuid.UUID("0f1d1c52-6a5e-4c1e-9a55-5d0c2b6e3f10")


def encode_id(point_id: PointId) -> tuple[int | str, str | None]:
    """(Qdrant id, original string to keep in the payload or None)."""
    if isinstance(point_id, int):
        return point_id, None
    try:
        if str(uuid.UUID(point_id)) == point_id:
            return point_id, None
    except ValueError:
        pass
    return str(uuid.uuid5(SMEC_ID_NAMESPACE, point_id)), point_id


def _mapped_original(qdrant_id: Any, payload: Mapping[str, Any] | None) -> str | None:
    """The original string id kept in ``payload``, if this point's UUID is derived from it."""
    original = (payload or {}).get(SMEC_ID_KEY)
    if not isinstance(original, str) or isinstance(qdrant_id, int):
        return None
    return original if str(uuid.uuid5(SMEC_ID_NAMESPACE, original)) == str(qdrant_id) else None


def decode_id(qdrant_id: Any, payload: Mapping[str, Any] | None) -> PointId:
    """The caller's id of a stored point (the mapped original string when there is one)."""
    original = _mapped_original(qdrant_id, payload)
    if original is not None:
        return original
    if isinstance(qdrant_id, uuid.UUID):
        return str(qdrant_id)
    return qdrant_id


def stored_payload(payload: Mapping[str, Any], point_id: PointId, original_id: str | None) -> dict[str, Any]:
    """The payload to store: the caller's, plus the original string id when it had to be mapped."""
    if original_id is None:
        return dict(payload)
    if SMEC_ID_KEY in payload:
        raise DataError(
            f"payload of id {point_id!r} has the key {SMEC_ID_KEY!r}, which a Qdrant collection uses to keep "
            "string ids that are not UUIDs: rename that payload key, or use integer or UUID ids"
        )
    return {**payload, SMEC_ID_KEY: original_id}


def public_payload(qdrant_id: Any, payload: Mapping[str, Any] | None) -> dict[str, Any]:
    """The caller's payload: without the mapped original id, every other key as stored."""
    out = dict(payload or {})
    if _mapped_original(qdrant_id, out) is not None:
        out.pop(SMEC_ID_KEY)
    return out


def split_vectors(raw: Any) -> tuple[dict[str, np.ndarray], dict[str, SparseVector]]:
    """A record's vectors (a list for a lone unnamed vector, else a dict) as (dense, sparse)."""
    if raw is None:
        return {}, {}
    if not isinstance(raw, Mapping):
        return {UNNAMED: np.asarray(raw, dtype=np.float32)}, {}
    dense, sparse = {}, {}
    for name, v in raw.items():
        if hasattr(v, "indices"):
            sparse[name] = SparseVector.of(v.indices, v.values)
        else:  # a multivector comes back as a list of rows: a (tokens, dim) matrix
            dense[name] = np.asarray(v, dtype=np.float32)
    return dense, sparse


def check_points(schema: CollectionSchema, batch: Batch, limits: PayloadLimits) -> CheckedBatch:
    """What upserting ``batch`` would refuse (ids, widths, values, a payload key that clashes with the id map,
    a payload beyond the engine's ``limits``); returns the checked batch."""
    checked = check_batch(schema, batch)
    if any(p is not None for p in checked.partitions or ()):
        raise DataError("Qdrant has no partitions: write the points without one (a partition is a Milvus feature)")
    for point_id, payload in zip(checked.ids, checked.payloads):
        stored_payload(payload, point_id, encode_id(point_id)[1])
        problem = limits.problem(payload)
        if problem is not None:
            raise DataError(f"payload of id {point_id!r}: {problem}; Qdrant cannot store it as it is")
    return checked


def point_vectors(checked: CheckedBatch, row: int, sparse_vector: Any) -> dict[str, Any]:
    """Point ``row``'s vectors as Qdrant takes them: each dense one it has (a multivector as a list of
    rows), each sparse one it has (``sparse_vector(indices=, values=)``: the client's or Edge's class)."""
    vectors: dict[str, Any] = {name: values[row].tolist() for name, values in checked.vectors.items()
                               if checked.has(name, row)}
    for name, entries in checked.sparse.items():
        if (entry := entries[row]) is not None:
            vectors[name] = sparse_vector(indices=list(entry.indices), values=list(entry.values))
    return vectors


def mapping_notes(schema: CollectionSchema, engine: str, *, payload_indexes: bool, sharding: bool) -> dict[str, str]:
    """How a Qdrant engine holds ``schema`` where it differs from as given (see Backend.mapping_notes)."""
    notes = {}
    if schema.id_type in ("str", "any"):
        notes["ids"] = (f"string ids that are not UUIDs are stored under uuid5 of the id, the original in payload "
                        f"key {SMEC_ID_KEY!r} (read back as the id)")
    if schema.payload_indexes and not payload_indexes:
        notes["payload_indexes"] = f"recorded, not built: {engine} has no payload indexes (filters scan)"
    if schema.sharding and not sharding:
        notes["sharding"] = f"not kept: {engine} holds one shard"
    if schema.partitions:
        notes["partitions"] = "not kept: Qdrant has no partitions (each point keeps its payload, not its partition)"
    return notes


def held(schema: CollectionSchema) -> CollectionSchema:
    """``schema`` as a Qdrant collection holds it: no partitions, typed columns or named key (a payload is
    schemaless, a point id has no name); :func:`mapping_notes` says so before it is created."""
    return replace(schema, partitions=(), columns=(), primary=None, dynamic_field=True)


def check_creatable(schema: CollectionSchema, engine: str) -> None:
    """smec-vdb creates named vectors only: the unnamed one exists in foreign collections it reads."""
    if any(r.name == UNNAMED for r in schema.resolutions):
        raise ConfigError(f"{engine}: cannot create a collection with an unnamed vector: name every vector")


def cursor_id(offset: Any) -> int | str | None:
    """A scroll offset as a JSON-serialisable cursor (int or UUID string)."""
    return str(offset) if isinstance(offset, uuid.UUID) else offset


def build_filter(condition: Condition, models: Any, range_cls: Any, *, match_booleans: bool = True) -> Any:
    """A Qdrant ``Filter`` (``models``: qdrant_client.models or qdrant_edge) for a parsed filter.

    Implements :mod:`smec_vdb.filters` natively: a number equality is a closed range [v, v] (so
    ``1`` matches ``1.0`` and never ``true``), strings and booleans are ``MatchValue``, any-of is
    ``should``, ``$not`` is ``must_not``; a dotted key is Qdrant's nested path, and Qdrant matches
    an array element by itself. ``match_booleans=False`` (qdrant-edge-py 0.9, which reads a
    boolean match as the integer 1) makes a boolean value a ConfigError instead of wrong hits.
    """

    def equals(key: str, value: Any) -> Any:
        if isinstance(value, bool):
            if not match_booleans:
                raise ConfigError(f"filter {key!r}: qdrant-edge cannot match boolean values (it reads them as 1/0); "
                                  "store them as strings or use another engine")
            return models.FieldCondition(key=key, match=models.MatchValue(value=value))
        if isinstance(value, str):
            return models.FieldCondition(key=key, match=models.MatchValue(value=value))
        return models.FieldCondition(key=key, range=range_cls(gte=float(value), lte=float(value)))

    def node(c: Condition) -> Any:
        if isinstance(c, AnyOf):
            key = ".".join(c.path)
            conditions = [equals(key, v) for v in c.values]
            return conditions[0] if len(conditions) == 1 else models.Filter(should=conditions)
        if isinstance(c, Range):
            key = ".".join(c.path)
            return models.FieldCondition(key=key, range=range_cls(gt=c.gt, gte=c.gte, lt=c.lt, lte=c.lte))
        if isinstance(c, And):
            return models.Filter(must=[node(p) for p in c.parts])
        if isinstance(c, Or):
            return models.Filter(should=[node(p) for p in c.parts])
        return models.Filter(must_not=[node(c.part)])

    top = node(condition)
    return top if isinstance(top, models.Filter) else models.Filter(must=[top])


def _resolution_to_json(r: Resolution) -> list[Any]:
    """``[name, dim]``, then the distance if any, then the storage if not plain (older files have the first two or three)."""
    storage = {} if r.plain else {"datatype": r.datatype, "multivector": r.multivector}
    return [r.name, r.dim] + ([r.distance] if r.distance or storage else []) + ([storage] if storage else [])


def _resolution_from_json(item: Sequence[Any]) -> Resolution:
    storage = item[3] if len(item) > 3 else {}
    return Resolution(item[0], int(item[1]), item[2] if len(item) > 2 else None, **storage)


def schema_to_json(schema: CollectionSchema) -> dict[str, Any]:
    return {
        "resolutions": [_resolution_to_json(r) for r in schema.resolutions],
        **({"sharding": dict(schema.sharding)} if schema.sharding else {}),
        "sparse": list(schema.sparse),
        "distance": schema.distance,
        "id_type": schema.id_type,
        "payload_indexes": dict(schema.payload_indexes),
        "index": asdict(schema.index),
        **({"layout": schema.layout.to_json()} if schema.layout is not None else {}),
    }


def schema_from_json(data: Mapping[str, Any]) -> CollectionSchema:
    return CollectionSchema(
        resolutions=tuple(_resolution_from_json(r) for r in data["resolutions"]),
        sharding=dict(data.get("sharding", {})),
        sparse=tuple(data.get("sparse", ())),
        distance=data["distance"],
        id_type=data["id_type"],
        payload_indexes=dict(data.get("payload_indexes", {})),
        index=IndexParams(**data.get("index", {})),
        layout=Layout.from_json(data["layout"]) if data.get("layout") else None,
    )
