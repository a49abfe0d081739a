"""Training compressors on frozen embeddings: SMEC (SMRL + ADS + S-XBM) and the baselines.

Every method is looked up in :mod:`smec_vdb.compress.registry` and trained by its ``fit``.

Example::

    from smec_vdb.train import train
    comp = train(corpus_vectors, [128, 64, 32])                    # unsupervised SMEC
    pca = train(corpus_vectors, [128, 64, 32], method="pca")       # a baseline, same interface
"""

from __future__ import annotations

from typing import Any, Sequence

from smec_vdb.compress.base import Compressor
from smec_vdb.compress.registry import known_methods, method_class
from smec_vdb.train.config import TrainConfig
from smec_vdb.train.labels import RankingExamples, build_ranking_examples, read_qrels
from smec_vdb.train.progress import ProgressCallback, ProgressEvent, StageReport


def train(
    vectors: Any,
    dims: Sequence[int],
    *,
    method: str = "smec",
    config: TrainConfig | None = None,
    examples: RankingExamples | None = None,
    progress: ProgressCallback | None = None,
    validation: RankingExamples | None = None,
) -> Compressor:
    """Train a compressor of ``method`` for ``dims`` on (N, D) ``vectors``; supervised when ``examples``
    is given (``validation``: held-out examples, e.g. a dev split, for model selection)."""
    cls = method_class(method)
    return cls.fit(vectors, dims, config or TrainConfig(), examples, progress, validation)


__all__ = [
    "ProgressCallback", "ProgressEvent", "RankingExamples", "StageReport", "TrainConfig",
    "build_ranking_examples", "known_methods", "read_qrels", "train",
]
