"""Held-out model selection (issue 12): the retrieval figure training stops on and keeps the best of.

* :class:`NeighbourRecall` (unsupervised): held-out corpus rows search the corpus; recall@10 of
  the compressed top-10 against the full-dim top-10 (the row itself excluded).
* :class:`HeldOutNDCG` (supervised): held-out training queries (or a dev split) search the whole
  corpus in the compressed space; nDCG@10 with the queries' graded judgements (linear gain,
  log2 discount, IDCG over the judged relevant docs, as in :mod:`smec_vdb.eval.metrics`).

Both take encoders ``docs(rows) -> (len(rows), d)`` (and ``queries(rows)``) so one criterion
serves every method; the outputs need not be normalised.

Example::

    crit = NeighbourRecall(teacher, val_rows, pool_rows)
    crit.score(lambda rows: model(x[rows]))   # in [0, 1]
"""

from __future__ import annotations

from typing import Callable

import torch
from torch.nn import functional as F

Encoder = Callable[[torch.Tensor], torch.Tensor]
CHUNK = 1024


def _top(queries: torch.Tensor, pool: torch.Tensor, k: int, exclude: torch.Tensor | None = None) -> torch.Tensor:
    """Top-``k`` pool positions per query row by dot product; ``exclude[i]`` (a pool position) is skipped."""
    out = []
    for start in range(0, queries.shape[0], CHUNK):
        sims = queries[start : start + CHUNK] @ pool.T
        if exclude is not None:
            part = exclude[start : start + CHUNK]
            ok = part >= 0
            sims[torch.nonzero(ok).flatten(), part[ok]] = float("-inf")
        out.append(sims.topk(min(k, pool.shape[0]), dim=1).indices)
    return torch.cat(out)


class NeighbourRecall:
    """recall@k of compressed search for held-out rows ``val_rows`` over ``pool_rows`` (teacher: full cosine)."""

    def __init__(self, teacher: torch.Tensor, val_rows: torch.Tensor, pool_rows: torch.Tensor, k: int = 10) -> None:
        self.name = f"recall@{k}"
        self.k, self.val_rows, self.pool_rows = k, val_rows, pool_rows
        position = torch.full((teacher.shape[0],), -1, dtype=torch.long, device=pool_rows.device)
        position[pool_rows] = torch.arange(pool_rows.numel(), device=pool_rows.device)
        self.self_position = position[val_rows]
        with torch.no_grad():
            self.truth = _top(teacher[val_rows], teacher[pool_rows], k, self.self_position)

    @torch.no_grad()
    def score(self, docs: Encoder, queries: Encoder | None = None) -> float:
        low_pool = F.normalize(docs(self.pool_rows), dim=1)
        low_val = F.normalize(docs(self.val_rows), dim=1)
        found = _top(low_val, low_pool, self.k, self.self_position)
        hits = (found.unsqueeze(2) == self.truth.unsqueeze(1)).any(dim=2).sum()
        return float(hits) / self.truth.numel()


class HeldOutNDCG:
    """nDCG@k of the queries ``query_rows`` over all ``n_docs`` corpus rows, from (Q, C) judged candidates."""

    def __init__(self, query_rows: torch.Tensor, candidates: torch.Tensor, grades: torch.Tensor,
                 mask: torch.Tensor, n_docs: int, k: int = 10) -> None:
        self.name = f"ndcg@{k}"
        self.k, self.query_rows = k, query_rows
        self.doc_rows = torch.arange(n_docs, device=query_rows.device)
        relevant = mask[query_rows] & (grades[query_rows] > 0)
        self.relevant_docs = torch.where(relevant, candidates[query_rows], -1)
        self.relevant_grades = torch.where(relevant, grades[query_rows], 0.0)
        self.discount = 1.0 / torch.log2(torch.arange(k, device=query_rows.device, dtype=torch.float32) + 2)
        ideal = self.relevant_grades.sort(dim=1, descending=True).values[:, :k]
        self.idcg = (ideal * self.discount[: ideal.shape[1]]).sum(dim=1)

    @torch.no_grad()
    def score(self, docs: Encoder, queries: Encoder | None = None) -> float:
        if queries is None:
            raise ValueError("nDCG needs a query encoder")
        low_docs = F.normalize(docs(self.doc_rows), dim=1)
        low_q = F.normalize(queries(self.query_rows), dim=1)
        top = _top(low_q, low_docs, self.k)
        match = top.unsqueeze(2) == self.relevant_docs.unsqueeze(1)          # (Q, k, R)
        gains = (match * self.relevant_grades.unsqueeze(1)).sum(dim=2)       # (Q, k)
        dcg = (gains * self.discount[: gains.shape[1]]).sum(dim=1)
        return float((dcg / self.idcg.clamp_min(1e-12)).mean())


def held_out_split(n: int, fraction: float, generator: torch.Generator, cap: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Random (train, held-out) indices of ``n`` items: round(n·fraction) held out (≥ 1, ≤ ``cap``)."""
    perm = torch.randperm(n, generator=generator)
    n_val = max(1, min(round(n * fraction), n - 1))
    if cap is not None:
        n_val = min(n_val, cap)
    return perm[n_val:], perm[:n_val]


def sample_pool(n: int, cap: int, keep: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """All ``n`` rows, or ``cap`` of them (always including ``keep``) when n > cap: bounds the cost of a score."""
    if n <= cap:
        return torch.arange(n)
    others = torch.ones(n, dtype=torch.bool)
    others[keep] = False
    rest = torch.nonzero(others).flatten()
    extra = rest[torch.randperm(rest.numel(), generator=generator)[: max(0, cap - keep.numel())]]
    return torch.sort(torch.cat([keep, extra])).values


__all__ = ["HeldOutNDCG", "NeighbourRecall", "held_out_split", "sample_pool"]
