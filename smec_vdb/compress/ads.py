"""Adaptive Dimension Selection, ADS (SMEC paper §3.3, eq. 6).

Learnable importance logits ``ẑ``, one per dimension of a stage's input, pick which ``k`` of
them the next level keeps.

* Training: Gumbel noise ``G`` (scaled by ``noise``, which the trainer anneals from 1 to 0) is
  added to the logits and eq. 6, ``softmax_τ(ẑ + G)``, is applied ``k`` times without
  replacement (each draw's probability mass is removed from the logits before the next; the
  relaxed top-k of Xie & Ermon 2019). The sum of the ``k`` softmaxes is a soft k-hot vector whose
  entries are the probabilities of keeping each dim, and the training forward pass weights every
  dim by it (``z ⊙ khot``, :meth:`masked`): the relaxation itself, not a straight-through hard
  mask — under a cosine loss a hard 0 gives a dropped dim exactly zero gradient (its effect on a
  cosine is second order), so it could never be picked up. As τ and the noise are annealed by the
  trainer (over the epochs it runs), ``khot`` hardens to the k-hot of the top-k logits, so late in
  training the model sees the inference selection. :meth:`forward` returns the k columns with
  the largest perturbed logits (for a following stage).
* Inference: the deterministic top-k of the logits, indices sorted ascending.

Example::

    ads = AdaptiveDimensionSelector(in_dim=8, k=4)
    keep, khot = ads.sample(tau=0.5, noise=1.0)   # 4 indices, (8,) soft k-hot summing to 4
    ads.selected()                                # the 4 kept at inference, ascending
"""

from __future__ import annotations

import torch
from torch import nn

EPS = 1e-6


def gumbel(shape: int, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """Standard Gumbel(0, 1) samples."""
    u = torch.rand(shape, generator=generator).to(device).clamp(EPS, 1 - EPS)
    return -torch.log(-torch.log(u))


def relaxed_top_k(logits: torch.Tensor, k: int, tau: float) -> torch.Tensor:
    """Soft k-hot: the sum of ``k`` successive softmax_τ draws, each removing the mass already drawn."""
    khot = torch.zeros_like(logits)
    w = logits
    for _ in range(k):
        p = torch.softmax(w / tau, dim=0)
        khot = khot + p
        w = w + torch.log1p(-p.clamp(max=1 - EPS))
    return khot


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

    @property
    def sampling(self) -> bool:
        """Whether the selection is sampled (training a learnable selector) rather than the fixed top-k."""
        return self.training and self.learnable

    def sample(self, tau: float = 1.0, noise: float = 1.0,
               generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(the k indices of largest perturbed logit, ascending; the (in_dim,) soft k-hot weights)."""
        perturbed = self.logits
        if noise > 0:
            perturbed = perturbed + noise * gumbel(self.in_dim, generator, self.logits.device)
        keep = torch.sort(torch.topk(perturbed.detach(), self.k).indices).values
        return keep, relaxed_top_k(perturbed, self.k, tau)

    def masked(self, z: torch.Tensor, tau: float = 1.0, noise: float = 1.0,
               generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(``z`` weighted by the soft k-hot (the fixed k-hot when not sampling), the k kept indices)."""
        if not self.sampling:
            keep = self.selected().to(z.device)
            return z * torch.zeros(self.in_dim, device=z.device).index_fill(0, keep, 1.0), keep
        keep, mask = self.sample(tau, noise, generator)
        return z * mask, keep

    def forward(self, z: torch.Tensor, tau: float = 1.0, noise: float = 1.0,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """Keep ``k`` columns of ``z`` (n, in_dim) -> (n, k)."""
        if not self.sampling:
            return z.index_select(1, self.selected().to(z.device))
        full, keep = self.masked(z, tau, noise, generator)
        return full.index_select(1, keep)
