"""Checks every adapter runs before touching an engine, so that invalid input writes nothing.

The Backend Protocol promises: every dense vector of the schema given with its width
(:class:`DimensionError`), finite values (:class:`InvalidVectorError`), ids of the schema's
``id_type``, one payload per id (any string keys: user payloads share no namespace with
smec-vdb's bookkeeping), and per sparse vector one entry (or None) per id. Duplicate ids inside one batch follow upsert semantics:
the *last* occurrence wins, identically on every engine (they are removed here, before writing).
A multivector is given per point as a (tokens, dim) matrix; a vector of a narrower datatype
(``uint8``, ``float16``, ``int8``) with values that type holds exactly; a point may lack a dense
vector (``Batch.absent``: its row is not checked), and the engine decides whether it can hold that.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Sequence

import numpy as np

from smec_vdb.backend import Batch, CollectionSchema, Filter, PointId, Resolution, SearchStage, SparseVector
from smec_vdb.errors import ConfigError, DataError, DimensionError, InvalidVectorError
from smec_vdb.filters import Condition
from smec_vdb.filters import parse as parse_filter

#: metadata keys smec-vdb keeps for itself
RESERVED_PREFIX = "_smec"


#: the values each narrower datatype holds exactly: (lowest, highest, integers only)
_DATATYPE_RANGES = {"uint8": (0, 255, True), "int8": (-128, 127, True), "float16": (-65504.0, 65504.0, False)}


@dataclass
class CheckedBatch:
    """A validated batch: unique ids (last occurrence kept), float32 (n, dim) matrices (a list of
    (tokens, dim) matrices per multivector), payload dicts, per sparse vector of the schema one entry
    (or None) per id, per dense vector the rows whose point lacks it, and one partition (or None) per id."""

    ids: list[PointId]
    vectors: dict[str, Any]
    payloads: list[dict[str, Any]]
    sparse: dict[str, list[SparseVector | None]]
    absent: dict[str, list[bool]] = field(default_factory=dict)
    partitions: list[str | None] | None = None

    def has(self, name: str, row: int) -> bool:
        """Whether point ``row`` has dense vector ``name``."""
        flags = self.absent.get(name)
        return flags is None or not flags[row]


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
    unknown = sorted((set(batch.vectors) | set(batch.absent or {})) - set(expected))
    if unknown:
        raise DimensionError(f"unknown vector(s) {unknown}; this collection has {list(expected)}")
    absent = _check_absent(batch, ids)
    vectors: dict[str, Any] = {}
    for r in schema.resolutions:
        if r.name not in batch.vectors:
            raise DimensionError(f"vector {r.name!r} is missing from the batch (expected ({n}, {r.dim}))")
        given = batch.vectors[r.name]
        present = [not f for f in absent.get(r.name, [False] * n)]
        vectors[r.name] = (_check_multivector(r, given, ids, present) if r.multivector
                           else _check_matrix(r, given, ids, present))
    payloads = [dict(p) for p in batch.payloads] if batch.payloads is not None else [{} for _ in ids]
    if len(payloads) != n:
        raise DataError(f"{len(payloads)} payloads for {n} ids")
    for point_id, payload in zip(ids, payloads):
        bad_keys = [k for k in payload if not isinstance(k, str)]
        if bad_keys:
            raise DataError(f"payload of id {point_id!r} has non-string keys {bad_keys}")
    sparse = _check_sparse(schema, batch, ids)
    partitions = None if batch.partitions is None else list(batch.partitions)
    if partitions is not None and len(partitions) != n:
        raise DataError(f"{len(partitions)} partitions for {n} ids")
    last = {point_id: row for row, point_id in enumerate(ids)}
    if len(last) != n:
        rows = sorted(last.values())
        ids = [ids[r] for r in rows]
        vectors = {name: [m[r] for r in rows] if isinstance(m, list) else m[rows] for name, m in vectors.items()}
        payloads = [payloads[r] for r in rows]
        sparse = {name: [entries[r] for r in rows] for name, entries in sparse.items()}
        absent = {name: [flags[r] for r in rows] for name, flags in absent.items()}
        partitions = None if partitions is None else [partitions[r] for r in rows]
    return CheckedBatch(ids=ids, vectors=vectors, payloads=payloads, sparse=sparse, absent=absent,
                        partitions=partitions)


def _check_absent(batch: Batch, ids: list[PointId]) -> dict[str, list[bool]]:
    """Per dense vector, the flags of the points that lack it (only vectors some point lacks)."""
    absent: dict[str, list[bool]] = {}
    for name, flags in (batch.absent or {}).items():
        flags = [bool(f) for f in flags]
        if len(flags) != len(ids):
            raise DataError(f"vector {name!r}: {len(flags)} absent flags for {len(ids)} ids")
        if any(flags):
            absent[name] = flags
    return absent


def _check_values(r: Resolution, matrix: np.ndarray, ids: list[PointId]) -> None:
    """InvalidVectorError naming the first row of ``matrix`` (one row per id, or one point's tokens with one
    id) that is not finite or holds values ``r.datatype`` cannot."""
    if not matrix.size:
        return
    rows = matrix.reshape(len(matrix), -1)
    bad = ~np.isfinite(rows).all(axis=1)
    if bad.any():
        raise InvalidVectorError(f"vector {r.name!r} of id {ids[min(int(np.argmax(bad)), len(ids) - 1)]!r} "
                                 "has NaN or infinite values")
    bounds = _DATATYPE_RANGES.get(r.datatype)
    if bounds is None:
        return
    lo, hi, integral = bounds
    bad = ((rows < lo) | (rows > hi) | ((rows != np.round(rows)) if integral else False)).any(axis=1)
    if bad.any():
        raise InvalidVectorError(
            f"vector {r.name!r} of id {ids[min(int(np.argmax(bad)), len(ids) - 1)]!r} has values a {r.datatype} "
            f"vector cannot hold (expected {'integers ' if integral else ''}within [{lo}, {hi}])")


def _check_matrix(r: Resolution, given: Any, ids: list[PointId], present: list[bool]) -> np.ndarray:
    matrix = np.asarray(given, dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape[1] != r.dim:
        raise DimensionError(f"vector {r.name!r}: expected width {r.dim}, found shape {matrix.shape}")
    if matrix.shape[0] != len(ids):
        raise DataError(f"vector {r.name!r} has {matrix.shape[0]} rows for {len(ids)} ids")
    if all(present):
        _check_values(r, matrix, ids)
    else:
        rows = np.flatnonzero(present)
        _check_values(r, matrix[rows], [ids[i] for i in rows])
    return matrix


def _check_multivector(r: Resolution, given: Any, ids: list[PointId], present: list[bool]) -> list[np.ndarray]:
    """One (tokens, dim) float32 matrix per point (an empty one where the point lacks the vector)."""
    entries = list(given)
    if len(entries) != len(ids):
        raise DataError(f"multivector {r.name!r} has {len(entries)} entries for {len(ids)} ids")
    checked = []
    for entry, point_id, has in zip(entries, ids, present):
        matrix = np.asarray(entry if has else np.empty((0, r.dim)), dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[1] != r.dim or (has and not len(matrix)):
            raise DimensionError(f"multivector {r.name!r} of id {point_id!r}: expected (tokens >= 1, {r.dim}), "
                                 f"found shape {matrix.shape}")
        if has:
            _check_values(r, matrix, [point_id])
        checked.append(matrix)
    return checked


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
        for knob, value in (("limit", stage.limit), ("ef", stage.ef)):
            if knob == "ef" and value is None:
                continue  # the schema's ef_search
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"stage on {stage.name!r}: {knob} must be an integer >= 1, found {value!r}")
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
