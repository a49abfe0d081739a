"""Matryoshka-Adaptor (Yoon et al. 2024; SMEC paper §3.1, Fig. 2b), as published.

A residual adapter of the input embedding, shared by all dims, whose prefixes are the smaller
embeddings::

    ê = e + f(e),   f(e) = W₂ relu(W₁ e + b₁) + b₂   (D → hidden → D; W₂, b₂ start at 0, so ê = e)
    project(e, m) = ê[:m]

Unsupervised loss, summed over the trained dims m (eq. 1 with c_m = 1): |Δcos| between e and
ê[:m] over **all in-batch pairs** (pairwise loss) plus over each item's in-batch **top-k**
neighbours (top-k loss), plus the **reconstruction** regulariser mean |ê − e| = mean |f(e)|.
Supervised: the rank loss (eq. 8) plus α times those parts (eq. 9). Model selection on the
held-out criterion of :mod:`smec_vdb.train.data` like every method.

Example::

    comp = MatryoshkaAdaptorCompressor.fit(corpus, [128, 64, 32], TrainConfig(epochs=20))
    low = comp.encode(queries, 32)
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import torch
from torch import nn

from smec_vdb.baselines.adapter_training import train_adapter
from smec_vdb.compress.base import Compressor
from smec_vdb.errors import ConfigError
from smec_vdb.train.config import TrainConfig
from smec_vdb.train.data import TrainingData
from smec_vdb.train.loop import run_info
from smec_vdb.train.objective import LossTerms

DEFAULT_HIDDEN = 512
RECONSTRUCTION_WEIGHT = 1.0


class MatryoshkaAdaptorCompressor(Compressor):
    """ê = e + MLP(e); dim ``m`` is the ``m``-prefix of ê."""

    method = "matryoshka-adaptor"

    def __init__(self, input_dim: int, dims: Sequence[int], hidden_dim: int = DEFAULT_HIDDEN) -> None:
        super().__init__(input_dim, dims)
        if hidden_dim < 1:
            raise ConfigError(f"hidden_dim must be >= 1, found {hidden_dim}")
        self.hidden_dim = int(hidden_dim)
        self.adapter = nn.Sequential(nn.Linear(self.input_dim, self.hidden_dim), nn.ReLU(),
                                     nn.Linear(self.hidden_dim, self.input_dim))
        nn.init.zeros_(self.adapter[-1].weight)
        nn.init.zeros_(self.adapter[-1].bias)

    def correction(self, x: torch.Tensor) -> torch.Tensor:
        """f(e): what the adapter adds to the input."""
        return self.adapter(x)

    def project(self, x: torch.Tensor, dim: int) -> torch.Tensor:
        return (x + self.correction(x))[:, :dim]

    def config(self) -> dict[str, Any]:
        return {"input_dim": self.input_dim, "dims": list(self.dims), "hidden_dim": self.hidden_dim}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "MatryoshkaAdaptorCompressor":
        return cls(config["input_dim"], config["dims"], config.get("hidden_dim", DEFAULT_HIDDEN))

    @classmethod
    def fit(cls, vectors: Any, dims: Sequence[int], config: TrainConfig | None = None, examples: Any = None,
            progress: Any = None, validation: Any = None, *,
            hidden_dim: int = DEFAULT_HIDDEN) -> "MatryoshkaAdaptorCompressor":
        """Train on corpus ``vectors`` (unsupervised) or with ``examples`` (rank loss + α·unsupervised)."""
        started = time.perf_counter()
        config = config or TrainConfig()
        torch.manual_seed(config.seed)
        data = TrainingData.build(vectors, config, examples, validation)
        comp = cls(data.corpus.shape[1], dims, hidden_dim).to(data.corpus.device)

        def forward(x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
            f = comp.correction(x)
            adapted = x + f
            return [adapted[:, :d] for d in comp.dims], f

        terms = LossTerms(similarity=1.0, pairs=1.0, reconstruction=RECONSTRUCTION_WEIGHT, in_batch_neighbours=True)
        report = train_adapter(comp, forward, terms, data, config, progress, stage_dim=comp.dims[-1])
        comp.cpu().eval()
        comp.training_info = run_info(data.corpus.cpu(), config, [report], time.perf_counter() - started, data.supervised)
        return comp
