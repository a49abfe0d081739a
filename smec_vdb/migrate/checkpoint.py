"""A copy's progress kept with the target: what is in a checkpoint, and when it is written.

A checkpoint is one small JSON object under a metadata key of the target (the single-process copy:
:data:`~smec_vdb.migrate.options.CHECKPOINT_KEY`; a Ray copy: one key per source range). It holds
only counts and cursors, so its size does not grow with the collection: skipped ids are counted,
never listed (the verification finds every unusable source vector again and the report lists them
from there), and a distributed copy's ranges each live under their own key. So it fits every
engine's field limit (Milvus keeps a metadata value in a JSON field of at most 64 KB).

**Cadence.** Writing the checkpoint after every page made a metadata write per page. Upserts are
by id, so a resumed copy that re-writes pages already written leaves each point in the target once:
the checkpoint only bounds how much is re-done. :class:`Cadence` writes it once the time since the
last write reaches :data:`WORK_PER_WRITE` × what that write took (so checkpoints cost ≤ 5 % of the
copy), at least every :data:`MAX_INTERVAL_S` seconds, and always at a stop, an error and the end.
The guarantee: after a kill at any moment, re-running the command copies every point exactly once,
re-writing at most the pages written in the last :data:`MAX_INTERVAL_S` seconds before the kill.

Example::

    progress = Progress.from_record(target.get_metadata(name, CHECKPOINT_KEY))
    saver = CheckpointWriter(target, name, CHECKPOINT_KEY, progress)
    saver.advance(cursor=next_cursor, written=len(batch), skipped=0, finished=False)   # writes when due
    saver.save()                                                                      # writes now
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from smec_vdb.backend import Backend

#: a checkpoint is written once the work since the previous one is this many times what that write cost
WORK_PER_WRITE = 20.0
#: ... and at least this often (seconds): the most a kill makes the resumed run copy again
MAX_INTERVAL_S = 10.0


@dataclass
class Cadence:
    """When the next checkpoint is due (module doc). ``clock`` is injectable for tests."""

    work_per_write: float = WORK_PER_WRITE
    max_interval: float = MAX_INTERVAL_S
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    _last: float = field(default=float("-inf"), repr=False)
    _cost: float = field(default=0.0, repr=False)

    def due(self) -> bool:
        elapsed = self.clock() - self._last
        return elapsed >= min(self.max_interval, self.work_per_write * self._cost)

    def timed(self, write: Callable[[], None]) -> None:
        """Run ``write`` (a checkpoint write) and remember when it ended and what it cost."""
        t0 = self.clock()
        write()
        self._last = self.clock()
        self._cost = self._last - t0


@dataclass(frozen=True)
class Progress:
    """What a checkpoint records: the plan it belongs to, the source cursor after the last page
    written, points written and skipped so far, whether the copy is done, and the compressor.
    ``extra`` keeps the other keys of the record (a Ray copy's range count) as they are."""

    plan: str
    cursor: Any = None
    written: int = 0
    skipped: int = 0
    copied: bool = False
    compressor_path: str | None = None
    compressor_hash: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "Progress":
        """A stored checkpoint (a record from before skipped ids were counted lists them in ``skipped_ids``)."""
        known = {"plan", "cursor", "written", "skipped", "skipped_ids", "copied", "compressor_path", "compressor_hash"}
        skipped = record.get("skipped", len(record.get("skipped_ids") or []))
        return cls(plan=str(record.get("plan", "")), cursor=record.get("cursor"), written=int(record.get("written", 0)),
                   skipped=int(skipped), copied=bool(record.get("copied")),
                   compressor_path=record.get("compressor_path"), compressor_hash=record.get("compressor_hash"),
                   extra={k: v for k, v in record.items() if k not in known})

    def as_record(self) -> dict[str, Any]:
        return {**self.extra, "plan": self.plan, "cursor": self.cursor, "written": self.written,
                "skipped": self.skipped, "copied": self.copied, "compressor_path": self.compressor_path,
                "compressor_hash": self.compressor_hash}

    @property
    def done(self) -> int:
        """Source points the copy has passed (written or skipped)."""
        return self.written + self.skipped


class CheckpointWriter:
    """Advances a :class:`Progress` page by page and writes it under ``key`` when :class:`Cadence` says so.

    Pages must be advanced in source order, each after its upsert returned: the stored cursor is
    then always behind every point it claims.
    """

    def __init__(self, target: Backend, collection: str, key: str, progress: Progress,
                 cadence: Cadence | None = None) -> None:
        self.target, self.collection, self.key = target, collection, key
        self.progress = progress
        self.cadence = cadence or Cadence()
        self._saved = progress

    def advance(self, *, cursor: Any, written: int, skipped: int, finished: bool) -> None:
        self.progress = replace(self.progress, cursor=None if finished else cursor,
                                written=self.progress.written + written, skipped=self.progress.skipped + skipped,
                                copied=finished)
        if finished or self.cadence.due():
            self.save()

    def save(self) -> None:
        """Write the progress now (a no-op when it is what was last written)."""
        if self.progress == self._saved:
            return
        record = self.progress.as_record()
        self.cadence.timed(lambda: self.target.set_metadata(self.collection, self.key, record))
        self._saved = self.progress
