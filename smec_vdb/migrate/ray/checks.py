"""Verification's per-point comparison over key ranges, in parallel: a Ray Data :class:`~ray.data.Datasource`
whose read task for a range reads that range of the source and of the target side by side
(:func:`smec_vdb.migrate.verify.diff` with its ``key_range``) and yields one row: the range's
differences and its share of the recall queries' exact top-k, which the driver merges.

The compressor and the queries reach the tasks through the object store.
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Iterator, Mapping

from ray.data.block import BlockAccessor, BlockMetadata
from ray.data.datasource import Datasource, ReadTask

from smec_vdb.collection import SmecCollection
from smec_vdb.migrate.plan import SourceInfo
from smec_vdb.migrate.ranges import KeyRange
from smec_vdb.migrate.ray.connections import opened
from smec_vdb.migrate.recall import empty_topk
from smec_vdb.migrate.verify import diff

if TYPE_CHECKING:
    from smec_vdb.migrate.distributed import Connection


class RangeChecks(Datasource):
    """One row per range of ``ranges``: ``range``, ``drift`` (JSON of a Drift), ``topk`` (JSON of a TopK)."""

    def __init__(self, source: Connection, target: Connection, info: SourceInfo, collection: str,
                 ranges: Mapping[int, KeyRange], compressor: Any, queries: Any, batch: int) -> None:
        super().__init__()
        self.source, self.target, self.info, self.collection = source, target, info, collection
        self.ranges, self.compressor, self.queries, self.batch = dict(ranges), compressor, queries, batch

    def estimate_inmemory_data_size(self) -> int | None:
        return None

    def get_read_tasks(self, parallelism: int, per_task_row_limit: int | None = None,
                       data_context: Any = None) -> list[ReadTask]:
        return [ReadTask(functools.partial(self._check, index), BlockMetadata(num_rows=1, size_bytes=None,
                                                                              exec_stats=None, input_files=None))
                for index in sorted(self.ranges)]

    def _check(self, index: int) -> Iterator[Any]:
        import ray

        target = opened(self.target)
        target.count(self.collection)  # the engine's read barrier (Milvus: Strong): this process has written nothing,
        # so its own reads alone could miss what the driver wrote just before (a re-sync)
        col = SmecCollection(target, self.collection, ray.get(self.compressor))
        exact = empty_topk(ray.get(self.queries))
        drift = diff(opened(self.source), target, self.info, col, self.batch, key_range=self.ranges[index], exact=exact)
        yield BlockAccessor.batch_to_block({"range": [index], "drift": [json.dumps(asdict(drift))],
                                            "topk": [exact.to_json()]})
