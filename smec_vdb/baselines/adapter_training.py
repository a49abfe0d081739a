"""Training an adapter of the raw input embedding with the shared loop (the baselines' half of
:mod:`smec_vdb.train.loop`): the adapter's forward maps a batch of input vectors to one output
per trained dim (and, for the reconstruction term, its correction f(e)).

Example::

    report = train_adapter(module, lambda x: ([module(x)[:, :32]], None), LossTerms(), data, config)
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from smec_vdb.train.config import TrainConfig
from smec_vdb.train.data import TrainingData
from smec_vdb.train.loop import run_stage
from smec_vdb.train.objective import LossTerms, Objective, Outputs
from smec_vdb.train.progress import OptionalProgress, StageReport

Forward = Callable[[torch.Tensor], tuple[Sequence[torch.Tensor], "torch.Tensor | None"]]


def train_adapter(state: nn.Module, forward: Forward, terms: LossTerms, data: TrainingData, config: TrainConfig,
                  progress: OptionalProgress = None, *, stage: int = 0, stage_dim: int = 0,
                  num_stages: int = 1) -> StageReport:
    """Train every parameter of ``state`` on ``terms``; selection on the mean held-out score over its outputs."""

    def model(doc_rows: torch.Tensor, query_rows: torch.Tensor | None) -> Outputs:
        x = data.corpus[doc_rows]
        n = x.shape[0]
        if query_rows is not None:
            x = torch.cat([x, data.queries[query_rows]])
        outs, residual = forward(x)
        queries = [o[n:] for o in outs] if query_rows is not None else None
        return Outputs([o[:n] for o in outs], queries, None if residual is None else residual[:n])

    def score() -> float:
        n_out = len(forward(data.corpus[:1])[0])
        values = [data.criterion.score(lambda rows, i=i: forward(data.corpus[rows])[0][i],
                                       (lambda rows, i=i: forward(data.queries[rows])[0][i]) if data.supervised else None)
                  for i in range(n_out)]
        return sum(values) / len(values)

    params = [p for p in state.parameters() if p.requires_grad]
    state.train()
    return run_stage(state=state, param_groups=[{"params": params}], objective=Objective(data, config, terms),
                     model=model, score=score, data=data, config=config, progress=progress, stage=stage,
                     stage_dim=stage_dim, num_stages=num_stages)
