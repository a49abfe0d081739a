"""Compare a target with its source over every point in one streaming pass, and measure recall.

The pass reads source and target pages side by side, each in its engine's own scroll order and
read ahead in a thread (:func:`smec_vdb.migrate.pipeline.prefetch`), and merges them by id
(:mod:`smec_vdb.migrate.ranges` orders ids as the engines do): a source id with no target point is
missing, a target id with no source point is extra; the pairs are judged a page at a time by
:func:`smec_vdb.migrate.compare.compare`. A target that does not scroll in the source's id order
(string ids that a Qdrant target keeps under derived UUIDs) is compared by id instead: each source
page's points fetched from the target, then one pass over the target's ids. Memory is bounded by a
few pages plus the differences found. Per point (issue 10 §4):

- ids: every usable source point is in the target, and nothing else is;
- content: payload and sparse vectors (canonical JSON; floats within 2 ulp, see :mod:`~smec_vdb.migrate.compare`);
- carried dense vectors equal to the source's within 1e-4 (cosine ones compared normalised);
- the stored ``full`` vector equal to the normalised source vector, and each compressed resolution
  equal to a fresh encode of it by the collection's compressor.

:func:`diff` serves verification, ``check`` (drift report) and re-sync (the callbacks rewrite or
delete the differing points as they are found). :func:`verify` adds recall@10
(:mod:`smec_vdb.migrate.recall`): the exact top-10 of the queries is accumulated in the same pass,
while the target's searches run in a thread.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Generator, Iterator, Sequence

import numpy as np

from smec_vdb.backend import Backend, Point, PointId, iterate_points
from smec_vdb.collection import FULL, SmecCollection
from smec_vdb.migrate.compare import (
    CARRIED, ENCODING, FULL_DIFFERS, MISSING, Compare, Expected, Rules, compare, same_content, unit_rows,
)
from smec_vdb.migrate.options import MigrationEvent, MigrationInterrupted, ProgressCallback, StopCheck
from smec_vdb.migrate.pipeline import prefetch
from smec_vdb.migrate.plan import SourceInfo, Timer, bad_vector_rows, stack
from smec_vdb.migrate.ranges import WHOLE, KeyRange, UnorderedError, order_key, read_pages
from smec_vdb.migrate.recall import (
    BUDGET_FRACTION, QueryPicker, QuerySample, Searches, TopK, empty_topk, query_budget, recall, recall_budget,
)
from smec_vdb.retry import retrying

__all__ = ["Drift", "diff", "recall_budget", "same_content", "verdict", "verify"]

FIRST_IDS = 5
UNEXPECTED = "unexpected (not in source)"
UNUSABLE = "unexpected (unusable source vector)"
DEFAULT_RULES = Rules()


@dataclass
class Drift:
    """Differences between source and target, by kind (ids listed up to :data:`FIRST_IDS`)."""

    checked: int = 0
    skipped: list[PointId] = field(default_factory=list)
    kinds: dict[str, int] = field(default_factory=dict)
    first: dict[str, list[PointId]] = field(default_factory=dict)
    target_count: int = 0

    def note(self, kind: str, point_id: PointId) -> None:
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        ids = self.first.setdefault(kind, [])
        if len(ids) < FIRST_IDS:
            ids.append(point_id)

    @property
    def clean(self) -> bool:
        return not self.kinds

    def describe(self) -> str:
        return "; ".join(f"{n} {kind} (first ids {self.first[kind]})" for kind, n in sorted(self.kinds.items()))

    def merge(self, other: "Drift") -> "Drift":
        """Add ``other``'s findings (another range of the same comparison) to these."""
        self.checked += other.checked
        self.target_count += other.target_count
        self.skipped.extend(other.skipped)
        for kind, n in other.kinds.items():
            self.kinds[kind] = self.kinds.get(kind, 0) + n
            ids = self.first.setdefault(kind, [])
            ids.extend(other.first[kind][: FIRST_IDS - len(ids)])
        return self

    def as_dict(self) -> dict[str, Any]:
        return {"points_checked": self.checked, "skipped": len(self.skipped), "differences": dict(self.kinds),
                "first_ids": {k: list(v) for k, v in self.first.items()}, "target_count": self.target_count}


#: called with the source points of one page that are missing or differ in the target, and their vectors
Repair = Callable[[list[Point], np.ndarray], None]


@dataclass
class _Judge:
    """Judges pages of (source point, stored point or None) rows and target-only ids into a :class:`Drift`."""

    target: Backend
    info: SourceInfo
    col: SmecCollection
    drift: Drift
    repair: Repair | None
    delete_extra: Callable[[list[PointId]], None] | None
    exact: TopK | None
    compare: Compare
    rules: Rules
    timer: Timer = field(default_factory=Timer)

    def rows(self, rows: Sequence[tuple[Point, Point | None]]) -> None:
        if not rows:
            return
        info, drift = self.info, self.drift
        points = [s for s, _ in rows]
        x = stack(points, info.vector, info.width)
        bad = bad_vector_rows(x)
        for i in bad:  # expected absent: skipped
            drift.skipped.append(points[i].id)
            if rows[i][1] is not None:
                drift.note(UNUSABLE, points[i].id)
        usable = np.setdiff1d(np.arange(len(points)), bad)
        if not len(usable):
            return
        if self.exact is not None:
            t0 = time.perf_counter()
            self.exact.add([points[i].id for i in usable], x[usable])
            self.timer.add("verify_exact_top_k", t0)
        present = [i for i in usable if rows[i][1] is not None]
        kinds: dict[int, str] = {int(i): MISSING for i in usable if rows[i][1] is None}
        if present:
            expected = self._expected(points, x, present)
            t0 = time.perf_counter()
            judged = self.compare(expected, [rows[i][1] for i in present], info.schema.sparse, self.rules)
            self.timer.add("verify_compare", t0)
            for i, kind in zip(present, judged):
                if kind is not None:
                    kinds[int(i)] = kind
        for i in sorted(kinds):
            drift.note(kinds[i], points[i].id)
        drift.checked += len(usable)
        if self.repair is not None and kinds:
            redo = sorted(kinds)
            self.repair([points[i] for i in redo], x[redo])

    def _expected(self, points: Sequence[Point], x: np.ndarray, rows: Sequence[int]) -> Expected:
        chosen = [points[i] for i in rows]
        expected = Expected.of(chosen, self.info.schema.sparse)
        for r in self.info.carried:
            expected.expect(r.name, np.stack([np.asarray(p.vectors[r.name], dtype=np.float32) for p in chosen]),
                            normalised=r.distance == "cosine", kind=CARRIED)
        names = {r.name for r in self.col.resolutions}
        if FULL in names:
            expected.expect(FULL, unit_rows(x[rows]), normalised=True, kind=FULL_DIFFERS)
        t0 = time.perf_counter()
        fresh = self.col.encode(x[rows])
        self.timer.add("verify_encode", t0)
        for name, matrix in fresh.items():
            if name != FULL:
                expected.expect(name, matrix, normalised=False, kind=ENCODING)
        return expected

    def extra(self, ids: list[PointId]) -> None:
        for point_id in ids:
            self.drift.note(UNEXPECTED, point_id)
        if self.delete_extra is not None and ids:
            self.delete_extra(ids)


def _timed(pages: Iterator[tuple[list[Point], Any]], timer: Timer, phase: str) -> Iterator[tuple[list[Point], Any]]:
    while True:
        t0 = time.perf_counter()
        page = next(pages, None)
        timer.add(phase, t0)
        if page is None:
            return
        yield page


def _points(pages: Iterator[tuple[list[Point], Any]], timer: Timer, phase: str) -> Generator[Point, None, None]:
    for points, _ in prefetch(_timed(pages, timer, phase)):  # pages read ahead in a thread, points handed out here
        yield from points


def diff(source: Backend, target: Backend, info: SourceInfo, col: SmecCollection, batch: int, *,
         repair: Repair | None = None, delete_extra: Callable[[list[PointId]], None] | None = None,
         progress: ProgressCallback | None = None, should_stop: StopCheck | None = None,
         phase: str = "verify", key_range: KeyRange = WHOLE, exact: TopK | None = None,
         compare_fn: Compare = compare, rules: Rules = DEFAULT_RULES, timer: Timer | None = None) -> Drift:
    """Every difference between source and target within ``key_range`` (see module doc), streamed.

    ``repair`` receives each page's missing/differing source points with their vectors; points whose
    migrated vector is NaN/inf/zero are expected absent (skipped). ``delete_extra`` receives target ids
    absent from the source. ``exact`` accumulates the recall queries' exact top-k over the source.
    ``timer`` gets the seconds of each part (``verify_read_source``, ``verify_read_target`` in the reader
    threads, ``verify_encode``, ``verify_compare``, ``verify_exact_top_k``).
    """
    timer = timer if timer is not None else Timer()
    source, target = retrying(source), retrying(target)  # every call below is a read
    top = None if exact is None else TopK(exact.queries, exact.k)
    judge = _Judge(target, info, col, Drift(), repair, delete_extra, top, compare_fn, rules, timer)
    try:
        _merged(source, target, info, col, batch, judge, progress, should_stop, phase, key_range)
    except UnorderedError:
        if key_range != WHOLE:
            raise
        if judge.repair is not None and judge.drift.kinds:  # never: the first pages show the order
            raise
        top = None if exact is None else TopK(exact.queries, exact.k)
        judge = _Judge(target, info, col, Drift(), repair, delete_extra, top, compare_fn, rules, timer)
        _by_id(source, target, info, col, batch, judge, progress, should_stop, phase)
    if exact is not None and judge.exact is not None:
        exact.merge(judge.exact)
    return judge.drift


def _check_stop(should_stop: StopCheck | None, phase: str) -> None:
    if should_stop and should_stop():
        raise MigrationInterrupted(f"interrupted during {'verification' if phase == 'verify' else phase}; "
                                   "run the same command again to resume")


def _merged(source: Backend, target: Backend, info: SourceInfo, col: SmecCollection, batch: int, judge: _Judge,
            progress: ProgressCallback | None, should_stop: StopCheck | None, phase: str, key_range: KeyRange) -> None:
    """Both collections read in id order side by side, merged by id, judged a page at a time."""
    timer = judge.timer
    source_points = _points(read_pages(source, info.name, key_range, batch=batch, with_vectors=info.read_vectors),
                            timer, "verify_read_source")
    target_points = _points(read_pages(target, col.name, key_range, batch=batch, with_vectors=True), timer,
                            "verify_read_target")
    s_next, t_next = next(source_points, None), next(target_points, None)
    rows: list[tuple[Point, Point | None]] = []
    extra: list[PointId] = []
    done = 0
    try:
        while s_next is not None or t_next is not None:
            if t_next is None or (s_next is not None and order_key(s_next.id) < order_key(t_next.id)):
                assert s_next is not None
                rows.append((s_next, None))
                s_next = next(source_points, None)
            elif s_next is None or order_key(t_next.id) < order_key(s_next.id):
                extra.append(t_next.id)
                judge.drift.target_count += 1
                t_next = next(target_points, None)
            else:
                rows.append((s_next, t_next))
                judge.drift.target_count += 1
                s_next, t_next = next(source_points, None), next(target_points, None)
            if len(rows) + len(extra) >= batch:
                _check_stop(should_stop, phase)
                judge.rows(rows)
                judge.extra(extra)
                done += len(rows)
                rows, extra = [], []
                if progress:
                    progress(MigrationEvent(phase, done, info.count))
        _check_stop(should_stop, phase)
        judge.rows(rows)
        judge.extra(extra)
        if progress:
            progress(MigrationEvent(phase, done + len(rows), info.count))
    finally:
        source_points.close()
        target_points.close()


def _by_id(source: Backend, target: Backend, info: SourceInfo, col: SmecCollection, batch: int, judge: _Judge,
           progress: ProgressCallback | None, should_stop: StopCheck | None, phase: str) -> None:
    """Each source page's points fetched from the target by id, then one pass over the target's ids."""
    done = 0
    for points, _ in prefetch(iterate_points(source, info.name, batch_size=batch, with_vectors=info.read_vectors)):
        _check_stop(should_stop, phase)
        stored = {p.id: p for p in target.retrieve(col.name, [p.id for p in points], with_vectors=True)}
        judge.rows([(p, stored.get(p.id)) for p in points])
        done += len(points)
        if progress:
            progress(MigrationEvent(phase, done, info.count))
    for points, _ in prefetch(iterate_points(target, col.name, batch_size=batch, with_vectors=False)):
        judge.drift.target_count += len(points)
        present = {p.id for p in source.retrieve(info.name, [p.id for p in points if _fits(info, p.id)],
                                                 with_vectors=False)}
        judge.extra([p.id for p in points if p.id not in present])


def _fits(info: SourceInfo, point_id: PointId) -> bool:
    kind = info.schema.id_type
    return kind == "any" or (kind == "int") == isinstance(point_id, int)


def verdict(info: SourceInfo, drift: Drift, recall_at_10: float, n_queries: int, budget: int,
            min_recall: float) -> dict[str, Any]:
    """The verification report: ``passed`` only if no difference and recall >= min_recall; ``skipped_ids``
    lists every source point left out for an unusable vector (the caller keeps it out of metadata)."""
    problems = []
    if not drift.clean:
        problems.append(f"{drift.describe()}; run the same migrate command again to rewrite only these points")
    if recall_at_10 < min_recall:
        problems.append(f"recall@10 {recall_at_10:.4f} < min_recall {min_recall} (budget {budget} candidates): store "
                        "a larger dim or more dims, or lower min_recall; restart retrains")
    return {
        "passed": not problems,
        "summary": "verification passed" if not problems else "verification failed: " + " | ".join(problems),
        "count_source": info.count,
        "count_target": drift.target_count,
        "points_expected": drift.checked,
        **drift.as_dict(),
        "skipped_ids": list(drift.skipped),
        "recall_at_10": round(recall_at_10, 4),
        "recall_queries": n_queries,
        "recall_candidates": budget,
        "budget_rule": f"min(search default, ceil({BUDGET_FRACTION:.0%} of N) - 1), at least k+1",
        "min_recall": min_recall,
        "reference": "exact full-dim cosine search over the source (streamed)",
    }


def pick_queries(source: Backend, info: SourceInfo, n_queries: int, seed: int, batch: int) -> QuerySample:
    """Recall queries by one pass over the source's migrated vector (when the plan's survey did not pick them)."""
    picker = QueryPicker(n_queries, seed)
    for points, _ in read_pages(retrying(source), info.name, batch=batch, with_vectors=[info.vector]):
        x = stack(points, info.vector, info.width)
        usable = np.setdiff1d(np.arange(len(points)), bad_vector_rows(x))
        picker.offer([points[i].id for i in usable], x[usable])
    return picker.sample(info.width)


def verify(source: Backend, target: Backend, info: SourceInfo, col: SmecCollection, *, min_recall: float,
           n_queries: int, seed: int, batch: int, progress: ProgressCallback | None = None,
           should_stop: StopCheck | None = None, queries: QuerySample | None = None,
           timer: Timer | None = None) -> dict[str, Any]:
    """:func:`diff` and recall@10 in one pass over source and target (module doc); the target's searches
    run meanwhile. ``queries``: the held-out points (default: picked by a pass over the source);
    ``timer``: gets the parts' seconds (see :func:`diff`) and ``verify_recall_wait``, the time spent
    waiting for the searches once the pass is done."""
    timer = timer if timer is not None else Timer()
    if queries is None:
        queries = pick_queries(source, info, n_queries, seed, batch)
    budget = query_budget(col, queries)
    searches = Searches(col, queries, budget)
    exact = empty_topk(queries)
    try:
        drift = diff(source, target, info, col, batch, progress=progress, should_stop=should_stop, exact=exact,
                     timer=timer)
    except BaseException:
        searches.cancel()
        raise
    t0 = time.perf_counter()
    found = searches.wait()
    timer.add("verify_recall_wait", t0)
    recall_at_10, counted = recall(queries, exact, found)
    return verdict(info, drift, recall_at_10, counted, budget, min_recall)
