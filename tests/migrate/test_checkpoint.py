"""The checkpoint's record and its cadence: bounded content, written when due, always at the end."""

from __future__ import annotations

import json

from smec_vdb.migrate.checkpoint import Cadence, CheckpointWriter, Progress


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Metadata:
    """Records set_metadata calls; each write 'takes' ``cost`` seconds of the fake clock."""

    def __init__(self, clock: Clock, cost: float) -> None:
        self.clock, self.cost, self.writes = clock, cost, []

    def set_metadata(self, collection, key, value):
        self.clock.now += self.cost
        self.writes.append((key, value))


def test_writes_come_at_the_cadence_and_always_at_the_end():
    clock = Clock()
    store = Metadata(clock, cost=0.01)
    saver = CheckpointWriter(store, "t", "checkpoint", Progress("plan"), Cadence(20.0, 10.0, clock))
    for page in range(100):
        clock.now += 0.005  # a page takes 5 ms: a checkpoint (10 ms) is due every 200 ms of work, i.e. ~40 pages
        saver.advance(cursor=page, written=10, skipped=1, finished=page == 99)
    assert 2 <= len(store.writes) <= 5, len(store.writes)
    last = store.writes[-1][1]
    assert last["copied"] and last["written"] == 1000 and last["skipped"] == 100 and last["cursor"] is None
    saver.save()
    assert len(store.writes) <= 5, "an unchanged checkpoint is not written again"


def test_slow_writes_are_still_made_at_least_every_max_interval():
    clock = Clock()
    store = Metadata(clock, cost=5.0)  # 20 x 5 s would be 100 s
    saver = CheckpointWriter(store, "t", "checkpoint", Progress("plan"), Cadence(20.0, 10.0, clock))
    for page in range(10):
        clock.now += 4.0
        saver.advance(cursor=page, written=1, skipped=0, finished=False)
    # 40 s of pages: written at the first page, then whenever 10 s have passed since the last write ended
    assert 3 <= len(store.writes) <= 5, len(store.writes)


def test_the_record_stays_small_however_many_points_are_skipped():
    progress = Progress("plan", cursor="doc-000001", written=10**8, skipped=10**7, copied=False)
    assert len(json.dumps(progress.as_record())) < 300
    legacy = Progress.from_record({"plan": "p", "cursor": 5, "written": 7, "skipped_ids": [1, 2, 3]})
    assert legacy.skipped == 3 and legacy.done == 10 and "skipped_ids" not in legacy.as_record()
    assert Progress.from_record({**progress.as_record(), "ranges": 12}).extra == {"ranges": 12}
