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
* ``rank`` — eq. 8 over each labelled query's candidates. With labels the unsupervised parts are
  scaled by α (eq. 9: L_rank + α·L_unsup).

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
from smec_vdb.train.similarity_loss import NeighbourOrderLoss, SimilarityPreservationLoss, neighbour_cosines

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
    def neighbours(self, anchors: torch.Tensor) -> torch.Tensor:
        """(B, K) top-k neighbours of each anchor: from S-XBM (after enqueueing the batch) or the batch."""
        full = self.data.teacher[anchors]
        if self.memory is not None:
            self.memory.enqueue(full, anchors)
            return self.memory.topk(full, self.config.memory_topk, query_ids=anchors)[1]
        if anchors.numel() < 2:
            return anchors.unsqueeze(1)
        sims = full @ full.T
        sims.fill_diagonal_(-math.inf)
        return anchors[sims.topk(min(self.config.memory_topk, anchors.numel() - 1), dim=1).indices]

    def __call__(self, model: Model, anchors: torch.Tensor, query_rows: torch.Tensor | None) -> dict[str, torch.Tensor]:
        d, t = self.data, self.terms
        neighbours = self.neighbours(anchors)
        b, k = neighbours.shape
        supervised = query_rows is not None and query_rows.numel() > 0
        rows = [anchors, neighbours.reshape(-1)]
        if supervised:
            candidates = d.candidates[query_rows]
            rows.append(candidates.reshape(-1))
        unique, inverse = torch.unique(torch.cat(rows), return_inverse=True)
        out = model(unique, query_rows if supervised else None)
        full_a, full_n = d.teacher[anchors], d.teacher[neighbours]
        teacher_nbr = neighbour_cosines(full_a, full_n)
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
            docs = low[inverse]
            low_a, low_n = docs[:b], docs[b : b + b * k].reshape(b, k, -1)
            if t.similarity:
                add("similarity", t.similarity * self.similarity(full_a, full_n, low_a, low_n))
            unit_a = F.normalize(low_a, dim=1)
            student_batch = unit_a @ unit_a.T
            if t.pairs and b > 1:
                add("pairs", t.pairs * (teacher_batch - student_batch).abs()[off_diagonal].mean())
            if t.order == "pairwise":
                student = torch.cat([neighbour_cosines(low_a, low_n), student_batch[:, others]], dim=1)
                add("order", t.order_weight * self.rank(student, teacher_pairwise, pairwise_valid))
            elif t.order == "listwise":
                valid = torch.cat([torch.ones_like(teacher_nbr, dtype=torch.bool), off_diagonal], dim=1)
                student = torch.cat([neighbour_cosines(low_a, low_n), student_batch], dim=1)
                add("order", t.order_weight * self.listwise(torch.cat([teacher_nbr, teacher_batch], dim=1), student, valid))
            if supervised:
                low_q = F.normalize(out.queries[i], dim=1)
                low_c = F.normalize(docs[b + b * k :], dim=1).reshape(*candidates.shape, -1)
                scores = torch.einsum("qd,qcd->qc", low_q, low_c)
                add("rank", self.rank(scores, d.grades[query_rows], d.mask[query_rows]))
        if t.reconstruction and out.residual is not None:
            parts["reconstruction"] = t.reconstruction * out.residual.abs().mean()
        if supervised:
            parts = {name: (v if name == "rank" else self.config.alpha * v) for name, v in parts.items()}
        return parts
