"""Recall@10 of coarse-to-fine search on the target against exact full-dim search over the source.

The queries are held-out source points, picked by a hash of their id (:class:`QueryPicker`; the
plan's survey picks them while it reads every point anyway). The exact top-10 of every query is
accumulated page by page during verification's one pass over the source (:class:`TopK`, one
matrix product per page for all queries); ranges verified apart merge their :class:`TopK`. The
target's searches only need the finished target, so :class:`Searches` runs them in a thread while
the pass reads. Each query is left out of both result lists, and the coarse candidate budget stays
below 10 % of the collection (:func:`recall_budget`), so that keeping every point as a candidate
cannot hide a bad compressor.
"""

from __future__ import annotations

import heapq
import json
import math
import threading
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np

from smec_vdb.backend import PointId
from smec_vdb.migrate.compare import unit_rows
from smec_vdb.search import default_candidates

if TYPE_CHECKING:
    from smec_vdb.collection import SmecCollection

RECALL_K = 10
#: the recall check's coarse candidates stay below this fraction of the collection
BUDGET_FRACTION = 0.1
#: searches in flight at once (a server answers them in parallel)
SEARCH_THREADS = 4


def recall_budget(n: int, k: int, input_dim: int, coarse_dim: int) -> int:
    """Coarse candidates for the recall check: the search default, capped below 10 % of the ``n`` points
    (so that keeping every point as a candidate cannot hide a bad compressor), at least k + 1.

    On large collections the default (a few hundred) is far below the cap; the cap binds under a few
    thousand points."""
    cap = math.ceil(BUDGET_FRACTION * n) - 1
    return max(k + 1, min(default_candidates(k + 1, input_dim, coarse_dim), cap))


@dataclass(frozen=True)
class QuerySample:
    """Held-out source points: ids, their (raw) migrated vectors, and how many usable points they were
    drawn from (the collection size the candidate budget is judged against)."""

    ids: list[PointId]
    vectors: np.ndarray
    population: int


class QueryPicker:
    """The ``n`` usable points with the smallest ``crc32(seed:id)``: a uniform sample that does not depend
    on the order points are seen in (memory: ``n`` vectors)."""

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed = n, seed
        self.seen = 0
        self._heap: list[tuple[int, int, PointId, np.ndarray]] = []  # (-hash, tiebreak, id, vector)

    def offer(self, ids: Sequence[PointId], vectors: np.ndarray) -> None:
        """Usable points (finite, non-zero vectors) of one page."""
        for point_id, row in zip(ids, vectors):
            entry = (-zlib.crc32(f"{self.seed}:{point_id!r}".encode()), self.seen, point_id,
                     np.array(row, dtype=np.float32))
            self.seen += 1
            if len(self._heap) < self.n:
                heapq.heappush(self._heap, entry)
            elif entry[:2] > self._heap[0][:2]:
                heapq.heapreplace(self._heap, entry)

    def sample(self, width: int) -> QuerySample:
        chosen = sorted(self._heap, key=lambda e: (-e[0], e[1]))
        vectors = np.stack([e[3] for e in chosen]) if chosen else np.empty((0, width), dtype=np.float32)
        return QuerySample([e[2] for e in chosen], vectors, self.seen)


class TopK:
    """The exact top ``k`` by cosine of each query over the pages added so far (vectorised over queries)."""

    def __init__(self, queries: np.ndarray, k: int) -> None:
        self.queries = unit_rows(queries)
        self.k = k
        self.scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        self.ids = np.full((len(queries), k), None, dtype=object)

    def add(self, ids: Sequence[PointId], vectors: np.ndarray) -> None:
        """Usable source points of one page and their raw vectors."""
        if not len(ids) or not len(self.queries):
            return
        page_ids = np.empty(len(ids), dtype=object)
        page_ids[:] = list(ids)
        scores = self.queries @ unit_rows(vectors).T
        self._keep(scores, np.broadcast_to(page_ids, scores.shape))

    def merge(self, other: "TopK") -> "TopK":
        """Fold in the top ``k`` another part of the source found for the same queries."""
        self._keep(other.scores, other.ids)
        return self

    def _keep(self, scores: np.ndarray, ids: np.ndarray) -> None:
        merged = np.concatenate([self.scores, scores], axis=1)
        merged_ids = np.concatenate([self.ids, ids], axis=1)
        best = np.argpartition(-merged, self.k - 1, axis=1)[:, : self.k]
        self.scores = np.take_along_axis(merged, best, axis=1)
        self.ids = np.take_along_axis(merged_ids, best, axis=1)

    def ranked(self, row: int) -> list[PointId]:
        """Query ``row``'s ids, best first."""
        order = np.argsort(-self.scores[row], kind="stable")
        return [self.ids[row, j] for j in order if self.ids[row, j] is not None]

    def to_json(self) -> str:
        return json.dumps({"scores": self.scores.tolist(), "ids": self.ids.tolist()})

    @classmethod
    def from_json(cls, text: str, queries: np.ndarray, k: int) -> "TopK":
        data = json.loads(text)
        top = cls(queries, k)
        if data["ids"]:
            top.scores = np.asarray(data["scores"], dtype=np.float32).reshape(len(queries), k)
            top.ids = np.empty((len(queries), k), dtype=object)
            top.ids[:] = data["ids"]
        return top


class Searches:
    """Coarse-to-fine searches of the target for every query, run by ``threads`` threads in the background
    (the target must be final): a server answers several at once."""

    def __init__(self, col: SmecCollection, queries: QuerySample, budget: int, threads: int = SEARCH_THREADS) -> None:
        self.results: list[list[PointId]] = [[] for _ in queries.ids]
        self.error: BaseException | None = None
        self._cancelled = threading.Event()
        self._next = iter(range(len(queries.ids)))
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(col, queries, budget), name="smec-recall", daemon=True)
                         for _ in range(max(1, min(threads, len(queries.ids))))]
        for thread in self._threads:
            thread.start()

    def _run(self, col: SmecCollection, queries: QuerySample, budget: int) -> None:
        try:
            while not self._cancelled.is_set():
                with self._lock:
                    row = next(self._next, None)
                if row is None:
                    return
                hits = col.search(queries.vectors[row], k=RECALL_K + 1, candidates=budget, with_payload=False)
                self.results[row] = [h.id for h in hits]
        except BaseException as e:  # noqa: BLE001 - raised by wait()
            self.error = e
            self._cancelled.set()

    def cancel(self) -> None:
        """Stop after the search in flight (the verification failed or was stopped)."""
        self._cancelled.set()
        for thread in self._threads:
            thread.join()

    def wait(self) -> list[list[PointId]]:
        for thread in self._threads:
            thread.join()
        if self.error is not None:
            raise self.error
        return self.results


def recall(queries: QuerySample, exact: TopK, found: Sequence[Sequence[PointId]]) -> tuple[float, int]:
    """(mean recall@10, queries counted): each query's own id left out of both lists."""
    recalls = []
    for row, point_id in enumerate(queries.ids):
        truth = [i for i in exact.ranked(row) if i != point_id][:RECALL_K]
        got = [i for i in found[row] if i != point_id][:RECALL_K]
        if truth:
            recalls.append(len(set(truth) & set(got)) / len(truth))
    return (float(np.mean(recalls)) if recalls else 1.0), len(recalls)


def query_budget(col: SmecCollection, queries: QuerySample) -> int:
    return recall_budget(queries.population, RECALL_K, col.compressor.input_dim, col.resolutions[-1].dim)


def empty_topk(queries: QuerySample) -> TopK:
    return TopK(queries.vectors, RECALL_K + 1)
