"""Search-Adaptor (Yoon et al. 2023; SMEC paper Fig. 2a): an independent skip-connected adapter per dim.

Each target dim ``d`` gets its own linear adapter of the input embedding with an identity skip,
truncated to ``d``::

    ê_d = e + W_d e + b_d   (W_d, b_d start at 0: the untrained map is truncation)
    project(e, d) = ê_d[:d]

trained on its own (the dims share nothing, so outputs are not nested): the rank loss (eq. 8)
plus the reconstruction regulariser mean |ê_d − e| when labelled examples are given; without
labels the rank loss is replaced by eq. 7 over in-batch top-k neighbours. Model selection on
the held-out criterion like every method.

Example::

    comp = SearchAdaptorCompressor.fit(corpus, [128, 64, 32], TrainConfig(), examples)
    low = comp.encode(queries, 64)
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import torch
from torch import nn

from smec_vdb.baselines.adapter_training import train_adapter
from smec_vdb.compress.base import Compressor
from smec_vdb.train.config import TrainConfig
from smec_vdb.train.data import TrainingData
from smec_vdb.train.loop import run_info
from smec_vdb.train.objective import LossTerms

RECONSTRUCTION_WEIGHT = 1.0


class SearchAdaptorCompressor(Compressor):
    """One independent skip-connected linear adapter per trained dim."""

    method = "search-adaptor"

    def __init__(self, input_dim: int, dims: Sequence[int]) -> None:
        super().__init__(input_dim, dims)
        self.maps = nn.ModuleList(nn.Linear(self.input_dim, self.input_dim) for _ in self.dims)
        for linear in self.maps:
            nn.init.zeros_(linear.weight)
            nn.init.zeros_(linear.bias)

    def map_for(self, dim: int) -> nn.Linear:
        return self.maps[self.dims.index(dim)]

    def project(self, x: torch.Tensor, dim: int) -> torch.Tensor:
        return (x + self.map_for(dim)(x))[:, :dim]

    @classmethod
    def fit(cls, vectors: Any, dims: Sequence[int], config: TrainConfig | None = None, examples: Any = None,
            progress: Any = None, validation: Any = None) -> "SearchAdaptorCompressor":
        """Train each dim's adapter separately on ``vectors`` and, if given, ranking ``examples``."""
        started = time.perf_counter()
        config = config or TrainConfig()
        torch.manual_seed(config.seed)
        data = TrainingData.build(vectors, config, examples, validation)
        comp = cls(data.corpus.shape[1], dims).to(data.corpus.device)
        terms = LossTerms(similarity=0.0 if data.supervised else 1.0, reconstruction=RECONSTRUCTION_WEIGHT,
                          in_batch_neighbours=True)
        reports = []
        for stage, (d, linear) in enumerate(zip(comp.dims, comp.maps)):
            def forward(x: torch.Tensor, m: nn.Linear = linear, d: int = d) -> tuple[list[torch.Tensor], torch.Tensor]:
                f = m(x)
                return [(x + f)[:, :d]], f

            reports.append(train_adapter(linear, forward, terms, data, config, progress, stage=stage, stage_dim=d,
                                         num_stages=len(comp.dims)))
        comp.cpu().eval()
        comp.training_info = run_info(data.corpus.cpu(), config, reports, time.perf_counter() - started, data.supervised)
        return comp
