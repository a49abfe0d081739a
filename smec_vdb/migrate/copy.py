"""Stream source → encode → upsert in batches, checkpointing the source cursor after each one.

A batch carries each point's id, payload, other dense vectors and sparse vectors unchanged, plus
the new resolutions of its migrated vector. A batch written twice after a crash overwrites itself
(upsert by id), so a resumed copy is exactly-once.
"""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np

from smec_vdb.backend import Backend, Point
from smec_vdb.collection import SmecCollection
from smec_vdb.migrate.options import CHECKPOINT_KEY, MigrationEvent, MigrationInterrupted, MigrationOptions, ProgressCallback, StopCheck
from smec_vdb.migrate.plan import SourceInfo, Timer, stack
from smec_vdb.migrate.points import skipped_rows, target_batch
from smec_vdb.retry import retrying


def write_points(target: Backend, col: SmecCollection, info: SourceInfo, points: Sequence[Point], x: np.ndarray,
                 timer: Timer | None = None) -> None:
    """Upsert ``points`` (whose migrated vectors are the rows of ``x``) with everything they carry."""
    t0 = time.perf_counter()
    has = np.asarray([info.vector in p.vectors for p in points], dtype=bool)
    vectors = col.encode(x[has])
    if timer:
        timer.add("encode", t0)
    t0 = time.perf_counter()
    target.upsert(col.name, target_batch(points, vectors, info, col))
    if timer:
        timer.add("write", t0)


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
            bad = skipped_rows(points, x, info, opts)
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
