"""Coarse candidates calibrated per collection: the smallest count that reaches a recall target.

Coarse-to-fine search (paper §3) shortlists ``candidates`` points on the narrowest resolution and
re-scores them on the wider ones. How many it needs depends on the data as much as on the widths:
the fixed rule (:func:`smec_vdb.search.default_candidates`) is sized on the densest set measured
and asks for 160 at 128-d where SciFact reaches recall@10 0.998 with 40. Calibration measures the
collection itself:

- **queries**: held-out points of a *reference* (the migration's source, or the collection's own
  ``full`` vectors), picked by a hash of their id and excluded from both result lists; two disjoint
  sets: one to choose on, one to report on;
- **truth**: their exact top-k by cosine over the whole reference, full width, streamed in batches;
- **answers**: the collection's own search, as users call it (:meth:`SmecCollection.search`);
- **search**: starting at the rule's count, double up or bisect down to the smallest count whose
  mean recall@k on the first set, less :data:`MARGIN_SE` standard errors of that mean, reaches
  ``target`` (recall grows with the candidates: each shortlist contains the smaller ones; the margin
  makes the count hold on queries it was not chosen on, not just on these); at most
  :data:`BUDGET_FRACTION` of the points (beyond that the coarse stage no longer filters), and
  :data:`MAX_CANDIDATES`;
- **report**: recall@k (with its standard error) and the p50/p99 latency of the search at that count
  on the second set. The margin bounds the recall *expected* on new queries; any finite set of them
  scatters around it (simulated on clustered data, 200 queries per set: the second set fell below the
  target in about 1 split in 10, by less than two of its standard errors).

The count is stored in the collection's compressor record (key ``search``), which the collection
then uses as its default. No count reaching the target is a :class:`CalibrationError` (nothing is
written); a collection with one resolution re-scores nothing and has no count to choose.

Example::

    result = calibrate(col, Reference(backend, "docs"), target=0.99)
    store(col, result)                      # col.search(q) now uses result.candidates
"""

from __future__ import annotations

import math
import time
import zlib
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from smec_vdb.backend import Backend, PointId, iterate_points
from smec_vdb.collection import FULL, SmecCollection
from smec_vdb.errors import CalibrationError
from smec_vdb.search import default_candidates

DEFAULT_TARGET = 0.99
DEFAULT_K = 10
DEFAULT_QUERIES = 200
#: the most candidates considered, as a fraction of the points and absolutely
BUDGET_FRACTION = 0.1
MAX_CANDIDATES = 4096
#: standard errors of the mean recall the chosen count must clear the target by
MARGIN_SE = 3.0
READ_BATCH = 1024

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Reference:
    """Where the queries and the exact answers come from: a dense vector of a collection on a backend."""

    backend: Backend
    collection: str
    vector: str = FULL
    #: ids never used (e.g. points a migration skipped: they are not in the target)
    exclude: frozenset = frozenset()


@dataclass
class Calibration:
    """What :func:`calibrate` found. ``candidates`` None: nothing to choose (one resolution)."""

    candidates: int | None
    k: int
    target: float
    rule: int
    recall: float | None
    queries: int
    tried: dict[int, float]
    held_out: dict[str, Any] = field(default_factory=dict)
    reference: str = ""

    def record(self) -> dict[str, Any] | None:
        """The entry stored under ``search`` in the compressor record (None: nothing to store)."""
        if self.candidates is None:
            return None
        return {"candidates": self.candidates, "k": self.k, "target": self.target, "recall": self.recall,
                "queries": self.queries, "held_out": self.held_out, "reference": self.reference}

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["tried"] = {str(c): r for c, r in sorted(self.tried.items())}
        return out


def _share(point_id: PointId, seed: int) -> float:
    """A point's place in [0, 1) for query sampling: stable across runs and engines."""
    return zlib.crc32(f"calibrate:{seed}:{point_id!r}".encode()) / 2**32


def _usable(x: np.ndarray) -> np.ndarray:
    return np.isfinite(x).all(axis=1) & x.any(axis=1)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _sample(ref: Reference, count: int, n: int, seed: int) -> tuple[list[PointId], np.ndarray, list[PointId], np.ndarray]:
    """Two disjoint held-out query sets of up to ``count`` points each: (ids, vectors) to choose on, to report on."""
    share = min(0.5, count / max(1, n))
    chosen: tuple[list, list] = ([], [])
    for points, _ in iterate_points(ref.backend, ref.collection, batch_size=READ_BATCH, with_vectors=[ref.vector]):
        for p in points:
            u = _share(p.id, seed)
            which = 0 if u < share else 1 if u < 2 * share else None
            if which is None or p.id in ref.exclude or ref.vector not in p.vectors or len(chosen[which]) >= count:
                continue  # a point without the vector (a hybrid collection's sparse-only one) is no query
            v = np.asarray(p.vectors[ref.vector], dtype=np.float32)
            if np.isfinite(v).all() and v.any():
                chosen[which].append((p.id, v))
    ids = [[i for i, _ in c] for c in chosen]
    vecs = [np.stack([v for _, v in c]) if c else np.empty((0, 0), np.float32) for c in chosen]
    return ids[0], vecs[0], ids[1], vecs[1]


def exact_neighbours(ref: Reference, query_ids: Sequence[PointId], queries: np.ndarray, k: int) -> list[list[PointId]]:
    """Each query's exact top-``k`` ids by cosine over the whole reference, itself excluded, best first
    (one streamed pass; memory: queries × batch scores)."""
    q = _unit(queries.astype(np.float32))
    keep = k + 1  # the query itself is among its own neighbours
    best_scores = np.full((len(q), keep), -np.inf, dtype=np.float32)
    best_ids = np.full((len(q), keep), None, dtype=object)
    for points, _ in iterate_points(ref.backend, ref.collection, batch_size=READ_BATCH, with_vectors=[ref.vector]):
        points = [p for p in points if p.id not in ref.exclude and ref.vector in p.vectors]
        if not points:
            continue
        x = np.stack([np.asarray(p.vectors[ref.vector], dtype=np.float32) for p in points])
        ok = _usable(x)
        ids = np.empty(int(ok.sum()), dtype=object)
        ids[:] = [p.id for p, good in zip(points, ok) if good]
        scores = np.concatenate([best_scores, q @ _unit(x[ok]).T], axis=1)
        pool = np.concatenate([best_ids, np.broadcast_to(ids, (len(q), len(ids)))], axis=1)
        top = np.argpartition(-scores, min(keep, scores.shape[1]) - 1, axis=1)[:, :keep]
        best_scores, best_ids = np.take_along_axis(scores, top, 1), np.take_along_axis(pool, top, 1)
    order = np.argsort(-best_scores, axis=1, kind="stable")
    ranked = np.take_along_axis(best_ids, order, 1)
    return [[i for i in row if i is not None and i != qid][:k] for qid, row in zip(query_ids, ranked.tolist())]


def _measure(col: SmecCollection, query_ids: Sequence[PointId], queries: np.ndarray, exact: list[list[PointId]],
             k: int, candidates: int | None) -> tuple[list[float], list[float]]:
    """(recall@k of each query with the collection's search at ``candidates``, seconds of each search)."""
    recalls, seconds = [], []
    for qid, q, truth in zip(query_ids, queries, exact):
        t = time.perf_counter()
        hits = col.search(q, k=k + 1, candidates=candidates, with_payload=False)
        seconds.append(time.perf_counter() - t)
        got = [h.id for h in hits if h.id != qid][:k]
        if truth:
            recalls.append(len(set(truth) & set(got)) / len(truth))
    return recalls, seconds


def lower_bound(recalls: Sequence[float]) -> float:
    """Mean recall less :data:`MARGIN_SE` standard errors of the mean."""
    if not recalls:
        return 1.0
    r = np.asarray(recalls)
    return float(r.mean() - MARGIN_SE * r.std(ddof=1) / np.sqrt(len(r))) if len(r) > 1 else float(r.mean())


def smallest_passing(passes: Callable[[int], bool], start: int, low: int, high: int) -> int | None:
    """The smallest c in [low, high] with ``passes(c)``, for a monotone ``passes``: from ``start``,
    double up (or bisect down), then bisect. None when even ``high`` fails."""
    c = min(max(start, low), high)
    if passes(c):
        fail, ok = low - 1, c
    else:
        fail = c
        while True:
            if c >= high:
                return None
            c = min(2 * c, high)
            if passes(c):
                ok = c
                break
            fail = c
    while ok - fail > 1:
        mid = (fail + ok) // 2
        if passes(mid):
            ok = mid
        else:
            fail = mid
    return ok


def calibrate(col: SmecCollection, ref: Reference, *, target: float = DEFAULT_TARGET, k: int = DEFAULT_K,
              queries: int = DEFAULT_QUERIES, seed: int = 0, progress: Progress | None = None) -> Calibration:
    """Find the smallest coarse candidate count reaching mean recall@``k`` >= ``target`` (module doc)."""
    if not 0.0 < target <= 1.0:
        raise CalibrationError(f"the recall target must be within (0, 1], found {target}")
    n = ref.backend.count(ref.collection) - len(ref.exclude)
    count = max(1, min(queries, n // 4))
    choose_ids, choose, report_ids, report = _sample(ref, count, n, seed)
    if not choose_ids or not report_ids:
        raise CalibrationError(f"{ref.collection!r} has too few usable points ({n}) to draw held-out queries from")
    exact = exact_neighbours(ref, [*choose_ids, *report_ids], np.concatenate([choose, report]), k)
    exact_choose, exact_report = exact[:len(choose_ids)], exact[len(choose_ids):]
    coarse = col.resolutions[-1]
    layout = col.schema.layout
    rule = default_candidates(k, col.encoder.input_dim, coarse.dim, None if layout is None else layout.coarse.quantization)
    described = f"exact full-dim cosine search over {ref.collection}.{ref.vector or '(unnamed)'}"
    if len(col.resolutions) == 1:  # nothing re-scores: the count is the result count
        recalls, seconds = _measure(col, report_ids, report, exact_report, k, None)
        return Calibration(None, k, target, rule, None, len(choose_ids), {},
                           _held_out(recalls, seconds, report_ids), described)
    high = max(k + 1, min(MAX_CANDIDATES, math.ceil(BUDGET_FRACTION * n) - 1))
    tried: dict[int, float] = {}
    bounds: dict[int, float] = {}

    def passes(c: int) -> bool:
        recalls = _measure(col, choose_ids, choose, exact_choose, k, c)[0]
        tried[c], bounds[c] = round(float(np.mean(recalls)), 4), lower_bound(recalls)
        if progress:
            progress(len(tried), 0)
        return bounds[c] >= target

    chosen = smallest_passing(passes, rule, k + 1, high)
    if chosen is None:
        raise CalibrationError(
            f"recall@{k} reaches {tried[high]:.4f} (less {MARGIN_SE:g} standard errors: {bounds[high]:.4f}) at "
            f"{high} coarse candidates (the most allowed: "
            f"{BUDGET_FRACTION:.0%} of {n:,} points), below the target {target}: store a wider coarse "
            "resolution, keep the full vector, or lower the target"
        )
    recalls, seconds = _measure(col, report_ids, report, exact_report, k, chosen)
    return Calibration(chosen, k, target, rule, tried[chosen], len(choose_ids), tried,
                       _held_out(recalls, seconds, report_ids), described)


def _held_out(recalls: list[float], seconds: list[float], ids: Sequence[PointId]) -> dict[str, Any]:
    """Recall@k (with the standard error of that mean) and latency of the search on the report set."""
    ms, r = np.asarray(seconds) * 1e3, np.asarray(recalls or [1.0])
    return {"queries": len(ids), "recall": round(float(r.mean()), 4),
            "recall_se": round(float(r.std(ddof=1) / np.sqrt(len(r))) if len(r) > 1 else 0.0, 4),
            "p50_ms": round(float(np.median(ms)), 3), "p99_ms": round(float(np.percentile(ms, 99)), 3)}


def store(col: SmecCollection, result: Calibration) -> None:
    """Record ``result`` as ``col``'s search default (or remove a stale one when there is nothing to record)."""
    col.record_search_defaults(result.record())
