"""Matryoshka-Adaptor (Yoon et al. 2024; SMEC paper §3.1, Fig. 2b): one shared adapter, all dims trained jointly.

The adapter maps the input to ``dims[0]`` outputs whose prefixes are the smaller embeddings::

    f(x) = R x + U·relu(V x)        (the MLP term only when ``hidden_dim`` > 0)
    project(x, d) = f(x)[:d]

``R`` starts as the uncentred PCA rotation of the corpus (top right-singular vectors) and ``U``
as zero, so training starts from a strong nested floor and learns a skip-connected correction.
Uncentred, because the loss preserves the *raw* cosines, which carry the corpus' common
direction; on SciFact MiniLM this start is also better on its own (nDCG@10 .636/.559/.457 at
128/64/32 against .611/.540/.453 for centred PCA). All dims are optimised in parallel, the
loss being the sum over dims (eq. 1 with c_m = 1): in-batch top-k similarity preservation
(eq. 3/4 scored with eq. 7), plus the rank loss (eq. 8) as L_rank + α·L_unsup when labelled
examples are given.

Example::

    comp = MatryoshkaAdaptorCompressor.fit(corpus, [128, 64, 32], TrainConfig(epochs=20), examples=None)
    low = comp.encode(queries, 32)
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from smec_vdb.baselines._fit import TrainingData, corpus_matrix, fit_report, train_adapter
from smec_vdb.baselines.pca import pca_basis
from smec_vdb.compress.artifact import register
from smec_vdb.compress.base import Compressor
from smec_vdb.train.progress import ProgressCallback
from smec_vdb.errors import ConfigError
from smec_vdb.train.config import TrainConfig
from smec_vdb.train.labels import RankingExamples


@register
class MatryoshkaAdaptorCompressor(Compressor):
    """Shared PCA-initialised adapter; dim ``d`` is the ``d``-prefix of its output."""

    method = "mrl"

    def __init__(self, input_dim: int, dims: Sequence[int], hidden_dim: int = 0) -> None:
        super().__init__(input_dim, dims)
        if hidden_dim < 0:
            raise ConfigError(f"hidden_dim must be >= 0 (0 = linear adapter), found {hidden_dim}")
        self.hidden_dim = int(hidden_dim)
        self.rotation = nn.Parameter(torch.zeros(self.dims[0], self.input_dim))
        self.residual: nn.Sequential | None = None
        if self.hidden_dim:
            self.residual = nn.Sequential(
                nn.Linear(self.input_dim, self.hidden_dim), nn.ReLU(), nn.Linear(self.hidden_dim, self.dims[0])
            )

    def adapt(self, x: torch.Tensor) -> torch.Tensor:
        """The full adapter output (n, dims[0]); every trained dim is a prefix of it."""
        out = x @ self.rotation.T
        if self.residual is not None:
            out = out + self.residual(x)
        return out

    def project(self, x: torch.Tensor, dim: int) -> torch.Tensor:
        return self.adapt(x)[:, :dim]

    def config(self) -> dict[str, Any]:
        return {"input_dim": self.input_dim, "dims": list(self.dims), "hidden_dim": self.hidden_dim}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "MatryoshkaAdaptorCompressor":
        return cls(config["input_dim"], config["dims"], config.get("hidden_dim", 0))

    def init_from_pca(self, x: np.ndarray) -> None:
        """Set R to the corpus' uncentred PCA axes and zero the residual's output layer: f = PCA."""
        _, axes = pca_basis(x, self.dims[0], centre=False)
        with torch.no_grad():
            self.rotation.copy_(torch.from_numpy(axes))
            if self.residual is not None:
                nn.init.zeros_(self.residual[-1].weight)
                nn.init.zeros_(self.residual[-1].bias)

    @classmethod
    def fit(
        cls,
        vectors: Any,
        dims: Sequence[int],
        config: TrainConfig | None = None,
        examples: RankingExamples | None = None,
        progress: ProgressCallback | None = None,
        *,
        hidden_dim: int = 0,
    ) -> "MatryoshkaAdaptorCompressor":
        """Train on corpus ``vectors`` (unsupervised) or with ``examples`` (supervised + α·unsupervised)."""
        start = time.perf_counter()
        config = config or TrainConfig()
        x = corpus_matrix(vectors)
        torch.manual_seed(config.seed)
        comp = cls(x.shape[1], dims, hidden_dim)
        comp.init_from_pca(x)
        data = TrainingData.build(x, examples, config)
        comp.to(config.resolved_device())
        comp.train()

        def encode(batch: torch.Tensor) -> list[torch.Tensor]:
            full = comp.adapt(batch)  # computed once, sliced per dim
            return [full[:, :d] for d in comp.dims]

        params = [p for p in comp.parameters() if p.requires_grad]
        run = train_adapter(comp, params, encode, data, config, progress,
                            stage=0, stage_dim=comp.dims[-1], num_stages=1)
        comp.cpu().eval()
        comp.training_info = fit_report(
            x, time.perf_counter() - start, supervised=data.supervised, config=config.to_dict(), runs=[run.to_dict()]
        )
        return comp
