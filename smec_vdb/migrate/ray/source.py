"""A Ray Data :class:`~ray.data.Datasource` over a collection's key ranges, read in parallel.

One read task per range (:mod:`smec_vdb.migrate.ranges`: cut by the engine's own id order, no pass
over the ids on the driver for integer and UUID ids). A task opens the source once per worker
process, reads its range page by page in the engine's scroll order (from the range's checkpoint
cursor when it resumes) and yields one block per page (:mod:`~smec_vdb.migrate.ray.columns`),
tagged with the page's place so that the sink can checkpoint the range. The points the target does
not get (:func:`smec_vdb.migrate.points.skipped_rows`, as in the single-process copy) are kept as
rows flagged ``_usable`` False (so a page is never empty) or, with ``opts.on_bad_vector`` "fail",
refused with :class:`~smec_vdb.errors.InvalidVectorError` before the page goes downstream.

Example::

    ds = ray.data.read_datasource(SmecSource(connection, info, {0: KeyRange(None, 5000), 1: KeyRange(5000, None)}))
"""

from __future__ import annotations

import functools
import json
from typing import TYPE_CHECKING, Any, Iterator, Mapping

import numpy as np
from ray.data.block import BlockAccessor, BlockMetadata
from ray.data.datasource import Datasource, ReadTask

from smec_vdb.migrate.plan import SourceInfo, stack
from smec_vdb.migrate.points import skipped_rows
from smec_vdb.migrate.ranges import KeyRange, read_pages
from smec_vdb.migrate.ray.columns import CURSOR, PAGE_ROWS, RANGE, ROW, SEQ, page_columns
from smec_vdb.migrate.ray.connections import opened

if TYPE_CHECKING:
    from smec_vdb.migrate.distributed import Connection
    from smec_vdb.migrate.options import MigrationOptions


class SmecSource(Datasource):
    """The source points of ``ranges`` (index → key range), resumed from ``cursors`` (index → cursor).

    ``progress``: the copy's :class:`~smec_vdb.migrate.ray.progress.RangeProgress` actor, told when a
    range has been read; ``opts``: the migration's options (``on_bad_vector`` "fail" refuses an unusable
    vector; None: such rows are flagged and skipped).
    """

    def __init__(self, connection: Connection, info: SourceInfo, ranges: Mapping[int, KeyRange], *,
                 cursors: Mapping[int, Any] | None = None, batch: int = 512, opts: MigrationOptions | None = None,
                 progress: Any = None) -> None:
        super().__init__()
        self.connection, self.info, self.ranges = connection, info, dict(ranges)
        self.cursors = dict(cursors or {})
        self.batch, self.opts, self.progress = batch, opts, progress

    def estimate_inmemory_data_size(self) -> int | None:
        return self.info.count * (4 * self.info.width + 256)

    def get_read_tasks(self, parallelism: int, per_task_row_limit: int | None = None,
                       data_context: Any = None) -> list[ReadTask]:
        return [ReadTask(functools.partial(self._read, index), BlockMetadata(num_rows=None, size_bytes=None,
                                                                             exec_stats=None, input_files=None))
                for index in sorted(self.ranges)]

    def _read(self, index: int) -> Iterator[Any]:
        info = self.info
        source = opened(self.connection)
        seq = 0
        for points, cursor in read_pages(source, info.name, self.ranges[index], batch=self.batch,
                                         with_vectors=info.read_vectors, cursor=self.cursors.get(index)):
            if not points:
                continue
            x = stack(points, info.vector, info.width)
            usable = np.ones(len(points), dtype=bool)
            usable[skipped_rows(points, x, info, self.opts)] = False
            columns = page_columns(points, x, usable, info.vector)
            n = len(points)
            columns.update({RANGE: np.full(n, index, dtype=np.int64), SEQ: np.full(n, seq, dtype=np.int64),
                            ROW: np.arange(n, dtype=np.int64), PAGE_ROWS: np.full(n, n, dtype=np.int64),
                            CURSOR: np.full(n, json.dumps(cursor), dtype=object)})
            yield BlockAccessor.batch_to_block(columns)
            seq += 1
        if self.progress is not None:
            import ray

            ray.get(self.progress.read.remote(index, seq))
