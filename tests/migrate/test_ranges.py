"""Key ranges: cut by probes (no pass over the ids) or by one pass, read back exactly once, on an engine
whose cursor starts at an id (Qdrant) or after it (Milvus)."""

from __future__ import annotations

import uuid

import pytest

from smec_vdb.backend import CollectionSchema, Point, Resolution
from smec_vdb.migrate.ranges import (
    KeyRange, UnorderedError, cursor_semantics, order_key, read_pages, split, split_by_pass,
)


class Paged:
    """A source that only pages by id, as the adapters do: ``inclusive`` (Qdrant: points >= cursor, the
    cursor returned is the next id) or exclusive (Milvus: points > cursor, the cursor returned is the last
    id); counts its scroll calls."""

    target = "fake"

    def __init__(self, ids: list, inclusive: bool, id_type: str = "int", order=None) -> None:
        self.ids = sorted(ids, key=order or order_key)
        self.inclusive, self.id_type, self.scrolls = inclusive, id_type, 0

    def schema(self, collection):
        return CollectionSchema((Resolution("v", 2),), id_type=self.id_type)

    def count(self, collection):
        return len(self.ids)

    def retrieve(self, collection, ids, *, with_vectors=True):
        return [Point(i, {}, {}) for i in ids if i in set(self.ids)]

    def scroll(self, collection, *, cursor=None, limit=1000, with_vectors=True):
        self.scrolls += 1
        if cursor is None:
            start = 0
        else:
            key = order_key(cursor)
            start = next((n for n, i in enumerate(self.ids)
                          if (order_key(i) >= key if self.inclusive else order_key(i) > key)), len(self.ids))
        page = self.ids[start:start + limit]
        more = start + limit < len(self.ids)
        nxt = (self.ids[start + limit] if self.inclusive else page[-1]) if more else None
        return [Point(i, {}, {}) for i in page], nxt


def read_all(source: Paged, ranges: list[KeyRange], batch: int = 7) -> list:
    return [p.id for r in ranges for points, _ in read_pages(source, "c", r, batch=batch, with_vectors=False)
            for p in points]


ID_SETS = {"dense": list(range(100)), "strided": [3 * i + 1 for i in range(50)], "one": [5],
           "outlier": [0, 1, 2, 10**12, 10**12 + 1], "spread": [i * 2**40 for i in range(30)],
           "int64-edge": [2**63 - 5, 2**63 - 2], "uint64": [1, 2**63 + 7, 2**64 - 1]}


@pytest.mark.parametrize("ids, inclusive", [
    pytest.param(ids, inclusive, id=f"{name}-{'inclusive' if inclusive else 'exclusive'}")
    for name, ids in ID_SETS.items() for inclusive in (True, False)
    if inclusive or max(ids) < 2**63])  # exclusive cursors are Milvus's: signed 64-bit keys
def test_integer_ranges_cover_every_id_once_without_a_pass(ids, inclusive):
    source = Paged(ids, inclusive)
    ranges = split(source, "c", 4)
    assert ranges[0].lo is None and ranges[-1].hi is None
    assert source.scrolls <= 2 * 64 + 4, "the cut must come from probes, not a pass over the ids"
    assert read_all(source, ranges) == sorted(ids)
    assert cursor_semantics(source, "c") == ("inclusive" if inclusive else "exclusive")


@pytest.mark.parametrize("inclusive", [True, False])
def test_uuid_and_mixed_ids_are_cut_in_128_bit_space(inclusive):
    uuids = sorted(str(uuid.UUID(int=(7919 * i) % 2**128 * 2**100 % 2**128)) for i in range(1, 60))
    source = Paged(uuids, inclusive, "str")
    ranges = split(source, "c", 5)
    assert len(ranges) > 1 and read_all(source, ranges) == uuids
    mixed = Paged(list(range(20)) + uuids, True, "any")  # Qdrant: integers first, then UUIDs
    ranges = split(mixed, "c", 3)
    assert read_all(mixed, ranges) == list(range(20)) + uuids


@pytest.mark.parametrize("inclusive", [True, False])
def test_other_strings_are_cut_by_one_pass_in_equal_counts(inclusive):
    ids = [f"doc-{i:04d}" for i in range(101)]
    source = Paged(ids, inclusive, "str")
    ranges = split(source, "c", 4)
    assert ranges == split_by_pass(source, "c", 4)
    sizes = [len(read_all(source, [r])) for r in ranges]
    assert sum(sizes) == 101 and max(sizes) - min(sizes) <= 26


def test_a_range_resumes_from_a_cursor_it_returned():
    source = Paged(list(range(40)), inclusive=False)
    pages = list(read_pages(source, "c", KeyRange(10, 30), batch=6, with_vectors=False))
    cursor = pages[1][1]
    rest = [p.id for points, _ in read_pages(source, "c", KeyRange(10, 30), batch=6, with_vectors=False, cursor=cursor)
            for p in points]
    assert [p.id for p in pages[0][0] + pages[1][0]] + rest == list(range(10, 30))
    assert pages[-1][1] is None


def test_a_collection_not_in_id_order_is_refused_for_range_reads():
    source = Paged([f"doc-{i}" for i in range(30)], True, "str",
                   order=lambda i: str(uuid.uuid5(uuid.NAMESPACE_DNS, i)))  # Qdrant's derived UUIDs
    with pytest.raises(UnorderedError, match="does not scroll in id order"):
        read_all(source, [KeyRange()])
