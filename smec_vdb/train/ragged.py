"""Ragged ranking candidates: each labelled query's real candidates, no padding, and the ordered
pairs of the rank loss (SMEC paper §4.2, eq. 8) generated per step in O(pairs).

:class:`~smec_vdb.train.labels.RankingExamples` pads every query to the widest one (judged docs +
hard negatives). A step that scored padded rows and built the (Q, C, C) pair tensor of
:class:`~smec_vdb.train.rank_loss.RankLoss` paid for the widest query on every query of the batch:
NFCorpus' train split (a query with 1,363 judged docs) took 8.8 GB. Here each query keeps its real
candidates sorted by grade (descending), so the pairs (j, k) with y_j > y_k are, for each candidate j,
exactly the candidates after its grade group: a step holds the pairs it uses and nothing else.

Example::

    ragged = RaggedCandidates.from_padded(candidates, grades, mask)
    step = ragged.step(query_rows)          # the step's candidate docs, their query, and the pairs
    scores = ...                            # (len(step.docs),) cosine of each candidate to its query
    loss = step.rank_loss(scores, scale=20.0)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F


def ragged_arange(starts: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """``cat([arange(s, s + c) for s, c in zip(starts, counts)])`` without a Python loop."""
    counts = counts.to(torch.long)
    offsets = torch.cumsum(counts, 0) - counts
    total = int(counts.sum())
    return torch.arange(total, device=starts.device) + torch.repeat_interleave(starts - offsets, counts, output_size=total)


@dataclass(frozen=True)
class RankingStep:
    """The labelled part of one step: candidate ``docs`` (flat), the step-local query of each
    (``owner``), and the pairs (``better``, ``worse``: positions in ``docs``) with their ``gain``."""

    docs: torch.Tensor
    owner: torch.Tensor
    better: torch.Tensor
    worse: torch.Tensor
    gain: torch.Tensor

    def rank_loss(self, scores: torch.Tensor, scale: float) -> torch.Tensor:
        """Eq. 8 over the step's pairs: mean of gain · log(1 + exp(scale · (s_worse − s_better)))."""
        if self.gain.numel() == 0:
            return scores.sum() * 0.0
        return (self.gain * F.softplus(scale * (scores[self.worse] - scores[self.better]))).sum() / self.gain.numel()


@dataclass(frozen=True)
class RaggedCandidates:
    """Per query q: candidates ``docs[start[q] : start[q] + count[q]]`` sorted by grade (descending), their
    ``grades``, and for each candidate the query-local position ``lower`` where strictly lower grades begin."""

    docs: torch.Tensor
    grades: torch.Tensor
    lower: torch.Tensor
    start: torch.Tensor
    count: torch.Tensor

    @classmethod
    def from_padded(cls, candidates: torch.Tensor, grades: torch.Tensor, mask: torch.Tensor) -> "RaggedCandidates":
        """From (Q, C) padded candidates, grades and mask (False = padding)."""
        device = candidates.device
        # real candidates first, then by grade descending (stable: the examples' order within a grade)
        key = torch.where(mask, grades.to(torch.float64), float("-inf"))
        order = torch.sort(key, dim=1, descending=True, stable=True).indices
        count = mask.sum(dim=1)
        keep = torch.arange(candidates.shape[1], device=device).unsqueeze(0) < count.unsqueeze(1)
        docs = candidates.gather(1, order)[keep]
        sorted_grades = grades.gather(1, order)[keep].to(torch.float32)
        start = torch.cumsum(count, 0) - count
        owner = torch.repeat_interleave(torch.arange(len(count), device=device), count)
        return cls(docs, sorted_grades, _group_ends(sorted_grades, owner, start), start, count)

    def step(self, query_rows: torch.Tensor) -> RankingStep:
        """The candidates and ordered pairs of ``query_rows`` (row indices of the examples)."""
        count = self.count[query_rows]
        index = ragged_arange(self.start[query_rows], count)
        owner = torch.repeat_interleave(torch.arange(len(query_rows), device=count.device), count,
                                        output_size=index.numel())
        base = torch.cumsum(count, 0) - count               # where each query's candidates start in the step
        lower = self.lower[index]
        n_worse = count[owner] - lower                      # pairs in which each candidate is the better one
        better = torch.repeat_interleave(torch.arange(index.numel(), device=count.device), n_worse)
        worse = ragged_arange(base[owner] + lower, n_worse)
        grades = self.grades[index]
        return RankingStep(self.docs[index], owner, better, worse, grades[better] - grades[worse])


def _group_ends(grades: torch.Tensor, owner: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
    """For flat candidates sorted by grade (descending) within each query: the query-local position
    after each candidate's grade group (= where strictly lower grades begin)."""
    n = grades.numel()
    if n == 0:
        return torch.zeros(0, dtype=torch.long, device=grades.device)
    # a group ends where the next item has another grade or belongs to another query
    boundary = torch.ones(n, dtype=torch.bool, device=grades.device)
    boundary[:-1] = (grades[1:] != grades[:-1]) | (owner[1:] != owner[:-1])
    ends = torch.nonzero(boundary).flatten() + 1            # flat end (exclusive) of each group
    group = torch.cumsum(boundary.to(torch.long), 0) - boundary.to(torch.long)  # group index of each item
    return ends[group] - start[owner]
