"""Stream source → encode → upsert, overlapped, checkpointing the source cursor at a bounded cadence.

A reader thread scrolls the source page by page in the engine's own order, the calling thread
encodes, a writer thread upserts (:func:`smec_vdb.migrate.pipeline.overlap`), so reading, encoding
and writing run at the same time. What the target gets is :mod:`smec_vdb.migrate.points`'s answer:
the points it leaves out (counted as skipped), and each kept point's id, payload, partition, carried
dense and sparse vectors unchanged plus the new resolutions of its migrated vector. The checkpoint
(the cursor after the last page written, points written and skipped) is written by
:class:`~smec_vdb.migrate.checkpoint.CheckpointWriter` at its cadence, and always when the copy
stops, fails or ends. A page written twice after a crash overwrites itself (upsert by id), so a
resumed copy is exactly-once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np

from smec_vdb.backend import Backend, Batch, Point
from smec_vdb.collection import SmecCollection
from smec_vdb.migrate.checkpoint import CheckpointWriter, Progress
from smec_vdb.migrate.options import CHECKPOINT_KEY, MigrationEvent, MigrationInterrupted, MigrationOptions, ProgressCallback, StopCheck
from smec_vdb.migrate.pipeline import overlap
from smec_vdb.migrate.plan import SourceInfo, Timer, stack
from smec_vdb.migrate.points import skipped_rows, target_batch
from smec_vdb.retry import retrying


def encoded_batch(col: SmecCollection, info: SourceInfo, points: Sequence[Point], x: np.ndarray,
                  timer: Timer | None = None) -> Batch:
    """The batch that writes ``points`` (whose migrated vectors are the rows of ``x``) with everything they carry."""
    t0 = time.perf_counter()
    has = np.asarray([info.vector in p.vectors for p in points], dtype=bool)
    vectors = col.encode(x[has])
    if timer:
        timer.add("encode", t0)
    return target_batch(points, vectors, info, bool(col.schema.partitions))


def write_points(target: Backend, col: SmecCollection, info: SourceInfo, points: Sequence[Point], x: np.ndarray,
                 timer: Timer | None = None) -> None:
    """Upsert ``points`` (whose migrated vectors are the rows of ``x``) with everything they carry."""
    batch = encoded_batch(col, info, points, x, timer)
    t0 = time.perf_counter()
    target.upsert(col.name, batch)
    if timer:
        timer.add("write", t0)


@dataclass
class _Page:
    """One page read from the source: its usable points and their vectors, how many were skipped,
    and the source cursor after it (``last``: the final page)."""

    points: list[Point]
    x: np.ndarray
    skipped: int
    cursor: Any
    last: bool
    batch: Batch | None = None


def copy(source: Backend, target: Backend, info: SourceInfo, col: SmecCollection, opts: MigrationOptions,
         checkpoint: dict, timer: Timer, progress: ProgressCallback | None, should_stop: StopCheck | None,
         *, depth: int = 2) -> tuple[int, int]:
    """Copy from the checkpoint's cursor to the end; returns (points written, points skipped) over all runs.

    ``depth``: pages in flight between the reader, the encoder and the writer (0: one thread, no overlap).
    """
    source, target = retrying(source), retrying(target)  # reads and upserts by id are safe to repeat
    saver = CheckpointWriter(target, col.name, CHECKPOINT_KEY, Progress.from_record(checkpoint))
    if saver.progress.copied:  # killed after the last page: only verification is left
        return saver.progress.written, saver.progress.skipped
    if progress:
        progress(MigrationEvent("copy", saver.progress.done, info.count))
    stopped: list[bool] = []

    def pages() -> Iterator[_Page]:  # the reader thread
        cursor = saver.progress.cursor
        while True:
            if should_stop and should_stop():
                stopped.append(True)
                return
            t0 = time.perf_counter()
            points, cursor = source.scroll(info.name, cursor=cursor, limit=opts.batch_size, with_vectors=info.read_vectors)
            x = stack(points, info.vector, info.width)
            bad = skipped_rows(points, x, info, opts)
            keep = np.setdiff1d(np.arange(len(points)), bad)
            timer.add("read", t0)
            yield _Page([points[i] for i in keep], x[keep], len(bad), cursor, cursor is None)
            if cursor is None:
                return

    def encode(page: _Page) -> _Page:  # this thread
        if page.points:
            page.batch = encoded_batch(col, info, page.points, page.x, timer)
        return page

    def write(page: _Page) -> None:  # the writer thread
        if page.batch is not None:
            t0 = time.perf_counter()
            target.upsert(col.name, page.batch)
            timer.add("write", t0)
        t0 = time.perf_counter()
        saver.advance(cursor=page.cursor, written=len(page.points), skipped=page.skipped, finished=page.last)
        timer.add("checkpoint", t0)
        if progress:
            progress(MigrationEvent("copy", saver.progress.done, info.count))

    t0 = time.perf_counter()
    try:
        overlap(pages(), encode, write, depth)
    except BaseException:
        try:
            saver.save()  # what was written before the failure
        except Exception:  # noqa: BLE001 - the copy's own error is the one to report
            pass
        raise
    finally:
        timer.add("copy", t0)
    saver.save()
    if stopped and not saver.progress.copied:
        raise MigrationInterrupted(f"interrupted after {saver.progress.done} of {info.count} points; "
                                   "run the same command again to resume")
    return saver.progress.written, saver.progress.skipped
