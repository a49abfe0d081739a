"""Linear adaptor on a PCA basis (ours, not a published method): one shared map, all dims trained
jointly as in MRL (SMEC paper §3.1, eq. 1 with c_m = 1).

    f(x) = R x + U·relu(V x)        (the MLP term only when ``hidden_dim`` > 0)
    project(x, d) = f(x)[:d]

``R`` starts as the uncentred PCA rotation of the corpus (top right-singular vectors) and ``U``
as zero, so training starts from the PCA floor. This is what earlier versions called the
"Matryoshka-Adaptor"; the faithful one (identity skip, Yoon et al. 2024) is
:mod:`smec_vdb.baselines.matryoshka_adaptor`. Loss: eq. 7 over in-batch top-k neighbours, plus the
rank loss (eq. 8) as L_rank + α·L_unsup with labels; held-out selection like every method.

Example::

    comp = LinearAdaptorCompressor.fit(corpus, [128, 64, 32], TrainConfig(epochs=20))
    low = comp.encode(queries, 32)
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from smec_vdb.baselines.adapter_training import train_adapter
from smec_vdb.baselines.pca import pca_basis
from smec_vdb.compress.base import Compressor
from smec_vdb.errors import ConfigError
from smec_vdb.train.config import TrainConfig
from smec_vdb.train.data import TrainingData
from smec_vdb.train.loop import run_info
from smec_vdb.train.objective import LossTerms


class LinearAdaptorCompressor(Compressor):
    """Shared PCA-initialised adapter; dim ``d`` is the ``d``-prefix of its output."""

    method = "linear-adaptor"

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
    def from_config(cls, config: dict[str, Any]) -> "LinearAdaptorCompressor":
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
    def fit(cls, vectors: Any, dims: Sequence[int], config: TrainConfig | None = None, examples: Any = None,
            progress: Any = None, validation: Any = None, *, hidden_dim: int = 0) -> "LinearAdaptorCompressor":
        """Train on corpus ``vectors`` (unsupervised) or with ``examples`` (supervised + α·unsupervised)."""
        started = time.perf_counter()
        config = config or TrainConfig()
        torch.manual_seed(config.seed)
        data = TrainingData.build(vectors, config, examples, validation)
        comp = cls(data.corpus.shape[1], dims, hidden_dim)
        comp.init_from_pca(data.corpus.cpu().numpy())
        comp.to(data.corpus.device)

        def forward(x: torch.Tensor) -> tuple[list[torch.Tensor], None]:
            full = comp.adapt(x)  # computed once, sliced per dim
            return [full[:, :d] for d in comp.dims], None

        report = train_adapter(comp, forward, LossTerms(similarity=1.0, in_batch_neighbours=True), data, config,
                               progress, stage_dim=comp.dims[-1])
        comp.cpu().eval()
        comp.training_info = run_info(data.corpus.cpu(), config, [report], time.perf_counter() - started, data.supervised)
        return comp
