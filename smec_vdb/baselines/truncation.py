"""Prefix truncation: the trivial baseline that keeps the first ``d`` raw dimensions.

It has no parameters and needs no training; ``fit`` records the data fingerprint and the held-out
recall@10 of each dim. Nested by construction: every dim is a prefix of the input.

Example::

    comp = TruncationCompressor.fit(vectors, [128, 64, 32])
    low = comp.encode(vectors, 64)   # == normalise(vectors[:, :64])
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import torch

from smec_vdb.baselines.untrained import untrained_info
from smec_vdb.compress.base import Compressor
from smec_vdb.train.data import training_matrix


class TruncationCompressor(Compressor):
    """Keep the first ``dim`` input dimensions."""

    method = "truncate"
    stochastic = False
    uses_labels = False

    def project(self, x: torch.Tensor, dim: int) -> torch.Tensor:
        return x[:, :dim]

    @classmethod
    def fit(cls, vectors: Any, dims: Sequence[int], config: Any = None, examples: Any = None,
            progress: Any = None, validation: Any = None) -> "TruncationCompressor":
        """No training: build the compressor for ``vectors``' width (``examples`` unused)."""
        started = time.perf_counter()
        x = training_matrix(vectors)
        comp = cls(x.shape[1], dims)
        comp.training_info = untrained_info(comp, x, config, started)
        return comp
