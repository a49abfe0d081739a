"""Training machinery shared by the trained baselines (Matryoshka-Adaptor, Search-Adaptor).

* :func:`corpus_matrix` validates the corpus vectors every baseline's ``fit`` receives;
* :class:`AdapterObjective` is the loss of one step: unsupervised similarity preservation over
  in-batch top-k neighbours (SMEC paper §3.1 eq. 3/4 scored with eq. 7), plus, with labelled
  examples, the rank loss (eq. 8) as L_rank + α·L_unsup (eq. 9), summed over the dims being
  trained (eq. 1 with c_m = 1);
* :func:`train_adapter` runs epochs with Adam, early stopping on a held-out split (patience,
  min_delta from :class:`TrainConfig`) and restores the best state.

Example::

    data = TrainingData.build(vectors, examples, config)
    report = train_adapter(model, list(model.parameters()), lambda x: [model.project(x, 32)],
                           data, config, progress, stage=0, stage_dim=32, num_stages=1)
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from smec_vdb.compress.artifact import fingerprint_vectors
from smec_vdb.errors import DataError, DimensionError, InvalidVectorError
from smec_vdb.train.config import TrainConfig
from smec_vdb.train.labels import RankingExamples
from smec_vdb.train.progress import OptionalProgress, ProgressEvent, StageReport
from smec_vdb.train.rank_loss import RankLoss
from smec_vdb.train.similarity_loss import SimilarityPreservationLoss

Encoder = Callable[[torch.Tensor], Sequence[torch.Tensor]]


def corpus_matrix(vectors: Any, what: str = "training vectors", min_rows: int = 2) -> np.ndarray:
    """``vectors`` as a float32 (N, D) array with N >= ``min_rows`` finite, non-zero rows, or a typed error."""
    arr = vectors.detach().cpu().numpy() if isinstance(vectors, torch.Tensor) else np.asarray(vectors)
    if arr.dtype.kind not in "fiu":
        raise DataError(f"expected numeric {what}, found dtype {arr.dtype}")
    if arr.ndim != 2:
        raise DimensionError(f"expected {what} of shape (n, dim), found shape {arr.shape}")
    if arr.shape[0] < min_rows:
        raise InvalidVectorError(f"need at least {min_rows} {what}, found {arr.shape[0]}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        raise InvalidVectorError(f"{what}: row {int(np.argmax(bad))} holds NaN or inf ({int(bad.sum())} such rows)")
    zero = ~arr.any(axis=1)
    if zero.any():
        raise InvalidVectorError(f"{what}: row {int(np.argmax(zero))} is all zeros ({int(zero.sum())} such rows)")
    return arr


def fit_report(x: np.ndarray, seconds: float, **extra: Any) -> dict[str, Any]:
    """The ``training_info`` every baseline records: data fingerprint, wall time, method details."""
    return {"data_fingerprint": fingerprint_vectors(x), "seconds": round(float(seconds), 3), **extra}


def _split(n: int, val_fraction: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random (train, val) row indices; val holds round(n·val_fraction) rows, at least 2 when n >= 4."""
    perm = torch.randperm(n, generator=generator)
    n_val = min(max(round(n * val_fraction), 2 if n >= 4 else 0), n - 2)
    return perm[n_val:], perm[:n_val]


@dataclass
class TrainingData:
    """Corpus (and optional labelled queries) on the training device, split into train/val rows."""

    corpus: torch.Tensor
    corpus_train: torch.Tensor
    corpus_val: torch.Tensor
    queries: torch.Tensor | None = None
    candidates: torch.Tensor | None = None
    grades: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    query_train: torch.Tensor | None = None
    query_val: torch.Tensor | None = None

    @property
    def supervised(self) -> bool:
        return self.queries is not None

    @classmethod
    def build(cls, x: np.ndarray, examples: RankingExamples | None, config: TrainConfig) -> "TrainingData":
        device = config.resolved_device()
        generator = torch.Generator().manual_seed(config.seed)
        train, val = _split(x.shape[0], config.val_fraction, generator)
        data = cls(torch.from_numpy(x).to(device), train, val)
        if examples is None:
            return data
        if examples.query_vectors.shape[1] != x.shape[1]:
            raise DimensionError(
                f"query vectors have width {examples.query_vectors.shape[1]}, the corpus has width {x.shape[1]}"
            )
        if len(examples) == 0:
            raise DataError("ranking examples hold no queries")
        if examples.candidates.size and (examples.candidates.min() < 0 or examples.candidates.max() >= x.shape[0]):
            raise DataError(f"candidate doc indices fall outside the {x.shape[0]} corpus vectors")
        q_train, q_val = _split(len(examples), config.val_fraction, generator)
        data.queries = torch.from_numpy(corpus_matrix(examples.query_vectors, "query vectors", min_rows=1)).to(device)
        data.candidates = torch.from_numpy(np.asarray(examples.candidates, dtype=np.int64)).to(device)
        data.grades = torch.from_numpy(np.asarray(examples.grades, dtype=np.float32)).to(device)
        data.mask = torch.from_numpy(np.asarray(examples.mask, dtype=bool)).to(device)
        data.query_train, data.query_val = q_train, q_val
        return data


class AdapterObjective:
    """Loss of one step for the outputs ``encode(x)`` returns (one tensor per trained dim).

    Unsupervised: each corpus row's top-k most cosine-similar rows in the same batch (eq. 3/4,
    k = ``memory_topk``) must keep their full-dim cosine in every output (eq. 7).
    Supervised: the rank loss (eq. 8) over each query's candidates, plus α times the above.
    """

    def __init__(self, data: TrainingData, config: TrainConfig) -> None:
        self.data = data
        self.topk = config.memory_topk
        self.alpha = config.alpha
        self.similarity = SimilarityPreservationLoss()
        self.rank = RankLoss(scale=config.rank_scale)

    def unsupervised(self, encode: Encoder, rows: torch.Tensor) -> torch.Tensor:
        x = self.data.corpus[rows]
        if x.shape[0] < 2:
            return x.new_zeros(())
        k = min(self.topk, x.shape[0] - 1)
        unit = F.normalize(x, dim=1)
        cos = unit @ unit.T
        cos.fill_diagonal_(-math.inf)
        neighbours = cos.topk(k, dim=1).indices
        total = x.new_zeros(())
        for low in encode(x):
            total = total + self.similarity(x, x[neighbours], low, low[neighbours])
        return total

    def supervised(self, encode: Encoder, query_rows: torch.Tensor) -> torch.Tensor:
        d = self.data
        candidates = d.candidates[query_rows]
        docs = d.corpus[candidates.reshape(-1)]
        total = docs.new_zeros(())
        for low_q, low_docs in zip(encode(d.queries[query_rows]), encode(docs)):
            low_docs = F.normalize(low_docs, dim=1).reshape(*candidates.shape, -1)
            scores = torch.einsum("qd,qcd->qc", F.normalize(low_q, dim=1), low_docs)
            total = total + self.rank(scores, d.grades[query_rows], d.mask[query_rows])
        return total

    def __call__(self, encode: Encoder, rows: torch.Tensor, query_rows: torch.Tensor | None) -> torch.Tensor:
        loss = self.unsupervised(encode, rows)
        if query_rows is None or len(query_rows) == 0:
            return loss
        return self.supervised(encode, query_rows) + self.alpha * loss

    @torch.no_grad()
    def validation(self, encode: Encoder, batch_size: int) -> float:
        """Mean loss over the held-out corpus rows (and queries), in fixed batches: deterministic."""
        d = self.data
        val = d.corpus_val
        query_val = d.query_val if d.supervised else None
        n_batches = max(1, math.ceil(len(val) / batch_size))
        query_chunks = _chunks(query_val, n_batches)
        total = 0.0
        for i in range(n_batches):
            total += float(self(encode, val[i * batch_size : (i + 1) * batch_size], query_chunks[i]))
        return total / n_batches


def _chunks(rows: torch.Tensor | None, n: int) -> list[torch.Tensor | None]:
    """Spread ``rows`` over ``n`` steps (queries ride along with the corpus batches)."""
    if rows is None:
        return [None] * n
    return list(torch.tensor_split(rows, n))


@dataclass
class RunReport:
    """One training run: its :class:`StageReport`, the initial validation loss and the per-epoch history."""

    stage: StageReport
    initial_val_loss: float
    train_losses: list[float]
    val_losses: list[float]

    def to_dict(self) -> dict[str, Any]:
        return {**self.stage.to_dict(), "initial_val_loss": self.initial_val_loss,
                "train_losses": self.train_losses, "val_losses": self.val_losses}


def train_adapter(
    state: nn.Module,
    parameters: Sequence[nn.Parameter],
    encode: Encoder,
    data: TrainingData,
    config: TrainConfig,
    progress: OptionalProgress,
    *,
    stage: int,
    stage_dim: int,
    num_stages: int,
) -> RunReport:
    """Adam on ``parameters`` for up to ``config.epochs`` epochs with early stopping.

    The validation loss of the initial state counts as epoch 0, so a run never ends worse (on
    validation) than where it started; ``state``'s best state_dict is restored at the end.
    Batches: ``batch_size`` corpus rows per step, with the
    training queries spread evenly over the same steps. Order comes from a generator seeded
    with ``config.seed``.
    """
    start = time.perf_counter()
    objective = AdapterObjective(data, config)
    generator = torch.Generator().manual_seed(config.seed + stage)
    optimizer = torch.optim.Adam(parameters, lr=config.lr, weight_decay=config.weight_decay)
    initial = best = objective.validation(encode, config.batch_size)
    best_state = copy.deepcopy(state.state_dict())
    train_losses: list[float] = []
    val_losses: list[float] = []
    stale = 0
    epochs_run = 0
    for epoch in range(1, config.epochs + 1):
        epochs_run = epoch
        rows = data.corpus_train[torch.randperm(len(data.corpus_train), generator=generator)]
        n_steps = max(1, math.ceil(len(rows) / config.batch_size))
        query_rows = None
        if data.supervised:
            query_rows = data.query_train[torch.randperm(len(data.query_train), generator=generator)]
        query_chunks = _chunks(query_rows, n_steps)
        epoch_loss = 0.0
        for step in range(n_steps):
            batch = rows[step * config.batch_size : (step + 1) * config.batch_size]
            loss = objective(encode, batch, query_chunks[step])
            if not loss.requires_grad:  # a lone leftover row has no neighbour pair
                continue
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            epoch_loss += float(loss.detach())
        train_losses.append(epoch_loss / n_steps)
        val = objective.validation(encode, config.batch_size)
        val_losses.append(val)
        improved = val < best - config.min_delta
        if improved:
            best, best_state, stale = val, copy.deepcopy(state.state_dict()), 0
        else:
            stale += 1
        if progress is not None:
            progress(ProgressEvent(stage, stage_dim, num_stages, epoch, config.epochs, train_losses[-1], val,
                                   best, improved, time.perf_counter() - start))
        if not improved and stale >= config.patience:
            break
    state.load_state_dict(best_state)
    stopped_early = epochs_run < config.epochs
    report = StageReport(stage_dim, epochs_run, best, stopped_early, round(time.perf_counter() - start, 3))
    return RunReport(report, initial, train_losses, val_losses)
