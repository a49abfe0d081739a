"""A Ray Data :class:`~ray.data.Datasink` that writes encoded blocks into a multi-resolution collection.

Each write task opens the target once per worker process and upserts its blocks (by id, so a block
written twice by a retried task overwrites itself), then, in a migration, tells the copy's
:class:`~smec_vdb.migrate.ray.progress.RangeProgress` which rows of which source page are in (the
per-task checkpoints). :meth:`SmecSink.on_write_complete` runs on the driver once every task is
done: it folds the tasks' counts, and the ranges' checkpoints through the actor.

Example::

    ds.write_datasink(SmecSink(connection, "docs_smec", ["full", "d128"]))
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np
from ray.data.block import Block, BlockAccessor
from ray.data.datasource.datasink import Datasink, WriteResult

from smec_vdb.migrate.ray.columns import CURSOR, PAGE_ROWS, POINT, RANGE, ROW, SEQ, USABLE, migrated_batch, to_batch
from smec_vdb.migrate.ray.connections import opened

if TYPE_CHECKING:
    from smec_vdb.migrate.distributed import Connection
    from smec_vdb.migrate.plan import SourceInfo


class SmecSink(Datasink[dict]):
    """Writes ``names`` (stored resolutions) into ``collection`` of ``target`` with what each point carries:
    in a migration (``info``, the source; ``partitioned``: the target keeps partitions) the source
    points of the blocks, written as :func:`~smec_vdb.migrate.points.target_batch` says; otherwise
    ``carried`` dense and ``sparse`` vectors and payloads (the JSON column ``payload``, or ``payload_columns``)."""

    def __init__(self, target: Connection, collection: str, names: Sequence[str], *, carried: Sequence[str] = (),
                 sparse: Sequence[str] = (), payload_columns: Sequence[str] | None = None, progress: Any = None,
                 rows_per_write: int | None = None, info: SourceInfo | None = None, partitioned: bool = False) -> None:
        self.target, self.collection = target, collection
        self.names, self.carried, self.sparse = list(names), list(carried), list(sparse)
        self.payload_columns = None if payload_columns is None else list(payload_columns)
        self.progress, self.rows_per_write = progress, rows_per_write
        self.info, self.partitioned = info, partitioned
        self.result: dict[str, int] = {"written": 0, "skipped": 0}
        #: after the write, in a migration: each range's checkpoint record (see RangeProgress.finish)
        self.ranges: dict[int, dict[str, Any]] = {}

    def get_name(self) -> str:
        return "SMEC"

    @property
    def min_rows_per_write(self) -> int | None:
        """Rows a write task gets at least (blocks bundled): fewer, larger tasks; the copy's pages stay whole."""
        return self.rows_per_write


    def write(self, blocks: Iterable[Block], ctx: Any) -> dict:
        import ray

        backend = opened(self.target)
        written = skipped = 0
        marks: list[Any] = []
        for block in blocks:
            batch = BlockAccessor.for_block(block).to_batch_format("numpy")
            if not len(batch[next(iter(batch))]):
                continue
            if POINT in batch and self.info is not None:
                upsert = migrated_batch(batch, self.names, self.info, self.partitioned)
            else:
                upsert = to_batch(batch, self.names, self.carried, self.sparse, self.payload_columns)
            if upsert is not None:
                backend.upsert(self.collection, upsert)
            usable = np.asarray(batch[USABLE], dtype=bool) if USABLE in batch else None
            n_usable = len(upsert.ids) if upsert is not None else 0
            written += n_usable
            skipped += 0 if usable is None else int((~usable).sum())
            if self.progress is not None and RANGE in batch:
                marks += self._report(batch, usable)
        if marks:  # the actor runs one caller's calls in order: once the last is done, all are
            ray.get(marks[-1])
        return {"written": written, "skipped": skipped}

    def _report(self, batch: dict[str, np.ndarray], usable: np.ndarray | None) -> list[Any]:
        """Tell the progress actor which rows of which pages this block held."""
        keys = np.stack([batch[RANGE], batch[SEQ]], axis=1)
        marks = []
        for index, seq in np.unique(keys, axis=0):
            rows = np.flatnonzero((batch[RANGE] == index) & (batch[SEQ] == seq))
            good = int(usable[rows].sum()) if usable is not None else len(rows)
            marks.append(self.progress.written.remote(int(index), int(seq), int(batch[ROW][rows].min()), len(rows),
                                         int(batch[PAGE_ROWS][rows[0]]), json.loads(batch[CURSOR][rows[0]]),
                                         good, len(rows) - good))
        return marks

    def on_write_complete(self, write_result: WriteResult[dict]) -> None:
        """On the driver: the tasks' counts summed, and in a migration every range's checkpoint stored
        and kept in :attr:`ranges`."""
        import ray

        for part in write_result.write_returns:
            for key in self.result:
                self.result[key] += int(part.get(key, 0))
        if self.progress is not None:
            self.ranges = ray.get(self.progress.finish.remote())
