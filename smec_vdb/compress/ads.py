"""Adaptive Dimension Selection, ADS (SMEC paper §3.3).

Learnable importance logits, one per dimension of a stage's input, pick which ``k`` of
them the next level keeps.

* Training: each dimension gets a binary Gumbel-softmax (keep vs drop) relaxation
  ``p_i = sigmoid((logit_i + L_i) / τ)`` with logistic noise ``L_i`` (the difference of two
  Gumbel samples); the forward pass keeps exactly the ``k`` dims with the largest perturbed
  logits (hard top-k), and the straight-through estimator ``mask = hard + p − p.detach()``
  passes gradients to the logits through ``p``. τ is annealed by the trainer.
* Inference: the deterministic top-k of the logits, indices sorted ascending.

Example::

    ads = AdaptiveDimensionSelector(in_dim=8, k=4)
    y = ads(z, tau=0.5)          # (n, 4), noisy selection in train mode
    ads.eval(); ads.selected()   # tensor of the 4 kept indices, ascending
"""

from __future__ import annotations

import torch
from torch import nn


class AdaptiveDimensionSelector(nn.Module):
    def __init__(self, in_dim: int, k: int, *, learnable: bool = True) -> None:
        super().__init__()
        if not 0 < k <= in_dim:
            raise ValueError(f"cannot select {k} of {in_dim} dims")
        self.in_dim = int(in_dim)
        self.k = int(k)
        self.learnable = bool(learnable)
        # Decreasing logits: an untrained selector keeps the prefix (MRL truncation).
        initial = -torch.arange(self.in_dim, dtype=torch.float32) / self.in_dim
        if self.learnable:
            self.logits = nn.Parameter(initial)
        else:
            self.register_buffer("logits", initial)

    def selected(self) -> torch.Tensor:
        """Indices (ascending) of the k dims kept at inference: deterministic top-k of the logits."""
        return torch.sort(torch.topk(self.logits.detach(), self.k).indices).values

    def forward(self, z: torch.Tensor, tau: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
        """Keep ``k`` columns of ``z`` (n, in_dim) -> (n, k)."""
        if not (self.training and self.learnable):
            return z.index_select(1, self.selected().to(z.device))
        u = torch.rand(self.in_dim, generator=generator, device=self.logits.device if generator is None else generator.device)
        u = u.to(self.logits.device).clamp(1e-6, 1 - 1e-6)
        perturbed = self.logits + torch.log(u) - torch.log1p(-u)
        keep = torch.sort(torch.topk(perturbed.detach(), self.k).indices).values
        soft = torch.sigmoid(perturbed / tau)
        mask = 1.0 - soft.detach() + soft  # forward value exactly 1 on kept dims, gradient d soft
        return z.index_select(1, keep) * mask.index_select(0, keep)
