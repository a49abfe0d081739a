"""Search-Adaptor (Yoon et al. 2023; SMEC paper Fig. 2a): an independent D→d linear map per dim.

Each target dim ``d`` gets its own affine map ``W_d x + b_d``, initialised from the corpus'
uncentred PCA (``W_d`` = top-``d`` right-singular vectors, ``b_d = 0``; uncentred for the reason
given in :mod:`matryoshka_adaptor`) and trained on its own, with a fresh optimizer:
the rank loss (eq. 8) plus α times the in-batch top-k similarity preservation (eq. 3/4 scored
with eq. 7) when labelled examples are given, the similarity term alone when not. The dims
share nothing, so the outputs are not nested (unlike the Matryoshka-Adaptor).

Example::

    comp = SearchAdaptorCompressor.fit(corpus, [128, 64, 32], TrainConfig(), examples)
    low = comp.encode(queries, 64)
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
from smec_vdb.train.config import TrainConfig
from smec_vdb.train.labels import RankingExamples


@register
class SearchAdaptorCompressor(Compressor):
    """One independent affine map per trained dim."""

    method = "search-adaptor"

    def __init__(self, input_dim: int, dims: Sequence[int]) -> None:
        super().__init__(input_dim, dims)
        self.maps = nn.ModuleList(nn.Linear(self.input_dim, d) for d in self.dims)

    def map_for(self, dim: int) -> nn.Linear:
        return self.maps[self.dims.index(dim)]

    def project(self, x: torch.Tensor, dim: int) -> torch.Tensor:
        return self.map_for(dim)(x)

    def init_from_pca(self, x: np.ndarray) -> None:
        """Set every map to the projection onto the corpus' top-``d`` uncentred PCA axes."""
        _, axes = pca_basis(x, self.dims[0], centre=False)
        axes_t = torch.from_numpy(axes)
        with torch.no_grad():
            for d, linear in zip(self.dims, self.maps):
                linear.weight.copy_(axes_t[:d])
                linear.bias.zero_()

    @classmethod
    def fit(
        cls,
        vectors: Any,
        dims: Sequence[int],
        config: TrainConfig | None = None,
        examples: RankingExamples | None = None,
        progress: ProgressCallback | None = None,
    ) -> "SearchAdaptorCompressor":
        """Train each dim's map separately on corpus ``vectors`` and, if given, ranking ``examples``."""
        start = time.perf_counter()
        config = config or TrainConfig()
        x = corpus_matrix(vectors)
        comp = cls(x.shape[1], dims)
        comp.init_from_pca(x)
        data = TrainingData.build(x, examples, config)
        comp.to(config.resolved_device())
        comp.train()
        runs = []
        for stage, (d, linear) in enumerate(zip(comp.dims, comp.maps)):
            run = train_adapter(linear, list(linear.parameters()), lambda batch, m=linear: [m(batch)], data, config,
                                progress, stage=stage, stage_dim=d, num_stages=len(comp.dims))
            runs.append(run.to_dict())
        comp.cpu().eval()
        comp.training_info = fit_report(
            x, time.perf_counter() - start, supervised=data.supervised, config=config.to_dict(), runs=runs
        )
        return comp
