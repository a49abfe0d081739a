"""Training options shared by SMEC and the baselines, validated on construction.

Defaults follow the paper where it gives a value (α = 1.0, §4.2; S-XBM memory of 5,000
frozen embeddings, §3.4) and are otherwise set from issue 12's measurements (SciFact and NFCorpus
MiniLM, test nDCG@10, `benchmarks/quality.py`): lr 3e-3 decayed ×0.3 twice on held-out plateaus of
3 epochs (SciFact supervised .797/.786/.684 at 128/64/32 against .715/.694/.606 at a fixed 3e-4 and
a 10-epoch cap), the ordering term by mode (``auto``), and an unsupervised warm start of labelled
stages (NFCorpus supervised 64/32: .284/.215 against .273/.203 without).

Example::

    cfg = TrainConfig(epochs=20, memory_size=2000, seed=7)
    cfg.resolved_device()   # "cuda" when a GPU is visible, else "cpu"
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch

from smec_vdb.errors import ConfigError


@dataclass(frozen=True)
class TrainConfig:
    """Options of one training run.

    epochs:         maximum epochs per stage (SMEC) or per training run (baselines).
    patience:       epochs without a validation improvement larger than ``min_delta`` before the run
                    goes back to its best state and decays the learning rate (or stops).
    lr_decays:      how many times a stalled run restarts from its best state at ``lr_decay`` × the rate.
    batch_size:     corpus vectors per step; queries are spread evenly over the same steps.
    memory_size:    S-XBM FIFO capacity in frozen input embeddings (§3.4).
    memory_topk:    neighbours per item retrieved from the memory for L_unsup (eq. 7).
    alpha:          weight of L_unsup in L_total = L_rank + α·L_unsup (eq. 9).
    order:          SMEC's neighbour-ordering term added to eq. 7 inside L_unsup: off, pairwise, listwise or
                    auto (pairwise without labels, off with them).
    order_weight:   its weight.
    order_temperature: softmax temperature of the listwise ordering term.
    tau_start/end:  Gumbel-softmax temperature of ADS, annealed geometrically over ``anneal_epochs``.
    anneal_epochs:  epochs over which τ and the Gumbel noise (1 → 0) are annealed; a stage with ADS
                    runs at least this many epochs (capped by ``epochs``).
    ads_lr:         learning rate of the ADS logits (their own parameter group, no weight decay).
    rank_negatives: hard negatives per query (top full-dim cosine, not judged relevant) for L_rank.
    rank_scale:     multiplies cosine differences inside the rank loss (1 = literal eq. 8).
    val_fraction:   share of the corpus vectors (unsupervised) or training queries (supervised, when no
                    dev split is given) held out for model selection and early stopping.
    last_source:    what the last stage of a sequential run reads: ``chain`` (the previous level, §3.2),
                    ``input`` (the raw vectors) or ``auto`` (train both, keep the better held-out score).
    warm_start:     with labels, each SMEC stage first trains unsupervised (held-out recall), and the
                    labelled run (held-out nDCG) starts from that state instead of the stage's PCA.
    use_smrl/ads/xbm: switches for ablations: parallel MRL training, prefix truncation, in-batch neighbours.
    """

    epochs: int = 30
    patience: int = 3
    min_delta: float = 1e-4
    batch_size: int = 256
    lr: float = 3e-3
    lr_decay: float = 0.3
    lr_decays: int = 2
    weight_decay: float = 0.0
    memory_size: int = 5000
    memory_topk: int = 32
    alpha: float = 1.0
    order: str = "auto"
    order_weight: float = 5.0
    order_temperature: float = 0.05
    tau_start: float = 1.0
    tau_end: float = 0.1
    anneal_epochs: int = 8
    ads_lr: float = 2e-2
    rank_negatives: int = 100
    rank_scale: float = 20.0
    val_fraction: float = 0.1
    seed: int = 0
    device: str = "auto"
    last_source: str = "chain"
    warm_start: bool = True
    use_smrl: bool = True
    use_ads: bool = False
    use_xbm: bool = True

    def __post_init__(self) -> None:
        positive_ints = ("epochs", "batch_size", "memory_size", "memory_topk", "anneal_epochs")
        for name in positive_ints:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, found {value!r}")
        for name in ("patience", "lr_decays", "rank_negatives", "seed"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"{name} must be a non-negative integer, found {value!r}")
        if self.last_source not in ("chain", "input", "auto"):
            raise ConfigError(f"last_source must be chain, input or auto, found {self.last_source!r}")
        if self.order not in ("auto", "off", "pairwise", "listwise"):
            raise ConfigError(f"order must be auto, off, pairwise or listwise, found {self.order!r}")
        for name in ("lr", "ads_lr", "tau_start", "tau_end", "rank_scale", "order_temperature"):
            if not float(getattr(self, name)) > 0:
                raise ConfigError(f"{name} must be > 0, found {getattr(self, name)!r}")
        for name in ("min_delta", "weight_decay", "alpha", "order_weight"):
            if not float(getattr(self, name)) >= 0:
                raise ConfigError(f"{name} must be >= 0, found {getattr(self, name)!r}")
        if self.tau_end > self.tau_start:
            raise ConfigError(f"tau_end ({self.tau_end}) must not exceed tau_start ({self.tau_start})")
        if not 0.0 < self.lr_decay < 1.0:
            raise ConfigError(f"lr_decay must be in (0, 1), found {self.lr_decay!r}")
        if not 0.0 < self.val_fraction < 0.5:
            raise ConfigError(f"val_fraction must be in (0, 0.5), found {self.val_fraction!r}")
        if self.device != "auto" and not (self.device == "cpu" or self.device.startswith("cuda")):
            raise ConfigError(f"device must be 'auto', 'cpu' or 'cuda[:N]', found {self.device!r}")
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError(f"device {self.device!r} asked for, but no CUDA device is available")

    def order_for(self, supervised: bool) -> str:
        """The ordering term a run uses: ``auto`` → pairwise without labels, off with them (issue 12's
        measurements: pairwise helps unsupervised SciFact at 64/32, costs supervised SciFact at 64/32)."""
        if self.order != "auto":
            return self.order
        return "off" if supervised else "pairwise"

    def resolved_device(self) -> torch.device:
        """``auto`` → CUDA when available, else CPU."""
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown training options {unknown}; known: {sorted(known)}")
        return cls(**data)
