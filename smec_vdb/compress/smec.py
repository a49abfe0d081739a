"""The SMEC compressor (arXiv 2510.12474): a chain of stages, one per level of the dims schedule.

Level 0 is the raw input (width D); stage k maps level k-1 to level k (width ``dims[k-1]``):

    level_k = ADS_k( W_k · level_{k-1} )        W_k square (d_{k-1} × d_{k-1}), ADS keeps d_k rows

Why this stage shape: a square linear map can rotate any information into the rows ADS keeps
(§3.3 selects dims *of the stage's output*), and with ``W_k`` set to the principal axes of the
level's inputs and ADS logits set to the log explained variance, an untrained compressor is
corpus PCA — a strong floor that training (§3.2) then improves. The axes are those of the
centred inputs, but the map is applied to the raw, uncentred input: no mean is subtracted.
The teacher of training is the raw cosine, which keeps the direction common to all vectors;
subtracting the mean removes it for good (a linear map of centred inputs cannot restore a
constant), which costs retrieval quality (SciFact train queries, nDCG@10 at 128/64/32:
.616/.531/.423 centred vs .630/.552/.430 uncentred; NFCorpus dev .269/.237/.175 vs
.291/.255/.196). Being linear, the chain collapses at inference: level k = M_k x with
M_k = W_k[sel_k] · M_{k-1}, precomputed per level (one GEMM per encode, cached on the first
eval-mode call).

Sequential training freezes stage k before stage k+1 starts, so :meth:`extend` can append a
smaller level later without touching earlier stages: their outputs stay bit-identical.

Example::

    comp = SMECCompressor.from_pca(vectors, [128, 64, 32])   # untrained = PCA
    comp.encode(vectors, 64).shape                          # (n, 64)
    comp.selected_indices()[64]                             # rows of level 128 kept by level 64
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from smec_vdb.compress.ads import AdaptiveDimensionSelector
from smec_vdb.compress.base import Compressor, validate_schedule
from smec_vdb.errors import ConfigError


class SMECStage(nn.Module):
    """One transition d_{k-1} → d_k: a square linear map, then dimension selection (ADS or prefix)."""

    def __init__(self, in_dim: int, out_dim: int, *, use_ads: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.eye(in_dim))
        self.selector = AdaptiveDimensionSelector(in_dim, out_dim, learnable=use_ads)

    @property
    def out_dim(self) -> int:
        return self.selector.k

    def forward(self, z: torch.Tensor, tau: float = 1.0, noise: float = 1.0,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """level_k = ADS(W z) (n, d_k). With a fixed selection only the kept rows of W are multiplied."""
        if not self.selector.sampling:
            return z @ self.kept_rows().T
        return self.selector(z @ self.weight.T, tau, noise, generator)

    def masked(self, z: torch.Tensor, tau: float = 1.0, noise: float = 1.0,
               generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Training with ADS: (W z weighted by the soft k-hot, for the loss; its kept columns, for the next stage)."""
        full, keep = self.selector.masked(z @ self.weight.T, tau, noise, generator)
        return full, full.index_select(1, keep)

    @torch.no_grad()
    def init_pca(self, inputs: torch.Tensor) -> None:
        """Set W to the principal axes of ``inputs`` (of their covariance), logits to log explained variance."""
        z = inputs.detach().to(torch.float64)
        z = z - z.mean(dim=0)
        covariance = z.T @ z / max(1, z.shape[0])
        variances, axes = torch.linalg.eigh(covariance)
        order = torch.argsort(variances, descending=True, stable=True)
        variances, axes = variances[order].clamp_min(1e-12), axes[:, order]
        # Fix each axis' sign (largest component positive) so the init is deterministic.
        signs = torch.sign(axes.gather(0, axes.abs().argmax(dim=0, keepdim=True)))
        axes = axes * torch.where(signs == 0, torch.ones_like(signs), signs)
        self.weight.copy_(axes.T.to(self.weight))
        logits = torch.log(variances / variances.sum())
        # Strictly decreasing, so the untrained top-k is exactly the PCA prefix.
        logits = logits - torch.arange(len(logits), dtype=torch.float64) * 1e-6
        self.selector.logits.copy_(logits.to(self.selector.logits))

    def kept_rows(self) -> torch.Tensor:
        return self.weight.index_select(0, self.selector.selected().to(self.weight.device))


class SMECCompressor(Compressor):
    """Sequential Matryoshka compressor: linear stages D → dims[0] → dims[1] → …

    ``sources[k]`` is the level stage k reads: ``k`` (the chain, default) or 0 (the raw input —
    issue 12's "32-d source" option for a last stage, trained by ``TrainConfig.last_source``).
    """

    method = "smec"

    def __init__(self, input_dim: int, dims: Sequence[int], *, use_ads: bool = True,
                 sources: Sequence[int] | None = None) -> None:
        super().__init__(input_dim, dims)
        self.use_ads = bool(use_ads)
        self.sources = list(range(len(self.dims))) if sources is None else [int(s) for s in sources]
        if len(self.sources) != len(self.dims) or any(s not in (0, k) for k, s in enumerate(self.sources)):
            raise ConfigError(f"sources must give, per stage k, the level k (chain) or 0 (input); found {self.sources}")
        widths = (self.input_dim, *self.dims)
        self.stages = nn.ModuleList(SMECStage(widths[src], d, use_ads=self.use_ads)
                                    for src, d in zip(self.sources, self.dims))
        self._levels: dict[int, torch.Tensor] = {}  # eval-mode cache: level -> M.T, contiguous

    # -- construction -----------------------------------------------------------------
    @classmethod
    def from_pca(cls, vectors: torch.Tensor, dims: Sequence[int], *, use_ads: bool = True) -> "SMECCompressor":
        """An untrained compressor equal to corpus PCA (uncentred map): each stage the PCA of its inputs."""
        x = torch.as_tensor(vectors, dtype=torch.float32)
        comp = cls(x.shape[1], dims, use_ads=use_ads).to(x.device)
        for k in range(len(comp.stages)):
            comp.stages[k].init_pca(comp.level_inputs(x, k))
        return comp

    def config(self) -> dict[str, Any]:
        return {"input_dim": self.input_dim, "dims": list(self.dims), "use_ads": self.use_ads, "sources": self.sources}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "SMECCompressor":
        required = {"input_dim", "dims", "use_ads"}
        if not isinstance(config, dict) or not required <= set(config) <= required | {"sources"}:
            raise ConfigError(f"smec config must hold input_dim, dims, use_ads (and sources); found {config!r}")
        if not isinstance(config["dims"], list) or not isinstance(config["use_ads"], bool):
            raise ConfigError(f"smec config has malformed dims/use_ads: {config!r}")
        if not isinstance(config.get("sources", []), list):
            raise ConfigError(f"smec config has malformed sources: {config!r}")
        return cls(int(config["input_dim"]), config["dims"], use_ads=config["use_ads"], sources=config.get("sources"))

    @classmethod
    def tensor_shapes(cls, config: dict[str, Any]) -> dict[str, tuple[torch.dtype, tuple[int, ...]]]:
        """Per stage, its square map and its selector's logits over the width it reads (no meta-device build:
        torch's meta kernels for ``eye``/``arange`` cost seconds to import)."""
        widths = (int(config["input_dim"]), *(int(d) for d in config["dims"]))
        sources = config.get("sources") or range(len(widths) - 1)
        shapes: dict[str, tuple[torch.dtype, tuple[int, ...]]] = {}
        for k in range(len(widths) - 1):  # from_config checks sources themselves
            width = widths[int(sources[k])]
            shapes[f"stages.{k}.weight"] = (torch.float32, (width, width))
            shapes[f"stages.{k}.selector.logits"] = (torch.float32, (width,))
        return shapes

    def read_input(self, stage: int) -> None:
        """Make stage ``stage`` read the raw input instead of the previous level (a fresh, untrained stage)."""
        device = self.stages[stage].weight.device
        self.stages[stage] = SMECStage(self.input_dim, self.dims[stage], use_ads=self.use_ads).to(device)
        self.sources[stage] = 0
        self._levels.clear()

    def extend(self, new_dim: int) -> int:
        """Append a stage dims[-1] → ``new_dim`` (initialised to the prefix); returns its stage index.

        Earlier stages are untouched; train the new one with ``smec_vdb.train.smrl.extend_smec``
        (or :meth:`fit_extension`).
        """
        new_dim = int(new_dim)
        dims = validate_schedule(self.input_dim, (*self.dims, new_dim))
        stage = SMECStage(self.dims[-1], new_dim, use_ads=self.use_ads).to(self.stages[-1].weight.device)
        self.stages.append(stage)
        self.sources.append(len(self.dims))
        self.dims = dims
        self._levels.clear()
        return len(self.stages) - 1

    # -- training (SMEC paper §3.2–3.4, in smec_vdb.train.smrl) ------------------------
    @classmethod
    def fit(cls, vectors: Any, dims: Sequence[int], config: Any = None, examples: Any = None,
            progress: Any = None, validation: Any = None) -> "SMECCompressor":
        """Sequential training (SMRL + ADS + S-XBM), see :func:`smec_vdb.train.smrl.train_smec`."""
        from smec_vdb.train.smrl import train_smec

        return train_smec(vectors, dims, config, examples, progress, validation)

    # -- computation ------------------------------------------------------------------
    def train(self, mode: bool = True) -> "SMECCompressor":
        self._levels.clear()  # weights may change while training
        return super().train(mode)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):  # type: ignore[override]
        self._levels.clear()
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def level_matrix(self, level: int) -> torch.Tensor:
        """M with level ``level`` = x @ M.T, for level >= 1; differentiable in training mode.

        In eval mode M.T is cached contiguous (so ``x @ M.T`` runs on a contiguous operand) and
        M is returned as its transposed view.
        """
        if not self.training:
            cached = self._levels.get(level)
            if cached is not None and cached.device == self.stages[0].weight.device:
                return cached.T
        source = self.sources[level - 1]
        matrix = self.stages[level - 1].kept_rows()
        if source > 0:
            matrix = matrix @ self.level_matrix(source)
        if not self.training:
            self._levels[level] = matrix.detach().T.contiguous()
            return self._levels[level].T
        return matrix

    def level_inputs(self, x: torch.Tensor, stage: int) -> torch.Tensor:
        """The (un-normalised) input of stage ``stage``: x, or the level it reads (``sources[stage]``)."""
        source = self.sources[stage] if stage < len(self.sources) else stage
        if source == 0:
            return x
        return x @ self.level_matrix(source).T

    def project(self, x: torch.Tensor, dim: int) -> torch.Tensor:
        level = self.dims.index(self.check_dim(dim)) + 1
        return x @ self.level_matrix(level).T

    def selected_indices(self) -> dict[int, list[int]]:
        """{dim: indices into the previous level's stage outputs (W_k · level_{k-1}) that level keeps}."""
        return {d: s.selector.selected().tolist() for d, s in zip(self.dims, self.stages)}
