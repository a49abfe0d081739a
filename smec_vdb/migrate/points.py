"""What each source point becomes in the target: left out (and why), or its row of a :class:`Batch`.

Copy, re-sync and verification all ask these two functions, so they agree on which points the
target holds and how: a point with a NaN/inf or all-zero migrated vector, or without one where the
target stores every vector on every point, or with a payload beyond the target's limits (``skip``
options) is left out; every other point keeps its id, payload, partition, carried dense vectors
(multivectors as (tokens, dim) matrices) and sparse vectors, and gets the new resolutions of its
migrated vector, or none when it has no migrated vector (a hybrid collection's sparse-only point,
on a target that keeps points without some vectors).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from smec_vdb.backend import Batch, Point
from smec_vdb.errors import InvalidVectorError
from smec_vdb.migrate.options import MigrationOptions
from smec_vdb.migrate.plan import SourceInfo, bad_vector_rows, without_vector


def skipped_rows(points: Sequence[Point], x: np.ndarray, info: SourceInfo, opts: MigrationOptions | None) -> np.ndarray:
    """Indices of ``points`` (their migrated vectors the rows of ``x``) the target does not get: a NaN/inf
    or all-zero vector, no migrated vector where the target cannot hold a point without it, a payload
    beyond ``info.payload_limits``. With ``opts``, raise for the first one opts say to fail on."""
    lacking = set(without_vector(points, info.vector).tolist()) if info.partial else set()
    bad_vectors = [int(i) for i in bad_vector_rows(x) if int(i) not in lacking]
    if bad_vectors and opts is not None and opts.on_bad_vector == "fail":
        first = points[bad_vectors[0]]
        problem = (f"no {info.vector or '(unnamed)'!r} vector (the target stores it on every point)"
                   if info.vector not in first.vectors else "a NaN/inf or all-zero vector")
        raise InvalidVectorError(f"source point {first.id!r} has {problem} ({len(bad_vectors)} in this batch); "
                                 "set on_bad_vector to skip to leave such points out")
    bad_payloads: list[int] = []
    if info.payload_limits is not None:
        bad_payloads = [i for i, p in enumerate(points) if info.payload_limits.problem(p.payload) is not None]
    return np.asarray(sorted({*bad_vectors, *bad_payloads}), dtype=np.int64)


def target_batch(points: Sequence[Point], encoded: Mapping[str, np.ndarray], info: SourceInfo,
                 partitioned: bool) -> Batch:
    """``points`` as the target stores them; ``encoded``: each resolution's rows for the points that have
    the migrated vector, in order; ``partitioned``: the target keeps partitions (its schema names some)."""
    n = len(points)
    has = np.asarray([info.vector in p.vectors for p in points], dtype=bool)
    vectors: dict[str, object] = {}
    absent: dict[str, list[bool]] = {}
    for name, rows in encoded.items():
        matrix = np.zeros((n, rows.shape[1]), dtype=np.float32)
        matrix[has] = rows
        vectors[name] = matrix
        if not has.all():
            absent[name] = (~has).tolist()
    for r in info.carried:
        lacking = [r.name not in p.vectors for p in points]
        empty = np.zeros((0, r.dim) if r.multivector else r.dim, dtype=np.float32)
        values = [np.asarray(p.vectors.get(r.name, empty), dtype=np.float32) for p in points]
        vectors[r.name] = values if r.multivector else np.stack(values)
        if any(lacking):
            absent[r.name] = lacking
    partitions = [p.partition for p in points] if partitioned else None
    return Batch(ids=[p.id for p in points], vectors=vectors, payloads=[p.payload for p in points],
                 sparse={name: [p.sparse.get(name) for p in points] for name in info.sparse} or None,
                 absent=absent or None, partitions=partitions)
