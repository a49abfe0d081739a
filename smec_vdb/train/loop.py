"""The one trainer loop every trained method runs (SMEC stages, adaptors, ADS selection).

Per epoch: shuffle the training rows (and labelled queries, spread evenly over the same
steps), take AdamW steps on the objective's summed parts, then score the held-out criterion
in eval mode. The initial state is epoch 0, so a run never ends worse on the held-out set than
where it started. After ``patience`` epochs without a gain above ``min_delta`` the best state is
restored and, up to ``lr_decays`` times, training goes on from it with the learning rates
multiplied by ``lr_decay`` (fresh optimizer moments); after that the run stops on the best state.
A rate too high for a dataset (NFCorpus at 3e-3) thus falls back to a smaller one instead of
ending at its starting point, while one that suits it (SciFact) keeps its fast progress. With an ADS selector the Gumbel temperature τ goes geometrically
from ``tau_start`` to ``tau_end`` and the noise scale linearly from 1 to 0 over the first
``anneal_epochs`` epochs (at most ``epochs``), and the run does not stop before that anneal is
over — the schedule always completes within the epochs actually run (§3.3).

Each epoch is logged (logger ``smec_vdb.train``) with its loss parts and held-out score, and
reported to ``progress``. Before every batch and every held-out evaluation the stop check set by
:func:`stop_when` (``train(..., should_stop=…)``; Ctrl-C in the CLI) is asked, and a requested stop
raises :class:`TrainingInterrupted` there, so no compressor is returned or saved half-trained. It is
a context variable rather than an argument so that every method's ``fit`` honours it unchanged.

Example::

    report = run_stage(state=module, param_groups=[{"params": params}], objective=objective,
                       model=model, score=lambda: data.criterion.score(docs), data=data,
                       config=config, stage=0, stage_dim=64, num_stages=1)
"""

from __future__ import annotations

import copy
import logging
import math
import time
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Callable, Iterator, Sequence

import torch
from torch import nn

from smec_vdb.errors import TrainingInterrupted
from smec_vdb.train.config import TrainConfig
from smec_vdb.train.data import TrainingData
from smec_vdb.train.objective import Model, Objective
from smec_vdb.train.progress import OptionalProgress, ProgressEvent, StageReport

logger = logging.getLogger("smec_vdb.train")

AnnealHook = Callable[[float, float], None]
StopCheck = Callable[[], bool]

_should_stop: ContextVar[StopCheck | None] = ContextVar("smec_vdb_train_should_stop", default=None)


@contextmanager
def stop_when(should_stop: StopCheck | None) -> Iterator[None]:
    """Within the block, every :func:`run_stage` raises :class:`TrainingInterrupted` once ``should_stop()`` is true."""
    token = _should_stop.set(should_stop)
    try:
        yield
    finally:
        _should_stop.reset(token)


def check_stop(stage: int, stage_dim: int, epoch: int, where: str) -> None:
    """Raise :class:`TrainingInterrupted` if the stop check of :func:`stop_when` asks for a stop."""
    should_stop = _should_stop.get()
    if should_stop is not None and should_stop():
        raise TrainingInterrupted(f"training interrupted in stage {stage + 1} ({stage_dim}-d), epoch {epoch}, "
                                  f"{where}: nothing was saved")


def anneal(config: TrainConfig, epoch: int) -> tuple[float, float]:
    """(τ, noise scale) of ``epoch`` (from 1): τ geometric tau_start→tau_end, noise 1→0, over the anneal epochs."""
    span = min(config.epochs, config.anneal_epochs)
    t = 1.0 if span <= 1 else min(1.0, (epoch - 1) / (span - 1))
    return config.tau_start * (config.tau_end / config.tau_start) ** t, 1.0 - t


def run_stage(
    *,
    state: nn.Module,
    param_groups: Sequence[dict[str, Any]],
    objective: Objective,
    model: Model,
    score: Callable[[], float],
    data: TrainingData,
    config: TrainConfig,
    progress: OptionalProgress = None,
    stage: int = 0,
    stage_dim: int = 0,
    num_stages: int = 1,
    on_anneal: AnnealHook | None = None,
) -> StageReport:
    """Train ``param_groups`` (parameters of ``state``) to the best held-out ``score``; restore that state."""
    started = time.perf_counter()
    generator = torch.Generator().manual_seed(config.seed + stage)
    base_lrs = [group.get("lr", config.lr) for group in param_groups]

    def new_optimizer(scale: float) -> torch.optim.Optimizer:
        groups = [{**group, "lr": lr * scale} for group, lr in zip(param_groups, base_lrs)]
        return torch.optim.AdamW(groups, lr=config.lr * scale, weight_decay=config.weight_decay)

    optimizer, lr_scale, decays_left = new_optimizer(1.0), 1.0, config.lr_decays
    criterion = data.criterion.name

    def evaluate(epoch: int = 0) -> float:
        check_stop(stage, stage_dim, epoch, "before the held-out evaluation")
        state.eval()
        value = score()
        state.train()
        return value

    initial = best = evaluate()
    best_state, best_epoch = copy.deepcopy(state.state_dict()), 0
    min_epochs = min(config.epochs, config.anneal_epochs) if on_anneal is not None else 0
    rows = data.train_rows
    steps = max(1, math.ceil(rows.numel() / config.batch_size))
    stale, epochs_run = 0, 0
    for epoch in range(1, config.epochs + 1):
        epochs_run = epoch
        if on_anneal is not None:
            on_anneal(*anneal(config, epoch))
        order = rows[torch.randperm(rows.numel(), generator=generator).to(rows.device)]
        query_chunks: list[torch.Tensor | None] = [None] * steps
        if data.supervised:
            q = data.query_train
            query_chunks = list(torch.tensor_split(q[torch.randperm(q.numel(), generator=generator).to(q.device)], steps))
        sums: dict[str, float] = {}
        for step in range(steps):
            check_stop(stage, stage_dim, epoch, f"batch {step + 1}/{steps}")
            anchors = order[step * config.batch_size : (step + 1) * config.batch_size]
            parts = objective(model, anchors, query_chunks[step])
            loss = sum(parts.values())
            if not isinstance(loss, torch.Tensor) or not loss.requires_grad:
                continue  # e.g. a lone leftover row has no neighbour pair
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            for name, value in parts.items():
                sums[name] = sums.get(name, 0.0) + float(value.detach())
        mean_parts = {name: value / steps for name, value in sums.items()}
        value = evaluate(epoch)
        improved = value > best + config.min_delta
        if improved:
            best, best_state, best_epoch, stale = value, copy.deepcopy(state.state_dict()), epoch, 0
        else:
            stale += 1
        total = sum(mean_parts.values())
        logger.info("stage %d (%dd) epoch %d/%d: loss %.5f (%s), held-out %s %.4f%s", stage, stage_dim, epoch,
                    config.epochs, total, ", ".join(f"{k} {v:.5f}" for k, v in mean_parts.items()), criterion, value,
                    " (best)" if improved else "")
        if progress is not None:
            progress(ProgressEvent(stage, stage_dim, num_stages, epoch, config.epochs, total, criterion, value, best,
                                   improved, time.perf_counter() - started, mean_parts))
        if stale >= max(1, config.patience) and epoch >= min_epochs:
            if decays_left == 0:
                break
            decays_left, lr_scale, stale = decays_left - 1, lr_scale * config.lr_decay, 0
            state.load_state_dict(best_state)
            optimizer = new_optimizer(lr_scale)
            logger.info("stage %d (%dd): back to epoch %d, learning rate × %g", stage, stage_dim, best_epoch, lr_scale)
    state.load_state_dict(best_state)
    state.eval()
    return StageReport(stage_dim, epochs_run, criterion, initial, best, best_epoch, epochs_run < config.epochs,
                       round(time.perf_counter() - started, 3))


def untrained_report(data: TrainingData, dim: int, docs: Callable[[torch.Tensor], torch.Tensor]) -> StageReport:
    """The report of a dim that has nothing to train (PCA, truncation): the held-out score of the
    encoder ``docs(rows)`` (an unsupervised criterion), 0 epochs."""
    value = data.criterion.score(docs)
    return StageReport(dim, 0, data.criterion.name, value, value, 0, False, 0.0)


def run_info(x: torch.Tensor, config: TrainConfig | None, reports: Sequence[StageReport], seconds: float,
             supervised: bool, previous: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """The ``training_info`` every method records: config, one report per stage, data fingerprint,
    wall time; ``previous`` (an extended compressor's info) keeps its earlier stages and time."""
    from smec_vdb.compress.artifact import fingerprint_vectors

    previous = previous or {}
    return {
        **extra,
        "config": None if config is None else config.to_dict(),
        "stages": previous.get("stages", []) + [r.to_dict() for r in reports],
        "data_fingerprint": previous.get("data_fingerprint") or fingerprint_vectors(x),
        "supervised": supervised,
        "seconds": round(previous.get("seconds", 0.0) + seconds, 3),
    }
