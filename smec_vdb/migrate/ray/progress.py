"""Per-range checkpoints of a Ray Data copy, kept by one small actor.

Pages of a range are read in order by one read task but may be encoded and written by any worker,
in any order. The sink tells :class:`RangeProgress` which rows of which page it wrote; the actor
advances each range's checkpoint over the pages written without a gap before them (the source
cursor after the last of them, points written and skipped) and stores the ranges that moved under
their own metadata keys (:func:`range_key`) at :class:`~smec_vdb.migrate.checkpoint.Cadence`'s
pace. One writer, so no two processes race on a key; the actor runs on the driver's node with no
CPU reserved, and dies with the driver, whose next run resumes every range from its stored cursor.
Marks of a page already counted (a retried task writing it again) are ignored, as are rows already
counted (a page split over several blocks).

A range's record: ``{"lo", "hi", "cursor", "written", "skipped", "copied"}`` (ids and a cursor: bounded).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from smec_vdb.migrate.checkpoint import Cadence
from smec_vdb.retry import retrying

if TYPE_CHECKING:
    from smec_vdb.migrate.distributed import Connection

#: metadata key of range ``i``'s checkpoint: ``checkpoint-range-<i>``
RANGE_KEY_PREFIX = "checkpoint-range-"


def range_key(index: int) -> str:
    return f"{RANGE_KEY_PREFIX}{index}"


def new_range(lo: Any, hi: Any) -> dict[str, Any]:
    return {"lo": lo, "hi": hi, "cursor": None, "written": 0, "skipped": 0, "copied": False}


@dataclass
class _Page:
    rows: dict[int, int] = field(default_factory=dict)  # first row of a written block → its rows
    page_rows: int = 0
    cursor: Any = None
    written: int = 0
    skipped: int = 0

    @property
    def complete(self) -> bool:
        return sum(self.rows.values()) >= self.page_rows


@dataclass
class _Range:
    record: dict[str, Any]
    next_seq: int = 0  # pages of this run counted so far, in order
    pages: dict[int, _Page] = field(default_factory=dict)
    total: int | None = None  # pages this run reads, once the read task has finished


class RangeProgress:
    """The actor (``ray.remote(RangeProgress)``): ``records`` maps each range copied in this run to its
    stored record; :meth:`written` and :meth:`read` are called by the tasks, :meth:`finish` by the driver."""

    def __init__(self, target: Connection, collection: str, records: dict[int, dict[str, Any]]) -> None:
        self.backend = retrying(target.open())
        self.collection = collection
        self.ranges = {int(i): _Range(dict(r)) for i, r in records.items()}
        self.dirty: set[int] = set()
        self.cadence = Cadence()

    def written(self, index: int, seq: int, first_row: int, rows: int, page_rows: int, cursor: Any,
                written: int, skipped: int) -> None:
        """Rows [first_row, first_row + rows) of page ``seq`` of range ``index`` are in the target."""
        state = self.ranges[index]
        if seq < state.next_seq:
            return  # counted already
        page = state.pages.setdefault(seq, _Page(page_rows=page_rows, cursor=cursor))
        if first_row in page.rows:
            return
        page.rows[first_row] = rows
        page.written += written
        page.skipped += skipped
        self._advance(index)

    def read(self, index: int, pages: int) -> None:
        """Range ``index``'s read task has produced all its pages (``pages`` of them)."""
        self.ranges[index].total = pages
        self._advance(index)

    def _advance(self, index: int) -> None:
        state = self.ranges[index]
        while state.next_seq in state.pages and state.pages[state.next_seq].complete:
            page = state.pages.pop(state.next_seq)
            state.record.update(cursor=page.cursor, written=state.record["written"] + page.written,
                                skipped=state.record["skipped"] + page.skipped)
            state.next_seq += 1
            self.dirty.add(index)
        if state.total is not None and state.next_seq >= state.total and not state.record["copied"]:
            state.record.update(copied=True, cursor=None)
            self.dirty.add(index)
        if self.dirty and self.cadence.due():
            self.save()

    def save(self) -> None:
        """Store every range whose checkpoint moved since the last save."""
        def write() -> None:
            for index in sorted(self.dirty):
                self.backend.set_metadata(self.collection, range_key(index), self.ranges[index].record)
        self.cadence.timed(write)
        self.dirty.clear()

    def finish(self) -> dict[int, dict[str, Any]]:
        """Store what moved and return every range's record."""
        if self.dirty:
            self.save()
        return {i: dict(state.record) for i, state in self.ranges.items()}
