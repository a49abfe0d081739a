"""Sequential Matryoshka Representation Learning, SMRL (SMEC paper §3.2), with ADS (§3.3) and
S-XBM (§3.4): train the stages of an :class:`SMECCompressor` one after the other.

Stage k starts from the PCA of its inputs (level k-1, computed with the frozen earlier stages),
is trained alone by :func:`smec_vdb.train.loop.run_stage` on the :class:`Objective` — eq. 7 over
S-XBM neighbours plus the ordering term (``config.order``), and with labels the rank loss of
eq. 8 (eq. 9) — until its held-out criterion stops improving, restored to its best epoch and
frozen; the last stage may read the raw input instead of the previous level
(``config.last_source``). ``use_smrl=False`` trains all stages jointly instead (the MRL row of the ablation,
eq. 1 summed over the dims). The ADS logits have their own learning rate (``ads_lr``).

Example::

    comp = train_smec(corpus_vectors, [128, 64, 32], TrainConfig(epochs=20))
    comp = extend_smec(comp, corpus_vectors, 16)      # earlier outputs stay bit-identical
"""

from __future__ import annotations

import copy
import dataclasses
import time
from typing import Any, Sequence

import torch
from torch import nn

from smec_vdb.compress.smec import SMECCompressor, SMECStage
from smec_vdb.train.config import TrainConfig
from smec_vdb.train.data import TrainingData, training_matrix
from smec_vdb.train.labels import RankingExamples
from smec_vdb.train.loop import run_info, run_stage
from smec_vdb.train.objective import LossTerms, Objective, Outputs
from smec_vdb.train.progress import OptionalProgress, StageReport


class _Anneal:
    """τ and noise scale of the current epoch, set by the loop, read by the stages' ADS."""

    def __init__(self) -> None:
        self.tau, self.noise = 1.0, 1.0

    def __call__(self, tau: float, noise: float) -> None:
        self.tau, self.noise = tau, noise


def smec_terms(config: TrainConfig, supervised: bool) -> LossTerms:
    """SMEC's unsupervised parts: eq. 7 over S-XBM (or in-batch) neighbours plus the ordering term."""
    return LossTerms(similarity=1.0, order=config.order_for(supervised), order_weight=config.order_weight)


class _TrainedStage(nn.Module):
    """What training moves in one stage. With ADS (§3.3): the square W and the logits, as the kept rows
    follow the logits. With a fixed selection: only the kept rows of W, as the other rows never reach an
    output — their gradient and optimizer state are skipped (at 3584 → 512, 1.8 M of 12.8 M weights)."""

    def __init__(self, stage: SMECStage) -> None:
        super().__init__()
        self.learnable = stage.selector.learnable
        self.target = [stage]  # a list: the stage's own W stays out of the state the loop snapshots
        if self.learnable:
            self.stage = stage
        else:
            self.register_buffer("keep", stage.selector.selected().to(stage.weight.device))
            self.rows = nn.Parameter(stage.weight.detach().index_select(0, self.keep).clone())

    @property
    def sampling(self) -> bool:
        return self.learnable and self.stage.selector.sampling

    def weights(self) -> list[nn.Parameter]:
        return [self.stage.weight] if self.learnable else [self.rows]

    def logits(self) -> list[nn.Parameter]:
        return [self.stage.selector.logits] if self.learnable else []

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """The stage's deterministic output (fixed selection, or ADS in eval mode)."""
        return self.stage(z) if self.learnable else z @ self.rows.T

    @torch.no_grad()
    def commit(self) -> None:
        """Write trained kept rows back into the stage's W."""
        if not self.learnable:
            self.target[0].weight.index_copy_(0, self.keep, self.rows.detach())


def train_stages(comp: SMECCompressor, data: TrainingData, config: TrainConfig, first: int, last: int,
                 progress: OptionalProgress = None) -> StageReport:
    """Train stages first..last together (SMRL: first == last), restore their best epoch and freeze them."""
    comp.eval()
    for p in comp.parameters():
        p.requires_grad_(False)
    with torch.no_grad():
        doc_inputs = comp.level_inputs(data.corpus, first).detach()
        query_inputs = comp.level_inputs(data.queries, first).detach() if data.supervised else None
    trained = nn.ModuleList(_TrainedStage(s) for s in comp.stages[first : last + 1])
    weights = [w for t in trained for w in t.weights()]
    logits = [g for t in trained for g in t.logits()]
    for p in (*weights, *logits):
        p.requires_grad_(True)
    groups: list[dict[str, Any]] = [{"params": weights}]
    if logits:
        groups.append({"params": logits, "lr": config.ads_lr, "weight_decay": 0.0})
    schedule = _Anneal()
    generator = torch.Generator().manual_seed(config.seed + 1000 + first)

    def model(doc_rows: torch.Tensor, query_rows: torch.Tensor | None) -> Outputs:
        z = doc_inputs[doc_rows]
        n = z.shape[0]
        if query_rows is not None:
            z = torch.cat([z, query_inputs[query_rows]])
        docs, queries = [], []
        for stage in trained:
            if stage.sampling:  # the loss sees the soft-k-hot-weighted output (eq. 6 relaxation)
                out, z = stage.stage.masked(z, schedule.tau, schedule.noise, generator)
            else:
                out = z = stage(z)
            docs.append(out[:n])
            queries.append(out[n:])
        return Outputs(docs, queries if query_rows is not None else None)

    def level(inputs: torch.Tensor, upto: int) -> torch.Tensor:
        for stage in trained[: upto + 1]:
            inputs = stage(inputs)
        return inputs

    def score() -> float:
        values = [data.criterion.score(lambda rows, j=j: level(doc_inputs[rows], j),
                                       (lambda rows, j=j: level(query_inputs[rows], j)) if data.supervised else None)
                  for j in range(len(trained))]
        return sum(values) / len(values)

    comp.train()
    report = run_stage(state=trained, param_groups=groups, objective=Objective(data, config, smec_terms(config, data.supervised)),
                       model=model, score=score, data=data, config=config, progress=progress, stage=first,
                       stage_dim=comp.dims[last], num_stages=len(comp.stages),
                       on_anneal=schedule if logits else None)
    for stage in trained:
        stage.commit()
    for p in comp.parameters():
        p.requires_grad_(False)
    comp.eval()
    return report


def fit_stage(comp: SMECCompressor, data: TrainingData, config: TrainConfig, k: int,
              progress: OptionalProgress = None, warm: TrainingData | None = None) -> StageReport:
    """Train stage ``k`` alone and freeze it; with ``warm`` (the unsupervised view of labelled data) it
    first trains unsupervised, and the labelled run starts from that state (one report, epochs summed)."""
    if warm is None:
        return train_stages(comp, data, config, k, k, progress)
    first = train_stages(comp, warm, config, k, k, progress)
    second = train_stages(comp, data, config, k, k, progress)
    return dataclasses.replace(second, epochs=first.epochs + second.epochs,
                               seconds=round(first.seconds + second.seconds, 3))


def _init_stage(comp: SMECCompressor, data: TrainingData, k: int) -> None:
    with torch.no_grad():
        comp.eval()
        comp.stages[k].init_pca(comp.level_inputs(data.corpus, k))


def _train_last_stage(comp: SMECCompressor, data: TrainingData, config: TrainConfig,
                      progress: OptionalProgress, warm: TrainingData | None) -> tuple[SMECCompressor, StageReport]:
    """Train the last stage from the chain, the raw input, or both (``last_source='auto'``: the better
    held-out score wins, the chain on a tie)."""
    last = len(comp.stages) - 1
    sources = ["chain", "input"] if config.last_source == "auto" else [config.last_source]
    if last == 0:
        sources = ["chain"]  # a single stage reads the input either way
    best: tuple[SMECCompressor, StageReport] | None = None
    for source in sources:
        candidate = copy.deepcopy(comp) if len(sources) > 1 else comp
        if source == "input":
            candidate.read_input(last)
        _init_stage(candidate, data, last)
        report = fit_stage(candidate, data, config, last, progress, warm)
        if best is None or report.best_score > best[1].best_score:
            best = (candidate, report)
    return best


def _warm_start_data(x: torch.Tensor, config: TrainConfig, data: TrainingData) -> TrainingData | None:
    """The unsupervised view of labelled ``data`` when ``config.warm_start`` asks for it, else None."""
    return TrainingData.build(x, config) if data.supervised and config.warm_start else None


def train_smec(
    vectors: Any,
    dims: Sequence[int],
    config: TrainConfig | None = None,
    examples: RankingExamples | None = None,
    progress: OptionalProgress = None,
    validation: RankingExamples | None = None,
) -> SMECCompressor:
    """Train an SMEC compressor on frozen ``vectors`` (N, D) for the decreasing ``dims`` schedule."""
    config = config or TrainConfig()
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    x = training_matrix(vectors)
    comp = SMECCompressor(x.shape[1], dims, use_ads=config.use_ads).to(config.resolved_device())
    data = TrainingData.build(x, config, examples, validation)
    warm = _warm_start_data(x, config, data)
    reports = []
    if config.use_smrl:
        last = len(comp.stages) - 1
        for k in range(last):
            _init_stage(comp, data, k)
            reports.append(fit_stage(comp, data, config, k, progress, warm))
        comp, report = _train_last_stage(comp, data, config, progress, warm)
        reports.append(report)
    else:
        for k in range(len(comp.stages)):
            _init_stage(comp, data, k)
        reports.append(train_stages(comp, data, config, 0, len(comp.stages) - 1, progress))
    comp = comp.cpu().eval()
    comp.training_info = run_info(x, config, reports, time.perf_counter() - started, data.supervised)
    return comp


def extend_smec(
    comp: SMECCompressor,
    vectors: Any,
    new_dim: int,
    config: TrainConfig | None = None,
    examples: RankingExamples | None = None,
    progress: OptionalProgress = None,
    validation: RankingExamples | None = None,
) -> SMECCompressor:
    """Append and train one stage dims[-1] → ``new_dim``; earlier stages stay frozen and bit-identical."""
    config = config or TrainConfig()
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    x = training_matrix(vectors, comp.input_dim)
    data = TrainingData.build(x, config, examples, validation)
    k = comp.extend(new_dim)
    comp.to(config.resolved_device())
    _init_stage(comp, data, k)
    report = fit_stage(comp, data, config, k, progress, _warm_start_data(x, config, data))
    comp = comp.cpu().eval()
    comp.training_info = run_info(x, config, [report], time.perf_counter() - started, data.supervised,
                                  previous=comp.training_info)
    return comp


__all__ = ["extend_smec", "train_smec", "train_stages"]
