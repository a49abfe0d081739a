"""Stream source → encode → upsert in batches, checkpointing the source cursor after each one.

A batch carries each point's id, payload, other dense vectors and sparse vectors unchanged, plus
the new resolutions of its migrated vector. A batch written twice after a crash overwrites itself
(upsert by id), so a resumed copy is exactly-once.
"""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np

from smec_vdb.backend import Backend, Batch, Point
from smec_vdb.collection import SmecCollection
from smec_vdb.errors import InvalidVectorError
from smec_vdb.migrate.options import CHECKPOINT_KEY, MigrationEvent, MigrationInterrupted, MigrationOptions, ProgressCallback, StopCheck
from smec_vdb.migrate.plan import SourceInfo, Timer, bad_vector_rows, stack
from smec_vdb.retry import retrying


def write_points(target: Backend, col: SmecCollection, info: SourceInfo, points: Sequence[Point], x: np.ndarray,
                 timer: Timer | None = None) -> None:
    """Upsert ``points`` (whose migrated vectors are the rows of ``x``) with everything they carry."""
    t0 = time.perf_counter()
    vectors = col.encode(x)
    if timer:
        timer.add("encode", t0)
    for r in info.carried:
        vectors[r.name] = np.stack([np.asarray(p.vectors[r.name], dtype=np.float32) for p in points])
    sparse = {name: [p.sparse.get(name) for p in points] for name in info.schema.sparse}
    t0 = time.perf_counter()
    target.upsert(col.name, Batch(ids=[p.id for p in points], vectors=vectors,
                                  payloads=[p.payload for p in points], sparse=sparse or None))
    if timer:
        timer.add("write", t0)


def refuse_bad(points: Sequence[Point], bad: np.ndarray, opts: MigrationOptions) -> None:
    if len(bad) and opts.on_bad_vector == "fail":
        raise InvalidVectorError(
            f"source point {points[bad[0]].id!r} has a NaN/inf or all-zero vector "
            f"({len(bad)} in this batch); set on_bad_vector to skip to leave such points out"
        )


def copy(source: Backend, target: Backend, info: SourceInfo, col: SmecCollection, opts: MigrationOptions,
         checkpoint: dict, timer: Timer, progress: ProgressCallback | None, should_stop: StopCheck | None,
         *, key: str = CHECKPOINT_KEY, size: int | None = None) -> tuple[int, list]:
    """Copy from the checkpoint's cursor to the end; returns (points written in all runs, skipped ids).

    With ``size``, copy one range of the source: stop once ``size`` points from the range's start
    cursor were read, checkpointing under ``key`` (the distributed copy, :mod:`smec_vdb.migrate.distributed`).
    """
    source, target = retrying(source), retrying(target)  # reads and upserts by id are safe to repeat
    written, skipped = int(checkpoint["written"]), list(checkpoint["skipped_ids"])
    cursor = checkpoint["cursor"]
    if checkpoint.get("copied"):  # killed after the last batch: only verification is left
        return written, skipped
    if progress:
        progress(MigrationEvent("copy", written + len(skipped), info.count))
    while True:
        if should_stop and should_stop():
            raise MigrationInterrupted(
                f"interrupted after {written + len(skipped)} of {info.count} points; "
                f"run the same command again to resume"
            )
        limit = opts.batch_size if size is None else min(opts.batch_size, size - written - len(skipped))
        t0 = time.perf_counter()
        points, next_cursor = source.scroll(info.name, cursor=cursor, limit=limit, with_vectors=info.read_vectors)
        timer.add("read", t0)
        finished = next_cursor is None or (size is not None and written + len(skipped) + len(points) >= size)
        if points:
            x = stack(points, info.vector, info.width)
            bad = bad_vector_rows(x)
            refuse_bad(points, bad, opts)
            keep = np.setdiff1d(np.arange(len(points)), bad)
            skipped.extend(points[i].id for i in bad)
            if len(keep):
                write_points(target, col, info, [points[i] for i in keep], x[keep], timer)
                written += len(keep)
            checkpoint = {**checkpoint, "cursor": next_cursor, "written": written, "skipped_ids": skipped,
                          "copied": finished}
            target.set_metadata(col.name, key, checkpoint)
            if progress:
                progress(MigrationEvent("copy", written + len(skipped), info.count))
        if finished:
            if not checkpoint.get("copied"):  # the last page came back empty: mark the copy done
                checkpoint = {**checkpoint, "cursor": None, "copied": True}
                target.set_metadata(col.name, key, checkpoint)
            return written, skipped
        cursor = next_cursor
