"""Fitting the baselines that have nothing to train (truncation, PCA, variance-ranked selection):
their ``training_info`` carries one report per dim with the same held-out criterion the trained
methods select on (0 epochs), so every method's summary has a row per dim.

Example::

    comp.training_info = untrained_info(comp, x, config, started)
"""

from __future__ import annotations

import time

import torch

from smec_vdb.compress.base import Compressor
from smec_vdb.train.config import TrainConfig
from smec_vdb.train.data import TrainingData
from smec_vdb.train.loop import run_info, untrained_report


@torch.no_grad()
def untrained_info(comp: Compressor, x: torch.Tensor, config: TrainConfig | None, started: float) -> dict:
    """Held-out recall@10 of each of ``comp``'s dims on ``x`` (unsupervised split of ``config``)."""
    data = TrainingData.build(x, config or TrainConfig(device="cpu"))
    comp.to(data.corpus.device)
    reports = [untrained_report(data, d, lambda rows, d=d: comp.project(data.corpus[rows], d)) for d in comp.dims]
    comp.cpu()
    return run_info(x, config, reports, time.perf_counter() - started, supervised=False)
