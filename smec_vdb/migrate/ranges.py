"""Key ranges of a collection and page reads within them, in the engine's own scroll order.

Every adapter scrolls by id (:meth:`smec_vdb.backend.Backend.scroll`) and its cursor is an id:
Qdrant's is inclusive (points with id >= cursor), Milvus's exclusive (``pk > cursor``);
:func:`cursor_semantics` tells them apart by asking the engine. So a range of ids [lo, hi) can be
read by any engine without a filter the Protocol lacks: start at ``lo`` (on an exclusive engine,
the point ``lo`` itself is fetched by id first), stop at the first id >= ``hi``.

:func:`split` cuts a collection into such ranges by the engine's own means, without reading every
id: integer ids (and UUIDs, as 128-bit integers) are cut into equal widths between the first id and
the largest one, found by bisection with one-point scrolls (about 64 of them). Other string ids are
cut by one pass over the ids (:func:`split_by_pass`). The first and the last range are open, so
points added beyond them since are read too.

Ids are ordered as the engines order them: integers by value before strings (Qdrant's unsigned
integers before UUIDs), strings by code point (Milvus compares VARCHAR keys bytewise, UTF-8 keeps
that order, and a UUID's canonical string sorts as its 128-bit value). A collection that does not
scroll in this order (Qdrant string ids that are not UUIDs, stored under derived UUIDs) raises
:class:`UnorderedError` when read by range or side by side.

Example::

    for r in split(backend, "docs", 8):
        for points, cursor in read_pages(backend, "docs", r, batch=512, with_vectors=True): ...
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from typing import Any, Iterator, Literal, Sequence

from smec_vdb.backend import Backend, Point, PointId
from smec_vdb.errors import MigrationError

#: the largest key a probe starts from: Milvus keys are signed 64-bit, Qdrant's unsigned 64-bit
INT64_MAX = 2**63 - 1
UINT64_MAX = 2**64 - 1
UUID_MAX = 2**128 - 1
FIRST_UUID = str(uuid.UUID(int=0))

Key = tuple[int, Any]


class UnorderedError(MigrationError):
    """A collection's scroll is not in id order, so it cannot be read by key range or merged with another."""


def order_key(point_id: PointId) -> Key:
    """The engines' scroll order: integers by value, then strings by code point."""
    return (0, point_id) if isinstance(point_id, int) else (1, point_id)


@dataclass(frozen=True)
class KeyRange:
    """The ids in [lo, hi) (None: unbounded on that side), in :func:`order_key` order."""

    lo: PointId | None = None
    hi: PointId | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"lo": self.lo, "hi": self.hi}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "KeyRange":
        return cls(data.get("lo"), data.get("hi"))


WHOLE = KeyRange()


def cursor_semantics(backend: Backend, collection: str) -> Literal["inclusive", "exclusive"]:
    """Whether ``scroll(cursor=id)`` starts at ``id`` (Qdrant) or after it (Milvus), asked of the engine."""
    first, _ = backend.scroll(collection, cursor=None, limit=1, with_vectors=False)
    if not first:
        return "inclusive"  # empty: either reads nothing
    again, _ = backend.scroll(collection, cursor=first[0].id, limit=1, with_vectors=False)
    return "inclusive" if again and again[0].id == first[0].id else "exclusive"


def read_pages(backend: Backend, collection: str, key_range: KeyRange = WHOLE, *, batch: int,
               with_vectors: bool | Sequence[str], cursor: Any = None, semantics: str | None = None
               ) -> Iterator[tuple[list[Point], Any]]:
    """(points, cursor after them) pages of the points in ``key_range``, in scroll order, checked to be
    in key order (:class:`UnorderedError` otherwise). ``cursor``: resume after a page this returned;
    the last page's cursor is None."""
    if cursor is None and key_range.lo is not None:
        semantics = semantics or cursor_semantics(backend, collection)
        if semantics == "exclusive":  # scroll(cursor=lo) starts after lo: fetch lo itself by id
            at = backend.retrieve(collection, [key_range.lo], with_vectors=with_vectors)
            if at and (key_range.hi is None or order_key(at[0].id) < order_key(key_range.hi)):
                yield at, key_range.lo
        cursor = key_range.lo
    stop = None if key_range.hi is None else order_key(key_range.hi)
    last: Key | None = None
    while True:
        points, cursor = backend.scroll(collection, cursor=cursor, limit=batch, with_vectors=with_vectors)
        keys = [order_key(p.id) for p in points]
        if any(b <= a for a, b in zip(keys, keys[1:])) or (keys and last is not None and keys[0] <= last):
            raise UnorderedError(f"collection {collection!r} on {backend.target} does not scroll in id order "
                                 "(string ids stored under derived UUIDs): it cannot be read by id range")
        if stop is not None and keys and keys[-1] >= stop:
            kept = [p for p, k in zip(points, keys) if k < stop]
            if kept:
                yield kept, None
            return
        if keys:
            last = keys[-1]
        if points or cursor is None:
            yield points, cursor
        if cursor is None:
            return


def _largest_after(backend: Backend, collection: str, first: int, ceiling: int, encode: Any) -> int:
    """The largest id (as an integer) of a run of ids from ``first``, found by bisection with one-point
    scrolls; ``encode`` turns an integer into a cursor."""

    def probe(x: int) -> int | None:
        points, _ = backend.scroll(collection, cursor=encode(x), limit=1, with_vectors=False)
        if not points:
            return None
        value = _as_int(points[0].id)
        return value if value is not None and value >= x else None

    lo, hi = first, ceiling  # lo exists; nothing lies beyond hi (probed below)
    beyond = probe(hi)
    if beyond is not None:
        return beyond
    while hi - lo > 1:
        mid = (lo + hi) // 2
        found = probe(mid)
        if found is None:
            hi = mid
        else:
            lo = max(lo, found)
    return lo


def _as_int(point_id: PointId) -> int | None:
    if isinstance(point_id, int):
        return point_id
    try:
        return uuid.UUID(point_id).int if str(uuid.UUID(point_id)) == point_id else None
    except ValueError:
        return None


def _cuts(first: int, last: int, n: int) -> list[int]:
    """``n - 1`` cut points splitting [first, last] into ``n`` ranges of equal width."""
    width = last - first + 1
    return sorted({first + (width * i) // n for i in range(1, n)} - {first})


def split(backend: Backend, collection: str, n: int, *, batch: int = 1000) -> list[KeyRange]:
    """About ``n`` ranges covering the whole collection (module doc); the first and last are open."""
    n = max(1, n)
    head, _ = backend.scroll(collection, cursor=None, limit=1, with_vectors=False)
    if not head or n == 1:
        return [WHOLE]
    first = head[0].id
    if isinstance(first, int):
        last = _largest_after(backend, collection, first, INT64_MAX, int)
        if last >= INT64_MAX:  # Qdrant's unsigned ids may go further
            last = _largest_after(backend, collection, last, UINT64_MAX, int)
        int_cuts: list[PointId] = list(_cuts(first, last, n))
        uuids, _ = backend.scroll(collection, cursor=FIRST_UUID, limit=1, with_vectors=False) if backend.schema(
            collection).id_type == "any" else ([], None)
        if not uuids or not isinstance(uuids[0].id, str):
            return _ranges(int_cuts)
        int_cuts.append(FIRST_UUID)  # Qdrant: every UUID comes after every integer
        return _ranges(int_cuts + _uuid_cuts(backend, collection, uuids[0].id, n))
    if isinstance(first, str) and _as_int(first) is not None:
        return _ranges(_uuid_cuts(backend, collection, first, n))
    return split_by_pass(backend, collection, n, batch=batch)


def _uuid_cuts(backend: Backend, collection: str, first: str, n: int) -> list[PointId]:
    def as_uuid(x: int) -> str:
        return str(uuid.UUID(int=x))

    start = _as_int(first)
    assert start is not None
    last = _largest_after(backend, collection, start, UUID_MAX, as_uuid)
    return [as_uuid(c) for c in _cuts(start, last, n)]


def split_by_pass(backend: Backend, collection: str, n: int, *, batch: int = 1000) -> list[KeyRange]:
    """Ranges of about equal counts, cut at every ``count / n``-th id of one pass over the ids."""
    size = max(1, math.ceil(backend.count(collection) / n))
    cuts: list[PointId] = []
    seen = 0
    for points, _ in read_pages(backend, collection, batch=batch, with_vectors=False):
        for p in points:
            if seen and seen % size == 0:
                cuts.append(p.id)
            seen += 1
    return _ranges(cuts)


def _ranges(cuts: Sequence[PointId]) -> list[KeyRange]:
    bounds: list[PointId | None] = [None, *cuts, None]
    return [KeyRange(lo, hi) for lo, hi in zip(bounds, bounds[1:])]
