"""Checks every adapter runs before touching an engine, so that invalid input writes nothing.

The Backend Protocol promises: every dense vector of the schema given with its width
(:class:`DimensionError`), finite values (:class:`InvalidVectorError`), ids of the schema's
``id_type``, one payload per id (any string keys: user payloads share no namespace with
smec-vdb's bookkeeping), and per sparse vector one entry (or None) per id. Duplicate ids inside one batch follow upsert semantics:
the *last* occurrence wins, identically on every engine (they are removed here, before writing).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping, Sequence

import numpy as np

from smec_vdb.backend import Batch, CollectionSchema, Filter, PointId, SearchStage, SparseVector
from smec_vdb.errors import ConfigError, DataError, DimensionError, InvalidVectorError
from smec_vdb.filters import Condition
from smec_vdb.filters import parse as parse_filter

#: metadata keys smec-vdb keeps for itself
RESERVED_PREFIX = "_smec"


@dataclass
class CheckedBatch:
    """A validated batch: unique ids (last occurrence kept), float32 (n, dim) matrices, payload dicts,
    and per sparse vector of the schema one entry (or None) per id."""

    ids: list[PointId]
    vectors: dict[str, np.ndarray]
    payloads: list[dict[str, Any]]
    sparse: dict[str, list[SparseVector | None]]


def check_id(schema: CollectionSchema, point_id: Any) -> PointId:
    """The id if it fits ``schema.id_type`` (non-negative int, non-empty str, or either), else DataError."""
    if schema.id_type == "any":
        if isinstance(point_id, (int, np.integer)) and not isinstance(point_id, bool) and point_id >= 0:
            return int(point_id)
        if isinstance(point_id, str) and point_id:
            return point_id
        raise DataError(f"this collection has non-negative integer or non-empty string ids, found {point_id!r}")
    if schema.id_type == "int":
        if isinstance(point_id, (int, np.integer)) and not isinstance(point_id, bool) and point_id >= 0:
            return int(point_id)
        raise DataError(f"this collection has integer ids (non-negative), found {point_id!r}")
    if isinstance(point_id, str) and point_id:
        return point_id
    raise DataError(f"this collection has string ids (non-empty), found {point_id!r}")


def check_batch(schema: CollectionSchema, batch: Batch) -> CheckedBatch:
    """Validate ``batch`` against ``schema``; raise before anything is written."""
    ids = [check_id(schema, i) for i in batch.ids]
    n = len(ids)
    expected = {r.name: r.dim for r in schema.resolutions}
    unknown = sorted(set(batch.vectors) - set(expected))
    if unknown:
        raise DimensionError(f"unknown vector(s) {unknown}; this collection has {list(expected)}")
    vectors: dict[str, np.ndarray] = {}
    for name, dim in expected.items():
        if name not in batch.vectors:
            raise DimensionError(f"vector {name!r} is missing from the batch (expected ({n}, {dim}))")
        matrix = np.asarray(batch.vectors[name], dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[1] != dim:
            raise DimensionError(f"vector {name!r}: expected width {dim}, found shape {matrix.shape}")
        if matrix.shape[0] != n:
            raise DataError(f"vector {name!r} has {matrix.shape[0]} rows for {n} ids")
        bad = ~np.isfinite(matrix).all(axis=1)
        if bad.any():
            first = int(np.argmax(bad))
            raise InvalidVectorError(f"vector {name!r} of id {ids[first]!r} has NaN or infinite values")
        vectors[name] = matrix
    payloads = [dict(p) for p in batch.payloads] if batch.payloads is not None else [{} for _ in ids]
    if len(payloads) != n:
        raise DataError(f"{len(payloads)} payloads for {n} ids")
    for point_id, payload in zip(ids, payloads):
        bad_keys = [k for k in payload if not isinstance(k, str)]
        if bad_keys:
            raise DataError(f"payload of id {point_id!r} has non-string keys {bad_keys}")
    sparse = _check_sparse(schema, batch, ids)
    last = {point_id: row for row, point_id in enumerate(ids)}
    if len(last) != n:
        rows = sorted(last.values())
        ids = [ids[r] for r in rows]
        vectors = {name: m[rows] for name, m in vectors.items()}
        payloads = [payloads[r] for r in rows]
        sparse = {name: [entries[r] for r in rows] for name, entries in sparse.items()}
    return CheckedBatch(ids=ids, vectors=vectors, payloads=payloads, sparse=sparse)


def _check_sparse(schema: CollectionSchema, batch: Batch, ids: list[PointId]) -> dict[str, list[SparseVector | None]]:
    given = dict(batch.sparse or {})
    unknown = sorted(set(given) - set(schema.sparse))
    if unknown:
        raise DimensionError(f"unknown sparse vector(s) {unknown}; this collection has {list(schema.sparse)}")
    checked: dict[str, list[SparseVector | None]] = {}
    for name in schema.sparse:
        entries = list(given.get(name) or [None] * len(ids))
        if len(entries) != len(ids):
            raise DataError(f"sparse vector {name!r} has {len(entries)} entries for {len(ids)} ids")
        for point_id, entry in zip(ids, entries):
            if entry is not None and (not isinstance(entry, SparseVector) or len(entry.indices) != len(entry.values)
                                      or not np.isfinite(entry.values).all()):
                raise InvalidVectorError(f"sparse vector {name!r} of id {point_id!r} is malformed or not finite")
        checked[name] = entries
    return checked


_FLOAT32 = np.dtype(np.float32)


def check_query(schema: CollectionSchema, name: str, vector: Any) -> np.ndarray:
    """The query as a float32 1-D array of the width of resolution ``name``."""
    dim = schema.resolution(name).dim
    query = vector if type(vector) is np.ndarray and vector.dtype is _FLOAT32 and vector.ndim == 1 else \
        np.asarray(vector, dtype=np.float32).reshape(-1)
    if query.shape[0] != dim:
        raise DimensionError(f"query on vector {name!r}: expected width {dim}, found {query.shape[0]}")
    if not np.isfinite(query).all():
        raise InvalidVectorError(f"query on vector {name!r} has NaN or infinite values")
    return query


def check_queries(schema: CollectionSchema, name: str, vectors: Any) -> np.ndarray:
    """Several queries as a float32 (n, dim) matrix for resolution ``name`` (n >= 1), finite."""
    dim = schema.resolution(name).dim
    queries = np.asarray(vectors, dtype=np.float32)
    if queries.ndim != 2 or queries.shape[1] != dim or not len(queries):
        raise DimensionError(f"queries on vector {name!r}: expected an (n, {dim}) matrix, found shape {queries.shape}")
    if not np.isfinite(queries).all():
        raise InvalidVectorError(f"queries on vector {name!r} hold NaN or infinite values")
    return queries


def check_stages(schema: CollectionSchema, stages: Sequence[SearchStage], *, batch: bool = False) -> list[SearchStage]:
    """Stages with validated float32 queries; at least one, each with ``limit >= 1``. ``batch``: each
    stage's vector is an (n, dim) matrix of n queries, n the same for every stage."""
    if not stages:
        raise ConfigError("search_stages needs at least one stage")
    checked = []
    for stage in stages:
        if stage.limit < 1:
            raise ConfigError(f"stage on {stage.name!r}: limit must be >= 1, found {stage.limit}")
        if stage.ef is not None and stage.ef < 1:
            raise ConfigError(f"stage on {stage.name!r}: ef must be >= 1, found {stage.ef}")
        if stage.oversampling is not None and not 1.0 <= stage.oversampling <= 100.0:
            raise ConfigError(f"stage on {stage.name!r}: oversampling must be within [1, 100], found {stage.oversampling}")
        check = check_queries if batch else check_query
        vector = check(schema, stage.name, stage.vector)
        checked.append(stage if vector is stage.vector else replace(stage, vector=vector))
    if batch and len({len(stage.vector) for stage in checked}) != 1:
        raise DimensionError(f"every stage needs one query per row, found {[len(s.vector) for s in checked]} rows")
    return checked


def check_limit(limit: int) -> int:
    if limit < 1:
        raise ConfigError(f"limit must be >= 1, found {limit}")
    return limit


def check_filter(filter: Filter | None) -> Condition | None:
    """The filter parsed by :func:`smec_vdb.filters.parse` (ConfigError when malformed), None for none."""
    return parse_filter(filter)


def check_metadata_key(key: str) -> str:
    if not isinstance(key, str) or not key or key.startswith(RESERVED_PREFIX):
        raise ConfigError(f"metadata key must be a non-empty string not starting with {RESERVED_PREFIX!r}, found {key!r}")
    return key


def check_metadata_value(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if value is not None and not isinstance(value, Mapping):
        raise ConfigError(f"metadata value must be a JSON object (mapping) or None, found {type(value).__name__}")
    return None if value is None else dict(value)
