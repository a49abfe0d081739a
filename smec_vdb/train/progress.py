"""Progress reporting of a training run: one event per epoch, one report per stage.

The library never prints: callers pass ``progress: ProgressCallback`` (the CLI renders it).

Example::

    events = []
    comp = train(vectors, [64, 32], progress=events.append)
    events[-1].stage_dim   # 32
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Optional


@dataclass(frozen=True)
class ProgressEvent:
    """End of one epoch of one stage (``stage`` counts from 0; a joint run uses stage 0 and its smallest dim)."""

    stage: int
    stage_dim: int
    num_stages: int
    epoch: int
    max_epochs: int
    train_loss: float
    val_loss: float
    best_val_loss: float
    improved: bool
    seconds: float


ProgressCallback = Callable[[ProgressEvent], None]
OptionalProgress = Optional[ProgressCallback]


@dataclass(frozen=True)
class StageReport:
    """Outcome of one stage: the dim it produces, epochs run, best validation loss, early stop, wall time."""

    dim: int
    epochs: int
    best_val_loss: float
    stopped_early: bool
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
