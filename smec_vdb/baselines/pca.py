"""Corpus-fitted PCA: centre with the corpus mean, project onto the top-``d`` principal axes.

Nested by construction: the axes are sorted by explained variance, so the ``d``-dim output is
the prefix of every larger output. :func:`pca_basis` (in its uncentred form) also initialises
the linear adaptor, whose training starts from it.

Example::

    comp = PCACompressor.fit(corpus_vectors, [128, 64, 32])
    low = comp.encode(query_vectors, 64)   # normalise((q - mean) @ axes[:64].T)
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np
import torch

from smec_vdb.baselines.untrained import untrained_info
from smec_vdb.compress.base import Compressor
from smec_vdb.train.data import training_matrix


def pca_basis(x: np.ndarray, k: int, *, centre: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and the top-``k`` principal axes (k, D) of ``x`` as float32, largest variance first.

    Computed in float64 from the covariance's eigendecomposition. Each axis' sign is fixed so
    that its largest-magnitude coordinate is positive, making the result deterministic.
    ``centre=False`` gives the uncentred variant (top right-singular vectors of ``x`` itself,
    mean returned as zeros), whose projections keep the corpus' common direction.
    """
    x64 = np.asarray(x, dtype=np.float64)
    mean = x64.mean(axis=0) if centre else np.zeros(x64.shape[1])
    centred = x64 - mean
    cov = centred.T @ centred / max(len(x64) - 1, 1)
    eigvals, eigvecs = np.linalg.eigh(cov)
    axes = eigvecs[:, np.argsort(eigvals)[::-1][:k]].T
    peak = np.abs(axes).argmax(axis=1)
    axes *= np.sign(axes[np.arange(k), peak])[:, None]
    return mean.astype(np.float32), np.ascontiguousarray(axes, dtype=np.float32)


class PCACompressor(Compressor):
    """``project(x, d) = (x - mean) @ axes[:d].T`` with axes sorted by explained variance."""

    method = "pca"
    stochastic = False
    uses_labels = False

    def __init__(self, input_dim: int, dims: Sequence[int]) -> None:
        super().__init__(input_dim, dims)
        self.register_buffer("mean", torch.zeros(self.input_dim))
        self.register_buffer("axes", torch.zeros(self.dims[0], self.input_dim))

    def project(self, x: torch.Tensor, dim: int) -> torch.Tensor:
        return (x - self.mean) @ self.axes[:dim].T

    @classmethod
    def fit(cls, vectors: Any, dims: Sequence[int], config: Any = None, examples: Any = None,
            progress: Any = None, validation: Any = None) -> "PCACompressor":
        """Fit the mean and axes on the corpus ``vectors`` (unsupervised; ``examples`` unused)."""
        started = time.perf_counter()
        x = training_matrix(vectors)
        comp = cls(x.shape[1], dims)
        mean, axes = pca_basis(x.numpy(), comp.dims[0])
        comp.mean.copy_(torch.from_numpy(mean))
        comp.axes.copy_(torch.from_numpy(axes))
        comp.training_info = untrained_info(comp, x, config, started)
        return comp
