"""Progress reporting of a training run: one event per epoch, one report per stage.

The library never prints: callers pass ``progress: ProgressCallback`` (the CLI renders it);
the trainer also logs each epoch on the ``smec_vdb.train`` logger.

Example::

    events = []
    comp = train(vectors, [64, 32], progress=events.append)
    events[-1].stage_dim, events[-1].criterion   # 32, 'recall@10'
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Optional


@dataclass(frozen=True)
class ProgressEvent:
    """End of one epoch of one stage (``stage`` counts from 0; a joint run uses stage 0 and its smallest dim).

    ``train_loss`` is the epoch's mean total loss and ``loss_parts`` its named parts;
    ``score`` the held-out selection criterion (``criterion``, higher is better).
    """

    stage: int
    stage_dim: int
    num_stages: int
    epoch: int
    max_epochs: int
    train_loss: float
    criterion: str
    score: float
    best_score: float
    improved: bool
    seconds: float
    loss_parts: dict[str, float] = field(default_factory=dict)


ProgressCallback = Callable[[ProgressEvent], None]
OptionalProgress = Optional[ProgressCallback]


@dataclass(frozen=True)
class StageReport:
    """Outcome of one stage (or one untrained method's dim): the dim, epochs run (0: nothing to
    train), the held-out ``criterion`` before training and at the restored best epoch, early stop,
    wall time."""

    dim: int
    epochs: int
    criterion: str
    initial_score: float
    best_score: float
    best_epoch: int
    stopped_early: bool
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
