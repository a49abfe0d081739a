"""Similarity-preservation loss L_unsup (SMEC paper §3.4, eq. 7).

The compressed embedding (student) should reproduce the cosine similarity the original
embedding (teacher) gives to each item's top-k neighbours::

    L = mean_{i, j ∈ N_K(i)} | cos(full_i, full_j) − cos(low_i, low_j) |

Eq. 7 writes a sum; we take the **mean** over the B·K pairs so the loss scale does not
depend on batch size or K, which keeps learning rate and α = 1.0 meaningful across runs.

Example::

    loss = SimilarityPreservationLoss()
    loss(full_a, full_n, low_a, low_n)   # (B,D), (B,K,D), (B,d), (B,K,d) -> scalar
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def neighbour_cosines(anchor: torch.Tensor, neighbours: torch.Tensor) -> torch.Tensor:
    """(B, d) anchors and (B, K, d) neighbours -> (B, K) cosine similarities."""
    a = F.normalize(anchor, dim=-1)
    n = F.normalize(neighbours, dim=-1)
    return torch.einsum("bd,bkd->bk", a, n)


class SimilarityPreservationLoss(nn.Module):
    """Mean absolute difference between teacher (full) and student (low) neighbour cosines (eq. 7)."""

    def forward(
        self,
        full_a: torch.Tensor,
        full_n: torch.Tensor,
        low_a: torch.Tensor,
        low_n: torch.Tensor,
    ) -> torch.Tensor:
        if full_n.shape[:2] != low_n.shape[:2] or full_a.shape[0] != low_a.shape[0]:
            raise ValueError(
                f"teacher and student batches differ: full {tuple(full_a.shape)}/{tuple(full_n.shape)}, "
                f"low {tuple(low_a.shape)}/{tuple(low_n.shape)}"
            )
        return self.gap(neighbour_cosines(full_a, full_n), neighbour_cosines(low_a, low_n))

    @staticmethod
    def gap(teacher: torch.Tensor, student: torch.Tensor) -> torch.Tensor:
        """Eq. 7 on precomputed (B, K) neighbour cosines: mean |teacher − student|."""
        return (teacher - student).abs().mean()


class NeighbourOrderLoss(nn.Module):
    """Listwise ordering term: KL(softmax(teacher/T) ‖ softmax(student/T)) over each anchor's candidates.

    ``teacher`` and ``student`` are (B, C) cosines of each anchor to the same C candidates
    (its S-XBM neighbours and the other batch items); a candidate marked False in ``valid``
    (e.g. the anchor itself) is left out. Unlike eq. 7's absolute |Δcos|, this only asks the
    student to rank and separate the candidates like the teacher, with the weight on the
    teacher's nearest ones (small T): exactly what top-k retrieval needs.
    """

    def __init__(self, temperature: float = 0.05) -> None:
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, found {temperature}")
        self.temperature = float(temperature)

    def forward(self, teacher: torch.Tensor, student: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        if teacher.shape != student.shape or teacher.shape != valid.shape:
            raise ValueError(f"teacher, student and valid must have one shape, found "
                             f"{tuple(teacher.shape)}, {tuple(student.shape)}, {tuple(valid.shape)}")
        hidden = torch.finfo(student.dtype).min
        log_p = F.log_softmax((teacher / self.temperature).masked_fill(~valid, hidden), dim=1)
        log_q = F.log_softmax((student / self.temperature).masked_fill(~valid, hidden), dim=1)
        return (log_p.exp() * (log_p - log_q)).masked_fill(~valid, 0.0).sum(dim=1).mean()
