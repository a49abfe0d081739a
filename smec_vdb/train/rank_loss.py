"""Pairwise rank loss L_rank over graded relevance (SMEC paper §4.2, eq. 8; Search-Adaptor).

For each query i and candidate pair (j, k) with y_ij > y_ik::

    (y_ij − y_ik) · log(1 + exp(scale · (s_ik − s_ij)))

summed and divided by the number of contributing pairs. ``s`` are cosine similarities in
the compressed space. ``scale`` (default 20) sharpens the logistic: cosine gaps between
candidates are often < 0.05, where the literal eq. 8 (``scale=1``) is almost flat at log 2.

Example::

    loss = RankLoss(scale=20.0)
    loss(scores, grades, mask)   # (Q, C) each; mask marks valid candidates -> scalar
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class RankLoss(nn.Module):
    def __init__(self, scale: float = 20.0) -> None:
        super().__init__()
        if not scale > 0:
            raise ValueError(f"scale must be > 0, found {scale}")
        self.scale = float(scale)

    def forward(self, scores: torch.Tensor, relevance: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if scores.shape != relevance.shape or scores.shape != mask.shape:
            raise ValueError(
                f"scores, relevance and mask must have one shape, found "
                f"{tuple(scores.shape)}, {tuple(relevance.shape)}, {tuple(mask.shape)}"
            )
        rel = relevance.to(scores.dtype)
        # pair (j, k): j along dim 1, k along dim 2
        gain = rel.unsqueeze(2) - rel.unsqueeze(1)
        valid = (gain > 0) & mask.unsqueeze(2) & mask.unsqueeze(1)
        count = valid.sum()
        if int(count) == 0:
            return scores.sum() * 0.0
        margin = scores.unsqueeze(1) - scores.unsqueeze(2)  # s_ik - s_ij
        pair_loss = gain * F.softplus(self.scale * margin)
        return (pair_loss * valid).sum() / count
