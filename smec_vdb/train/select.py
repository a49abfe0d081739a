"""Fitting a :class:`~smec_vdb.compress.selection.SelectionCompressor` (the SMEC paper's Table 2 setting).

``ads``: level after level, an :class:`AdaptiveDimensionSelector` over the previous level's kept
raw dims (logits starting at the prefix order, so moving away from truncation must be learnt) is
trained by the shared loop on eq. 7 over S-XBM neighbours (plus the rank loss with labels), with
the eq.-6 Gumbel-softmax annealed over the epochs run; its deterministic top-k is recorded.
``prefix`` / ``variance`` need no training.

Example::

    comp = fit_selection(SelectionCompressor, corpus, [64, 32], TrainConfig(), strategy="ads")
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import torch

from smec_vdb.compress.ads import AdaptiveDimensionSelector
from smec_vdb.compress.selection import SelectionCompressor
from smec_vdb.train.config import TrainConfig
from smec_vdb.train.data import TrainingData
from smec_vdb.train.loop import run_info, run_stage, untrained_report
from smec_vdb.train.objective import LossTerms, Objective, Outputs
from smec_vdb.train.progress import StageReport


def _train_level(selector: AdaptiveDimensionSelector, previous: torch.Tensor, data: TrainingData,
                 config: TrainConfig, progress: Any, stage: int, num_stages: int) -> StageReport:
    tau_noise = [1.0, 1.0]
    generator = torch.Generator().manual_seed(config.seed + 2000 + stage)

    def gather(x: torch.Tensor) -> torch.Tensor:
        return x.index_select(1, previous)

    def model(doc_rows: torch.Tensor, query_rows: torch.Tensor | None) -> Outputs:
        z = gather(data.corpus[doc_rows])
        n = z.shape[0]
        if query_rows is not None:
            z = torch.cat([z, gather(data.queries[query_rows])])
        out, _ = selector.masked(z, tau_noise[0], tau_noise[1], generator)
        return Outputs([out[:n]], [out[n:]] if query_rows is not None else None)

    def score() -> float:
        return data.criterion.score(lambda rows: selector(gather(data.corpus[rows])),
                                    (lambda rows: selector(gather(data.queries[rows]))) if data.supervised else None)

    def on_anneal(tau: float, noise: float) -> None:
        tau_noise[:] = [tau, noise]

    selector.train()
    return run_stage(state=selector, param_groups=[{"params": [selector.logits], "lr": config.ads_lr}],
                     objective=Objective(data, config, LossTerms(similarity=1.0, order=config.order_for(data.supervised),
                                                                 order_weight=config.order_weight)),
                     model=model, score=score, data=data, config=config, progress=progress, stage=stage,
                     stage_dim=selector.k, num_stages=num_stages, on_anneal=on_anneal)


def fit_selection(cls: type[SelectionCompressor], vectors: Any, dims: Sequence[int], config: TrainConfig | None,
                  examples: Any, progress: Any, validation: Any, strategy: str) -> SelectionCompressor:
    started = time.perf_counter()
    config = config or TrainConfig()
    torch.manual_seed(config.seed)
    data = TrainingData.build(vectors, config, examples if strategy == "ads" else None,
                              validation if strategy == "ads" else None)
    comp = cls(data.corpus.shape[1], dims, strategy)
    previous = torch.arange(comp.input_dim, device=data.corpus.device)
    variance = data.corpus.var(dim=0)
    reports = []
    for stage, d in enumerate(comp.dims):
        if strategy == "ads":
            selector = AdaptiveDimensionSelector(previous.numel(), d).to(data.corpus.device)
            reports.append(_train_level(selector, previous, data, config, progress, stage, len(comp.dims)))
            keep = previous[selector.selected()]
        else:
            order = torch.arange(previous.numel(), device=previous.device)
            if strategy == "variance":
                order = torch.argsort(variance[previous], descending=True, stable=True)
            keep = previous[order[:d]]
            reports.append(untrained_report(data, d, lambda rows, keep=keep: data.corpus[rows].index_select(1, keep)))
        comp.set_kept(d, keep.cpu())
        previous = torch.sort(keep).values
    comp.eval()
    comp.training_info = run_info(data.corpus.cpu(), config, reports, time.perf_counter() - started, data.supervised,
                                  strategy=strategy)
    return comp
