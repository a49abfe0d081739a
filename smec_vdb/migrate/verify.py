"""Compare a target with its source over every point, streamed, and measure recall.

One read pass over the source (in batches; the target's points of each batch are fetched by id),
then one pass over the target's ids (the source is asked for each batch). Memory is bounded by the
batch size plus the differences found. Per point (issue 10 §4):

- ids: every usable source point is in the target, and nothing else is;
- content: a hash of the payload (JSON, keys sorted: ``1`` and ``1.0`` differ, nested values and
  nulls count) and of the sparse vectors, exact;
- carried dense vectors (multivectors, uint8, float16 alike) bit-equal to the source's, and the stored
  ``full`` vector bit-equal to the one written (the compressor's unit row);
- each compressed resolution equal to a fresh encode within :data:`VECTOR_ATOL` (a projection's
  float32 sums depend on the batch it was computed in).

Exact, except where the target engine changes values itself, as the plan's probe found
(:mod:`smec_vdb.migrate.probe`, ``info.fidelity``): a payload float within the engine's rounding
(qdrant-edge: 1 ulp) and a cosine vector within the engine's own normalisation are counted under the
engine's named class (``Drift.classes``, reported, not a difference); anything beyond is a difference.

:func:`diff` serves verification, ``check`` (drift report) and re-sync (the callback rewrites the
differing points as they are found). :func:`recall_at_10` then measures coarse-to-fine on the
target against exact full-dim search over the source with a candidate budget of
:func:`recall_budget` (below 10 % of the collection).
"""

from __future__ import annotations

import hashlib
import json
import math
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from smec_vdb.backend import Backend, Point, PointId, Resolution, iterate_points
from smec_vdb.collection import FULL, SmecCollection
from smec_vdb.migrate.options import MigrationEvent, MigrationInterrupted, ProgressCallback, StopCheck
from smec_vdb.migrate.plan import SourceInfo, stack
from smec_vdb.migrate.points import skipped_rows
from smec_vdb.migrate.probe import COSINE_VECTORS, PAYLOAD_FLOATS, Fidelity, ulps_apart
from smec_vdb.retry import retrying
from smec_vdb.search import default_candidates

VECTOR_ATOL = 1e-4
RECALL_K = 10
#: the recall check's coarse candidates stay below this fraction of the collection
BUDGET_FRACTION = 0.1
FIRST_IDS = 5


def content_hash(point: Point, sparse: Sequence[str]) -> str:
    """sha256 of the payload and sparse vectors, exact: JSON with sorted keys keeps int vs float."""
    body = [point.payload, {n: [list(v.indices), list(v.values)] for n, v in sorted(point.sparse.items()) if n in sparse}]
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


def same_content(a: Any, b: Any, ulps: int = 0) -> bool:
    """Equal JSON values, types included (an int is not a float), floats at most ``ulps`` doubles apart."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or ulps_apart(a, b) <= ulps
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_content(a[k], b[k], ulps) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same_content(x, y, ulps) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def _close(a: np.ndarray, b: np.ndarray, cosine: bool) -> bool:
    a, b = np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)
    if a.shape != b.shape:
        return False
    if cosine:
        a, b = _unit(a), _unit(b)
    return bool(np.allclose(a, b, atol=VECTOR_ATOL, rtol=0))


def _same_vector(written: np.ndarray, got: np.ndarray | None, cosine: bool, fidelity: Fidelity | None) -> str | None:
    """"" when ``got`` is bit-equal to what was ``written``; the engine's class name when the engine's own
    normalisation of a cosine vector explains the difference; None when they differ."""
    a = np.asarray(written, dtype=np.float32)
    if got is None or a.shape != np.shape(got):
        return None
    b = np.asarray(got, dtype=np.float32)
    if np.array_equal(a, b):
        return ""
    if cosine and fidelity is not None and fidelity.cosine_atol and bool(
            np.abs(_unit(a) - b).max() <= fidelity.cosine_atol):
        return COSINE_VECTORS
    return None


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

    def note_class(self, name: str) -> None:
        self.classes[name] = self.classes.get(name, 0) + 1

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
        for name, n in other.classes.items():
            self.classes[name] = self.classes.get(name, 0) + n
        return self

    def as_dict(self) -> dict[str, Any]:
        return {"points_checked": self.checked, "skipped": len(self.skipped), "differences": dict(self.kinds),
                "first_ids": {k: list(v) for k, v in self.first.items()}, "target_count": self.target_count,
                "engine_classes": dict(self.classes)}


#: called with the source points of one batch that are missing or differ in the target
Repair = Callable[[list[Point], np.ndarray], None]


def diff(source: Backend, target: Backend, info: SourceInfo, col: SmecCollection, batch: int, *,
         repair: Repair | None = None, delete_extra: Callable[[list[PointId]], None] | None = None,
         progress: ProgressCallback | None = None, should_stop: StopCheck | None = None,
         phase: str = "verify", source_pages: Iterable[list[Point]] | None = None, target_pass: bool = True) -> Drift:
    """Every difference between source and target (see module doc), streamed.

    ``repair`` receives each batch's missing/differing source points with their vectors; points
    whose migrated vector is NaN/inf/zero are expected absent (skipped). ``delete_extra`` receives
    target ids absent from the source. ``source_pages``: the source batches to compare (default: the
    whole source); ``target_pass`` False leaves out the pass over the target's ids (a distributed
    verification compares ranges of the source in parallel, then makes that pass once).
    """
    source, target = retrying(source), retrying(target)  # every call below is a read
    drift = Drift()
    carried = list(info.carried)
    names = {r.name for r in col.resolutions}
    done = 0
    if source_pages is None:
        source_pages = (p for p, _ in iterate_points(source, info.name, batch_size=batch, with_vectors=info.read_vectors))
    for points in source_pages:
        if should_stop and should_stop():
            raise MigrationInterrupted(f"interrupted during {'verification' if phase == 'verify' else phase}; "
                                      "run the same command again to resume")
        x = stack(points, info.vector, info.width)
        bad = set(skipped_rows(points, x, info, None).tolist())
        usable = [i for i in range(len(points)) if i not in bad]
        drift.skipped.extend(points[i].id for i in bad)
        stored = {p.id: p for p in target.retrieve(col.name, [points[i].id for i in usable], with_vectors=True)}
        for i in bad:
            if target.retrieve(col.name, [points[i].id], with_vectors=False):
                drift.note("unexpected (unusable source vector)", points[i].id)
        encodable = [i for i in usable if info.vector in points[i].vectors]  # sparse-only points have no encodings
        encoded = col.encode(x[encodable]) if encodable else {}
        rows = {i: row for row, i in enumerate(encodable)}
        to_repair: list[int] = []
        for i in usable:
            p = points[i]
            got = stored.get(p.id)
            mine = {n: m[rows[i]] for n, m in encoded.items()} if i in rows else {}
            kind, classes = _difference(p, got, info, carried, names, mine, bool(col.schema.partitions))
            for name in classes:
                drift.note_class(name)
            if kind is not None:
                drift.note(kind, p.id)
                to_repair.append(i)
        drift.checked += len(usable)
        if repair is not None and to_repair:
            repair([points[i] for i in to_repair], x[to_repair])
        done += len(points)
        if progress:
            progress(MigrationEvent(phase, done, info.count))
    for points, _ in iterate_points(target, col.name, batch_size=batch, with_vectors=False) if target_pass else ():
        drift.target_count += len(points)
        present = {p.id for p in source.retrieve(info.name, [p.id for p in points if _fits(info, p.id)],
                                                 with_vectors=False)}
        extra = [p.id for p in points if p.id not in present]
        for point_id in extra:
            drift.note("unexpected (not in source)", point_id)
        if delete_extra is not None and extra:
            delete_extra(extra)
    return drift


def _fits(info: SourceInfo, point_id: PointId) -> bool:
    kind = info.schema.id_type
    return kind == "any" or (kind == "int") == isinstance(point_id, int)


def _difference(p: Point, got: Point | None, info: SourceInfo, carried: Sequence[Resolution], names: set[str],
                encoded: dict[str, np.ndarray], partitioned: bool) -> tuple[str | None, set[str]]:
    """The first way the stored point differs from the source point (None: identical), and the engine
    classes its values fall in (see the module doc)."""
    if got is None:
        return "missing", set()
    fidelity: Fidelity | None = info.fidelity
    classes: set[str] = set()
    if partitioned and p.partition != got.partition:
        return "partition differs", classes
    if content_hash(p, info.sparse) != content_hash(got, info.sparse):
        ulps = fidelity.payload_float_ulps if fidelity is not None else 0
        if not (ulps and same_content(p.payload, got.payload, ulps) and p.sparse == got.sparse):
            return "payload or sparse vectors differ", classes
        classes.add(PAYLOAD_FLOATS)
    for r in carried:
        if (r.name in p.vectors) != (r.name in got.vectors):
            return "carried vector differs", classes
        if r.name in p.vectors:
            same = _same_vector(p.vectors[r.name], got.vectors[r.name], r.distance == "cosine", fidelity)
            if same is None:
                return "carried vector differs", classes
            if same:
                classes.add(same)
    if info.vector not in p.vectors:  # carried without compressed vectors: the target must have none either
        return ("compressed vector present without a source vector" if names & set(got.vectors) else None), classes
    if FULL in names:
        same = _same_vector(encoded[FULL], got.vectors.get(FULL), True, fidelity)
        if same is None:
            return "full vector differs", classes
        if same:
            classes.add(same)
    for name, vector in encoded.items():
        if name != FULL and not _close(vector, got.vectors.get(name, np.empty(0)), False):
            return "encoding differs from a fresh encode", classes
    return None, classes


def recall_budget(n: int, k: int, input_dim: int, coarse_dim: int) -> int:
    """Coarse candidates for the recall check: the search default, capped below 10 % of the ``n`` points
    (so that keeping every point as a candidate cannot hide a bad compressor), at least k + 1.

    On large collections the default (a few hundred) is far below the cap; the cap binds under a few
    thousand points."""
    cap = math.ceil(BUDGET_FRACTION * n) - 1
    return max(k + 1, min(default_candidates(k + 1, input_dim, coarse_dim), cap))


def _is_query(point_id: PointId, seed: int, fraction: float) -> bool:
    return zlib.crc32(f"{seed}:{point_id!r}".encode()) / 2**32 < fraction


def recall_at_10(source: Backend, info: SourceInfo, col: SmecCollection, n_queries: int, seed: int, batch: int,
                 skipped: set, progress: ProgressCallback | None = None, should_stop: StopCheck | None = None
                 ) -> tuple[float, int, int]:
    """(recall@10, queries, budget): held-out source points as queries (each excluded from both result
    lists), exact top-10 by streaming brute force over the source's normalised vectors (memory:
    queries × batch), against the target's coarse-to-fine search with :func:`recall_budget` candidates."""
    source = retrying(source)
    k = RECALL_K
    n = info.count - len(skipped)
    fraction = min(1.0, n_queries / max(1, n))
    q_ids: list[PointId] = []
    q_vecs: list[np.ndarray] = []
    for points, _ in iterate_points(source, info.name, batch_size=batch, with_vectors=[info.vector]):
        for p in points:
            if (p.id not in skipped and info.vector in p.vectors and _is_query(p.id, seed, fraction)
                    and len(q_ids) < n_queries):
                q_ids.append(p.id)
                q_vecs.append(p.vectors[info.vector])
    if not q_ids:
        return 1.0, 0, 0
    queries = _unit(np.stack(q_vecs))
    best_scores = np.full((len(q_ids), k + 1), -np.inf, dtype=np.float32)
    best_ids: list[list[PointId]] = [[None] * (k + 1) for _ in q_ids]  # type: ignore[list-item]
    for points, _ in iterate_points(source, info.name, batch_size=batch, with_vectors=[info.vector]):
        points = [p for p in points if p.id not in skipped and info.vector in p.vectors]
        if not points:
            continue
        scores = queries @ _unit(stack(points, info.vector, info.width)).T
        for qi in range(len(q_ids)):
            merged = np.concatenate([best_scores[qi], scores[qi]])
            order = np.argsort(-merged, kind="stable")[: k + 1]
            pool = best_ids[qi] + [p.id for p in points]
            best_ids[qi] = [pool[j] for j in order]
            best_scores[qi] = merged[order]
    budget = recall_budget(n, k, col.compressor.input_dim, col.resolutions[-1].dim)
    recalls = []
    for qi, (qid, q) in enumerate(zip(q_ids, q_vecs)):
        if should_stop and should_stop():
            raise MigrationInterrupted("interrupted during verification; run the same command again to resume")
        exact = [i for i in best_ids[qi] if i is not None and i != qid][:k]
        got = [h.id for h in col.search(q, k=k + 1, candidates=budget, with_payload=False) if h.id != qid][:k]
        if exact:
            recalls.append(len(set(exact) & set(got)) / len(exact))
        if progress:
            progress(MigrationEvent("recall", qi + 1, len(q_ids)))
    return (float(np.mean(recalls)) if recalls else 1.0), len(recalls), budget


def verify(source: Backend, target: Backend, info: SourceInfo, col: SmecCollection, *, min_recall: float,
           n_queries: int, seed: int, batch: int, progress: ProgressCallback | None = None,
           should_stop: StopCheck | None = None, drift: Drift | None = None) -> dict[str, Any]:
    """The full comparison (:func:`diff`, or its result ``drift`` when made elsewhere) and recall@10;
    ``passed`` only if no difference and recall >= min_recall."""
    if drift is None:
        drift = diff(source, target, info, col, batch, progress=progress, should_stop=should_stop)
    recall, n_q, budget = recall_at_10(source, info, col, n_queries, seed, batch, set(drift.skipped), progress,
                                       should_stop)
    problems = []
    if not drift.clean:
        problems.append(f"{drift.describe()}; run the same migrate command again to rewrite only these points")
    if recall < min_recall:
        problems.append(f"recall@10 {recall:.4f} < min_recall {min_recall} (budget {budget} candidates): store a "
                        "larger dim or more dims, or lower min_recall; restart retrains")
    expected = drift.checked
    return {
        "passed": not problems,
        "summary": ("verification passed" if not problems else "verification failed: " + " | ".join(problems)) + (
            f" (values the target engine changed itself, by class: {drift.classes})" if drift.classes else ""),
        "count_source": info.count,
        "count_target": drift.target_count,
        "points_expected": expected,
        **drift.as_dict(),
        "recall_at_10": round(recall, 4),
        "recall_queries": n_q,
        "recall_candidates": budget,
        "budget_rule": f"min(search default, ceil({BUDGET_FRACTION:.0%} of N) - 1), at least k+1",
        "min_recall": min_recall,
        "reference": "exact full-dim cosine search over the source (streamed)",
    }
