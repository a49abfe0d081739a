"""The loss of one training step, as a dict of named parts the trainer sums and logs.

Every trained method (SMEC, Matryoshka-Adaptor, Search-Adaptor, the linear adaptor, ADS
selection) hands the step a *model*: ``model(doc_rows, query_rows) -> Outputs`` with one output
tensor per trained dim. The parts, each enabled by a weight in :class:`LossTerms`:

* ``similarity`` — eq. 7: |cos_full − cos_low| over each anchor's top-k neighbours, taken from
  the S-XBM memory of frozen inputs (§3.4) or from the batch;
* ``pairs`` — the same over all in-batch pairs (Matryoshka-Adaptor's pairwise loss);
* ``order`` — neighbour ordering: ``pairwise`` (the rank loss of eq. 8 with the teacher cosines as
  grades, over the anchor's neighbours and K other batch items as negatives) or ``listwise`` (KL between the softmaxed teacher and student cosines);
* ``reconstruction`` — mean |f(e)| of an adapter's correction (Matryoshka-/Search-Adaptor);
* ``rank`` — eq. 8 over each labelled query's real candidates (ragged, :mod:`smec_vdb.train.ragged`).
  With labels the unsupervised parts are scaled by α (eq. 9: L_rank + α·L_unsup).

A step computes each distinct row's output once (anchors, neighbours and candidates share rows) and
the student cosines as one (B, U) product of the anchors with those rows.

Each part is summed over the trained dims (eq. 1 with c_m = 1).

Example::

    objective = Objective(data, config, LossTerms(similarity=1.0, order="pairwise"))
    parts = objective(model, anchors, query_rows)     # {'similarity': …, 'order': …}
    sum(parts.values()).backward()
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch.nn import functional as F

from smec_vdb.errors import ConfigError
from smec_vdb.train.config import TrainConfig
from smec_vdb.train.data import TrainingData
from smec_vdb.train.memory import CrossBatchMemory
from smec_vdb.train.rank_loss import RankLoss
from smec_vdb.train.similarity_loss import NeighbourOrderLoss, SimilarityPreservationLoss

ORDER_TERMS = ("off", "pairwise", "listwise")


@dataclass
class Outputs:
    """Per trained dim: ``docs[i]`` (len(doc_rows), d_i), ``queries[i]`` (len(query_rows), d_i) or None;
    ``residual``: an adapter's correction f(e) on the doc rows (for the reconstruction term) or None."""

    docs: Sequence[torch.Tensor]
    queries: Sequence[torch.Tensor] | None = None
    residual: torch.Tensor | None = None


Model = Callable[[torch.Tensor, "torch.Tensor | None"], Outputs]


@dataclass(frozen=True)
class LossTerms:
    """Weights of the parts (0 = off); ``order`` is one of off / pairwise / listwise."""

    similarity: float = 1.0
    pairs: float = 0.0
    order: str = "off"
    order_weight: float = 1.0
    reconstruction: float = 0.0
    in_batch_neighbours: bool = False

    def __post_init__(self) -> None:
        if self.order not in ORDER_TERMS:
            raise ConfigError(f"order must be one of {', '.join(ORDER_TERMS)}, found {self.order!r}")


class Objective:
    def __init__(self, data: TrainingData, config: TrainConfig, terms: LossTerms) -> None:
        self.data, self.config, self.terms = data, config, terms
        self.similarity = SimilarityPreservationLoss()
        self.listwise = NeighbourOrderLoss(config.order_temperature)
        self.rank = RankLoss(config.rank_scale)
        self.memory = None
        if config.use_xbm and not terms.in_batch_neighbours:
            self.memory = CrossBatchMemory(data.teacher.shape[1], config.memory_size, device=data.teacher.device)

    @torch.no_grad()
    def neighbours(self, anchors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, K) teacher cosines and ids of each anchor's top-k neighbours: from S-XBM (after enqueueing
        the batch) or the batch. The cosines are the search's own (the memory holds the normalised
        teacher), so the loss needs no (B, K, D) gather of full-width neighbours."""
        full = self.data.teacher[anchors]
        if self.memory is not None:
            self.memory.enqueue(full, anchors)
            return self.memory.topk(full, self.config.memory_topk, query_ids=anchors)
        if anchors.numel() < 2:
            return (full * full).sum(dim=1, keepdim=True), anchors.unsqueeze(1)
        sims = full @ full.T
        sims.fill_diagonal_(-math.inf)
        top = sims.topk(min(self.config.memory_topk, anchors.numel() - 1), dim=1)
        return top.values, anchors[top.indices]

    def __call__(self, model: Model, anchors: torch.Tensor, query_rows: torch.Tensor | None) -> dict[str, torch.Tensor]:
        d, t = self.data, self.terms
        teacher_nbr, neighbours = self.neighbours(anchors)
        b, k = neighbours.shape
        labelled = d.candidates.step(query_rows) if (query_rows is not None and query_rows.numel() > 0
                                                     and d.candidates is not None) else None
        rows = [anchors, neighbours.reshape(-1)] + ([labelled.docs] if labelled is not None else [])
        unique, inverse = torch.unique(torch.cat(rows), return_inverse=True)
        out = model(unique, query_rows if labelled is not None else None)
        at_anchor, at_neighbour, at_candidate = inverse[:b], inverse[b : b + b * k].view(b, k), inverse[b + b * k :]
        full_a = d.teacher[anchors]
        teacher_batch = full_a @ full_a.T
        off_diagonal = ~torch.eye(b, dtype=torch.bool, device=anchors.device)
        if t.order == "pairwise":  # the neighbours, then up to K other batch items as negatives
            others = torch.arange(min(b, k), device=anchors.device)
            teacher_pairwise = torch.cat([teacher_nbr, teacher_batch[:, others]], dim=1)
            pairwise_valid = torch.cat([torch.ones_like(teacher_nbr, dtype=torch.bool), off_diagonal[:, others]], dim=1)
        parts: dict[str, torch.Tensor] = {}

        def add(name: str, value: torch.Tensor) -> None:
            parts[name] = parts[name] + value if name in parts else value

        for i, low in enumerate(out.docs):
            unit = F.normalize(low, dim=1)                   # (U, d): each distinct row once
            to_rows = unit[at_anchor] @ unit.T               # (B, U) student cosines of the anchors
            student_nbr = to_rows.gather(1, at_neighbour)    # (B, K)
            student_batch = to_rows[:, at_anchor]            # (B, B)
            if t.similarity:
                add("similarity", t.similarity * self.similarity.gap(teacher_nbr, student_nbr))
            if t.pairs and b > 1:
                add("pairs", t.pairs * (teacher_batch - student_batch).abs()[off_diagonal].mean())
            if t.order == "pairwise":
                student = torch.cat([student_nbr, student_batch[:, others]], dim=1)
                add("order", t.order_weight * self.rank(student, teacher_pairwise, pairwise_valid))
            elif t.order == "listwise":
                valid = torch.cat([torch.ones_like(teacher_nbr, dtype=torch.bool), off_diagonal], dim=1)
                student = torch.cat([student_nbr, student_batch], dim=1)
                add("order", t.order_weight * self.listwise(torch.cat([teacher_nbr, teacher_batch], dim=1), student, valid))
            if labelled is not None:
                to_queries = F.normalize(out.queries[i], dim=1) @ unit.T   # (Q, U)
                add("rank", labelled.rank_loss(to_queries[labelled.owner, at_candidate], self.config.rank_scale))
        if t.reconstruction and out.residual is not None:
            parts["reconstruction"] = t.reconstruction * out.residual.abs().mean()
        if labelled is not None:
            parts = {name: (v if name == "rank" else self.config.alpha * v) for name, v in parts.items()}
        return parts
