"""Selectable Cross-Batch Memory, S-XBM (SMEC paper §3.4).

A FIFO ring of *frozen input* embeddings (never the trainable compressed outputs, which
would drift as the stage trains). Each batch item retrieves its top-k most cosine-similar
stored items; L_unsup (eq. 7) is then computed on those pairs.

Every stored item carries an integer id (its row in the training set). ``topk`` takes the
query rows' ids and excludes stored items with the same id, so an item never counts as its
own neighbour even when it was enqueued in this or an earlier epoch (possibly twice).

Example::

    mem = CrossBatchMemory(dim=384, size=5000)
    mem.enqueue(batch, ids)                 # frozen inputs
    sims, nbr_ids = mem.topk(batch, 32, query_ids=ids)
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


class CrossBatchMemory:
    def __init__(self, dim: int, size: int = 5000, device: torch.device | str = "cpu") -> None:
        if size < 1:
            raise ValueError(f"memory size must be >= 1, found {size}")
        self.dim = int(dim)
        self.size = int(size)
        self._vectors = torch.zeros(self.size, self.dim, device=device)
        self._ids = torch.full((self.size,), -1, dtype=torch.long, device=device)
        self._next = 0
        self._count = 0

    def __len__(self) -> int:
        return self._count

    @torch.no_grad()
    def enqueue(self, x: torch.Tensor, ids: torch.Tensor | None = None) -> None:
        """Store (normalised, detached) rows of ``x``; when full, the oldest entries are overwritten."""
        x = F.normalize(x.detach().to(self._vectors.device, torch.float32), dim=1)
        if ids is None:
            ids = torch.arange(x.shape[0]) + self._count
        ids = ids.to(self._ids.device, torch.long)
        if x.shape[0] > self.size:  # only the newest `size` rows can survive
            x, ids = x[-self.size :], ids[-self.size :]
        slots = (self._next + torch.arange(x.shape[0], device=self._ids.device)) % self.size
        self._vectors[slots] = x
        self._ids[slots] = ids
        self._next = int((self._next + x.shape[0]) % self.size)
        self._count = min(self.size, self._count + x.shape[0])

    def contents(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Stored vectors and ids, oldest first."""
        if self._count < self.size:
            return self._vectors[: self._count], self._ids[: self._count]
        order = (self._next + torch.arange(self.size, device=self._ids.device)) % self.size
        return self._vectors[order], self._ids[order]

    @torch.no_grad()
    def topk(self, x: torch.Tensor, k: int, query_ids: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, k') cosine similarities and ids of each row's most similar stored items, best first.

        With ``query_ids``, stored entries with the row's own id are excluded; k' = min(k, items
        available to every row), so all returned entries are real neighbours.
        """
        if self._count == 0:
            raise ValueError("the memory is empty: enqueue before topk")
        vectors, ids = self._vectors[: self._count], self._ids[: self._count]
        sims = F.normalize(x.detach().to(vectors.device, torch.float32), dim=1) @ vectors.T
        available = self._count
        if query_ids is not None:
            is_self = query_ids.to(ids.device).unsqueeze(1) == ids.unsqueeze(0)
            sims = sims.masked_fill(is_self, float("-inf"))
            available -= int(is_self.sum(dim=1).max())
        k = min(int(k), available)
        if k <= 0:
            raise ValueError("no stored item other than the queries themselves")
        top_sims, slots = sims.topk(k, dim=1)
        return top_sims, ids[slots]
