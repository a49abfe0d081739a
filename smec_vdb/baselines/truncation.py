"""Prefix truncation: the trivial baseline that keeps the first ``d`` raw dimensions.

It has no parameters and needs no training; ``fit`` only records the data fingerprint.
Nested by construction: every dim is a prefix of the input, hence of every larger dim.

Example::

    comp = TruncationCompressor.fit(vectors, [128, 64, 32])
    low = comp.encode(vectors, 64)   # == normalise(vectors[:, :64])
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from smec_vdb.baselines._fit import corpus_matrix, fit_report
from smec_vdb.compress.artifact import register
from smec_vdb.compress.base import Compressor
from smec_vdb.train.progress import ProgressCallback


@register
class TruncationCompressor(Compressor):
    """Keep the first ``dim`` input dimensions."""

    method = "truncate"

    def project(self, x: torch.Tensor, dim: int) -> torch.Tensor:
        return x[:, :dim]

    @classmethod
    def fit(
        cls,
        vectors: Any,
        dims: Sequence[int],
        config: Any = None,
        examples: Any = None,
        progress: ProgressCallback | None = None,
    ) -> "TruncationCompressor":
        """No training: build the compressor for ``vectors``' width (``config``/``examples`` unused)."""
        x = corpus_matrix(vectors)
        comp = cls(x.shape[1], dims)
        comp.training_info = fit_report(x, seconds=0.0)
        return comp
