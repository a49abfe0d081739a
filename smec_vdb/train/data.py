"""The data of one training run, shared by every trained method: validated corpus (and labelled
queries) on the training device, the held-out split, and the held-out selection criterion.

Unsupervised runs hold out ``val_fraction`` of the corpus rows (at most ``MAX_HELD_OUT``) as
queries of :class:`~smec_vdb.train.criteria.NeighbourRecall`; supervised runs hold out
``val_fraction`` of the training queries — or use ``validation`` examples (a dev split) when
given — for :class:`~smec_vdb.train.criteria.HeldOutNDCG`. Held-out corpus rows never anchor a
training batch; held-out queries never enter the rank loss. Labelled candidates are kept ragged
(:class:`~smec_vdb.train.ragged.RaggedCandidates`): a step pays for its queries' real candidates only.

Example::

    data = TrainingData.build(vectors, config, examples=None)
    data.criterion.name      # 'recall@10'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from smec_vdb.compress.base import as_float_tensor, check_finite_rows
from smec_vdb.errors import DataError, DimensionError
from smec_vdb.train.config import TrainConfig
from smec_vdb.train.criteria import HeldOutNDCG, NeighbourRecall, held_out_split, sample_pool
from smec_vdb.train.labels import RankingExamples
from smec_vdb.train.ragged import RaggedCandidates

MIN_TRAINING_ROWS = 8
MAX_HELD_OUT = 1000
MAX_POOL = 20_000


def training_matrix(vectors: Any, expected_dim: int | None = None, what: str = "training vectors",
                    min_rows: int = MIN_TRAINING_ROWS) -> torch.Tensor:
    """Validate vectors (2-D, numeric, finite, non-zero rows, at least ``min_rows``) -> float32 CPU tensor."""
    shape = tuple(vectors.shape) if isinstance(vectors, torch.Tensor) else np.shape(vectors)
    if len(shape) != 2:
        raise DimensionError(f"{what} must be a 2-D (n, dim) matrix, found shape {shape}")
    x = as_float_tensor(vectors, shape[1] if expected_dim is None else expected_dim).cpu().contiguous()
    check_finite_rows(x)
    if x.shape[0] < min_rows:
        raise DataError(f"need at least {min_rows} {what}, found {x.shape[0]}")
    return x


def _check_examples(ex: RankingExamples, n_docs: int, dim: int, what: str) -> None:
    if len(ex) == 0:
        raise DataError(f"{what} hold no queries")
    if ex.query_vectors.shape[1] != dim:
        raise DimensionError(f"{what}: query vectors have width {ex.query_vectors.shape[1]}, the corpus has width {dim}")
    real = ex.candidates[ex.mask]
    if real.size and (real.min() < 0 or real.max() >= n_docs):
        raise DataError(f"{what}: candidate doc indices fall outside the {n_docs} corpus vectors")


def _pad(a: np.ndarray, width: int, value: Any) -> np.ndarray:
    return np.pad(a, ((0, 0), (0, width - a.shape[1])), constant_values=value)


@dataclass
class TrainingData:
    """Tensors of a run; ``teacher`` = normalised corpus (the full-dim cosine every loss preserves)."""

    corpus: torch.Tensor
    teacher: torch.Tensor
    train_rows: torch.Tensor
    criterion: NeighbourRecall | HeldOutNDCG
    queries: torch.Tensor | None = None
    candidates: RaggedCandidates | None = None
    query_train: torch.Tensor | None = None

    @property
    def supervised(self) -> bool:
        return self.queries is not None

    @classmethod
    def build(cls, vectors: Any, config: TrainConfig, examples: RankingExamples | None = None,
              validation: RankingExamples | None = None, expected_dim: int | None = None) -> "TrainingData":
        x = training_matrix(vectors, expected_dim)
        device = config.resolved_device()
        generator = torch.Generator().manual_seed(config.seed)
        corpus = x.to(device)
        teacher = F.normalize(corpus, dim=1)
        if examples is None:
            if validation is not None:
                raise DataError("validation examples were given without training examples: unsupervised runs "
                                "select on held-out corpus vectors")
            train_rows, val_rows = held_out_split(x.shape[0], config.val_fraction, generator, MAX_HELD_OUT)
            pool = sample_pool(x.shape[0], MAX_POOL, val_rows, generator)
            criterion = NeighbourRecall(teacher, val_rows.to(device), pool.to(device))
            return cls(corpus, teacher, train_rows.to(device), criterion)
        _check_examples(examples, x.shape[0], x.shape[1], "ranking examples")
        sets = [examples]
        if validation is not None:
            _check_examples(validation, x.shape[0], x.shape[1], "validation examples")
            sets.append(validation)
        width = max(s.candidates.shape[1] for s in sets)
        queries = torch.cat([training_matrix(s.query_vectors, x.shape[1], "query vectors", 1) for s in sets]).to(device)
        candidates = torch.from_numpy(np.concatenate([_pad(s.candidates.astype(np.int64), width, 0) for s in sets])).to(device)
        grades = torch.from_numpy(np.concatenate([_pad(s.grades.astype(np.float32), width, 0.0) for s in sets])).to(device)
        mask = torch.from_numpy(np.concatenate([_pad(s.mask.astype(bool), width, False) for s in sets])).to(device)
        n_train = len(examples)
        if validation is None:
            if n_train < 2:
                raise DataError(f"need at least 2 ranking examples to hold some out for model selection, found {n_train}")
            query_train, query_val = held_out_split(n_train, config.val_fraction, generator)
        else:
            query_train, query_val = torch.arange(n_train), torch.arange(n_train, n_train + len(validation))
        criterion = HeldOutNDCG(query_val.to(device), candidates, grades, mask, x.shape[0])
        return cls(corpus, teacher, torch.arange(x.shape[0], device=device), criterion, queries,
                   RaggedCandidates.from_padded(candidates, grades, mask), query_train.to(device))
