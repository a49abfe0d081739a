"""Training compressors on frozen embeddings: SMEC (SMRL + ADS + S-XBM) and the baselines.

Every method is looked up in :mod:`smec_vdb.compress.registry` and trained by its ``fit``.

Example::

    from smec_vdb.train import train
    comp = train(corpus_vectors, [128, 64, 32])                    # unsupervised SMEC; a bar on a terminal
    pca = train(corpus_vectors, [128, 64, 32], method="pca")       # a baseline, same interface
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any, Sequence, Union

from smec_vdb.compress.base import Compressor
from smec_vdb.compress.registry import known_methods, method_class
from smec_vdb.train.config import TrainConfig
from smec_vdb.train.labels import RankingExamples, build_ranking_examples, read_qrels
from smec_vdb.train.loop import StopCheck, stop_when
from smec_vdb.train.progress import ProgressCallback, ProgressEvent, StageReport
from smec_vdb.train.progress_bar import EpochBars, wants_bar


def train(
    vectors: Any,
    dims: Sequence[int],
    *,
    method: str = "smec",
    config: TrainConfig | None = None,
    examples: RankingExamples | None = None,
    progress: Union[ProgressCallback, bool, None] = None,
    validation: RankingExamples | None = None,
    should_stop: StopCheck | None = None,
) -> Compressor:
    """Train a compressor of ``method`` for ``dims`` on (N, D) ``vectors``; supervised when ``examples``
    is given (``validation``: held-out examples, e.g. a dev split, for model selection).

    ``progress``: a callback taking each epoch's :class:`ProgressEvent`; ``True`` a progress bar on
    stderr, ``False`` nothing; by default a bar when stderr is a terminal. ``should_stop``: asked
    before every batch; once it returns True training raises :class:`~smec_vdb.errors.TrainingInterrupted`
    (nothing is returned, so nothing half-trained can be saved).
    """
    cls = method_class(method)
    with ExitStack() as stack:
        stack.enter_context(stop_when(should_stop))
        callback = stack.enter_context(EpochBars()) if wants_bar(progress) else (
            progress if callable(progress) else None)
        return cls.fit(vectors, dims, config or TrainConfig(), examples, callback, validation)


__all__ = [
    "ProgressCallback", "ProgressEvent", "RankingExamples", "StageReport", "TrainConfig",
    "build_ranking_examples", "known_methods", "read_qrels", "train",
]
