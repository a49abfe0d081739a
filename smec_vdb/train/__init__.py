"""Training compressors on frozen embeddings: SMEC (SMRL + ADS + S-XBM) and the baselines.

Example::

    from smec_vdb.train import train
    comp = train(corpus_vectors, [128, 64, 32])                    # unsupervised SMEC
    pca = train(corpus_vectors, [128, 64, 32], method="pca")       # a baseline, same interface
"""

from __future__ import annotations

from typing import Any, Sequence

from smec_vdb.compress.base import Compressor
from smec_vdb.errors import ConfigError
from smec_vdb.train.config import TrainConfig
from smec_vdb.train.labels import RankingExamples, build_ranking_examples, read_qrels
from smec_vdb.train.progress import ProgressCallback, ProgressEvent, StageReport


def known_methods() -> list[str]:
    from smec_vdb.baselines import BASELINES

    return ["smec", *sorted(BASELINES)]


def train(
    vectors: Any,
    dims: Sequence[int],
    *,
    method: str = "smec",
    config: TrainConfig | None = None,
    examples: RankingExamples | None = None,
    progress: ProgressCallback | None = None,
) -> Compressor:
    """Train a compressor of ``method`` for ``dims`` on (N, D) ``vectors``; supervised when ``examples`` is given."""
    config = config or TrainConfig()
    if method == "smec":
        from smec_vdb.train.smrl import train_smec

        return train_smec(vectors, dims, config, examples, progress)
    from smec_vdb.baselines import BASELINES

    if method not in BASELINES:
        raise ConfigError(f"unknown method {method!r}; known: {', '.join(known_methods())}")
    return BASELINES[method].fit(vectors, dims, config, examples, progress)


__all__ = [
    "ProgressCallback", "ProgressEvent", "RankingExamples", "StageReport", "TrainConfig",
    "build_ranking_examples", "known_methods", "read_qrels", "train",
]
