"""Compare a target with its source over every point in one streaming pass, and measure recall.

The pass reads source and target pages side by side, each in its engine's own scroll order and
read ahead in a thread (:func:`smec_vdb.migrate.pipeline.prefetch`), and merges them by id
(:mod:`smec_vdb.migrate.ranges` orders ids as the engines do): a source id with no target point is
missing, a target id with no source point is extra; the pairs are judged a page at a time by
:func:`smec_vdb.migrate.compare.compare`. A target that does not scroll in the source's id order
(string ids that a Qdrant target keeps under derived UUIDs) is compared by id instead: each source
page's points fetched from the target, then one pass over the target's ids. Memory is bounded by a
few pages plus the differences found. Per point (issue 10 §4):

- ids: every source point the target keeps (:mod:`smec_vdb.migrate.points`) is in the target, and
  nothing else is;
- the partition, when the target keeps partitions;
- content: payload and sparse vectors, exact (canonical JSON: ``1`` and ``1.0`` differ, nested values
  and nulls count);
- carried dense vectors (multivectors, uint8, float16 alike) bit-equal to the source's, and the stored
  ``full`` vector bit-equal to the one written (the compressor's unit row);
- each compressed resolution equal to a fresh encode within 1e-4; a point without the migrated vector
  (a hybrid collection's sparse-only point) has no compressed vector either.

Exact, except where the target engine changes values itself, as the plan's probe found
(:mod:`smec_vdb.migrate.probe`, ``info.fidelity``): a payload float within the engine's rounding
(qdrant-edge: 1 ulp) and a cosine vector within the engine's own normalisation are counted under the
engine's named class (``Drift.classes``, reported, not a difference); anything beyond is a difference
(:mod:`smec_vdb.migrate.compare`).

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
    CARRIED, ENCODING, FULL_DIFFERS, MISSING, NO_SOURCE_VECTOR, Compare, Expected, Rules, compare, same_content,
)
from smec_vdb.migrate.options import MigrationEvent, MigrationInterrupted, ProgressCallback, StopCheck
from smec_vdb.migrate.pipeline import prefetch
from smec_vdb.migrate.plan import SourceInfo, Timer, stack
from smec_vdb.migrate.points import skipped_rows
from smec_vdb.migrate.ranges import WHOLE, KeyRange, UnorderedError, order_key, read_pages
from smec_vdb.migrate.recall import (
    BUDGET_FRACTION, QueryPicker, QuerySample, Searches, TopK, empty_topk, query_budget, recall, recall_budget,
)
from smec_vdb.retry import retrying

__all__ = ["Drift", "diff", "recall_budget", "same_content", "verdict", "verify"]

FIRST_IDS = 5
UNEXPECTED = "unexpected (not in source)"
UNUSABLE = "unexpected (unusable source vector)"


@dataclass
class Drift:
    """Differences between source and target, by kind (ids listed up to :data:`FIRST_IDS`)."""

    checked: int = 0
    skipped: list[PointId] = field(default_factory=list)
    kinds: dict[str, int] = field(default_factory=dict)
    first: dict[str, list[PointId]] = field(default_factory=dict)
    target_count: int = 0
    #: points whose values the target engine changed itself, by the probe's class name (not differences)
    classes: dict[str, int] = field(default_factory=dict)

    def note_classes(self, counts: dict[str, int]) -> None:
        for name, n in counts.items():
            self.classes[name] = self.classes.get(name, 0) + n

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
        self.note_classes(other.classes)
        return self

    def as_dict(self) -> dict[str, Any]:
        return {"points_checked": self.checked, "skipped": len(self.skipped), "differences": dict(self.kinds),
                "first_ids": {k: list(v) for k, v in self.first.items()}, "target_count": self.target_count,
                "engine_classes": dict(self.classes)}


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
        bad = skipped_rows(points, x, info, None)  # what the copy left out: expected absent
        for i in bad:
            drift.skipped.append(points[i].id)
            if rows[i][1] is not None:
                drift.note(UNUSABLE, points[i].id)
        usable = np.setdiff1d(np.arange(len(points)), bad)
        if not len(usable):
            return
        if self.exact is not None:
            with_vector = [i for i in usable if info.vector in points[i].vectors]
            t0 = time.perf_counter()
            self.exact.add([points[i].id for i in with_vector], x[with_vector])
            self.timer.add("verify_exact_top_k", t0)
        present = [i for i in usable if rows[i][1] is not None]
        kinds: dict[int, str] = {int(i): MISSING for i in usable if rows[i][1] is None}
        if present:
            expected = self._expected(points, x, present)
            t0 = time.perf_counter()
            judged, classes = self.compare(expected, [rows[i][1] for i in present], info.sparse, self.rules)
            self.timer.add("verify_compare", t0)
            drift.note_classes(classes)
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
        """What the target must hold for ``rows`` of ``points``: what :func:`~smec_vdb.migrate.points.target_batch`
        writes, the compressed resolutions freshly encoded."""
        chosen = [points[i] for i in rows]
        expected = Expected.of(chosen, self.info.sparse, partitioned=bool(self.col.schema.partitions))
        for r in self.info.carried:
            has = np.asarray([r.name in p.vectors for p in chosen], dtype=bool)
            if r.multivector:
                empty = np.zeros((0, r.dim), dtype=np.float32)
                values: np.ndarray | list[np.ndarray] = [np.asarray(p.vectors.get(r.name, empty)) for p in chosen]
            else:
                values = np.stack([np.asarray(p.vectors.get(r.name, np.zeros(r.dim)), dtype=np.float32)
                                   for p in chosen])
            expected.expect(r.name, values, present=has, cosine=r.distance == "cosine", kind=CARRIED)
        has = np.asarray([self.info.vector in p.vectors for p in chosen], dtype=bool)
        t0 = time.perf_counter()
        fresh = self.col.encode(x[np.asarray(rows)[has]]) if has.any() else {}
        self.timer.add("verify_encode", t0)
        for r in self.col.resolutions:
            values = np.zeros((len(chosen), r.dim), dtype=np.float32)
            if r.name in fresh:
                values[has] = fresh[r.name]
            full = r.name == FULL
            expected.expect(r.name, values, present=has, exact=full, cosine=full,
                            kind=FULL_DIFFERS if full else ENCODING, unexpected=NO_SOURCE_VECTOR)
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
         compare_fn: Compare = compare, rules: Rules | None = None, timer: Timer | None = None) -> Drift:
    """Every difference between source and target within ``key_range`` (see module doc), streamed.

    ``repair`` receives each page's missing/differing source points with their vectors; points whose
    migrated vector is NaN/inf/zero are expected absent (skipped). ``delete_extra`` receives target ids
    absent from the source. ``exact`` accumulates the recall queries' exact top-k over the source.
    ``timer`` gets the seconds of each part (``verify_read_source``, ``verify_read_target`` in the reader
    threads, ``verify_encode``, ``verify_compare``, ``verify_exact_top_k``).
    """
    timer = timer if timer is not None else Timer()
    rules = rules if rules is not None else Rules.of(info.fidelity)
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
    lists every source point left out (:mod:`smec_vdb.migrate.points`; the caller keeps it out of metadata)."""
    problems = []
    if not drift.clean:
        problems.append(f"{drift.describe()}; run the same migrate command again to rewrite only these points")
    if recall_at_10 < min_recall:
        problems.append(f"recall@10 {recall_at_10:.4f} < min_recall {min_recall} (budget {budget} candidates): store "
                        "a larger dim or more dims, or lower min_recall; restart retrains")
    return {
        "passed": not problems,
        "summary": ("verification passed" if not problems else "verification failed: " + " | ".join(problems)) + (
            f" (values the target engine changed itself, by class: {drift.classes})" if drift.classes else ""),
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
        usable = np.setdiff1d(np.arange(len(points)), skipped_rows(points, x, info, None))
        usable = np.asarray([i for i in usable if info.vector in points[i].vectors], dtype=np.int64)
        picker.offer([points[i].id for i in usable], x[usable])
    return picker.sample(info.width)


def wait_for_recall(searches: Searches, progress: ProgressCallback | None) -> list[list[PointId]]:
    """The target's answers to the recall queries, once every search is done (phase ``recall``)."""
    total = len(searches.results)
    if progress:
        progress(MigrationEvent("recall", 0, total))
    found = searches.wait()
    if progress:
        progress(MigrationEvent("recall", total, total))
    return found


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
    found = wait_for_recall(searches, progress)
    timer.add("verify_recall_wait", t0)
    recall_at_10, counted = recall(queries, exact, found)
    return verdict(info, drift, recall_at_10, counted, budget, min_recall)
