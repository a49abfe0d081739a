"""Selection-only compressor: each dim keeps a subset of the raw input dimensions (no matrix),
so ``encode`` is an index gather — the setting of the SMEC paper's Table 2 (§5.4).

The subsets are nested (dim ``dims[k]`` keeps a subset of ``dims[k-1]``'s) and chosen by
``strategy``:

* ``prefix``   — the first d dims (MRL truncation);
* ``variance`` — the d dims of largest corpus variance;
* ``ads``      — Adaptive Dimension Selection (§3.3, eq. 6) trained level after level on eq. 7
  over S-XBM neighbours (:func:`smec_vdb.train.select.train_selection`).

Example::

    comp = SelectionCompressor.fit(corpus, [128, 64, 32], TrainConfig(), strategy="ads")
    comp.selected_indices()[64]       # the raw dims 64-d keeps
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from smec_vdb.compress.base import Compressor
from smec_vdb.errors import ConfigError

STRATEGIES = ("prefix", "variance", "ads")


class SelectionCompressor(Compressor):
    """``project(x, d) = x[:, keep_d]`` with nested index sets ``keep_d``."""

    method = "select"

    def __init__(self, input_dim: int, dims: Sequence[int], strategy: str = "ads") -> None:
        super().__init__(input_dim, dims)
        if strategy not in STRATEGIES:
            raise ConfigError(f"strategy must be one of {', '.join(STRATEGIES)}, found {strategy!r}")
        self.strategy = strategy
        for d in self.dims:
            self.register_buffer(f"keep_{d}", torch.arange(d))

    def kept(self, dim: int) -> torch.Tensor:
        return getattr(self, f"keep_{self.check_dim(dim)}")

    def set_kept(self, dim: int, indices: torch.Tensor) -> None:
        """Record the raw dims ``dim`` keeps (sorted); must be a subset of the previous level's."""
        indices = torch.sort(indices.to(torch.long).flatten()).values
        k = self.dims.index(self.check_dim(dim))
        previous = torch.arange(self.input_dim) if k == 0 else self.kept(self.dims[k - 1])
        if indices.numel() != dim or not bool(torch.isin(indices, previous.to(indices.device)).all()):
            raise ConfigError(f"dim {dim} must keep {dim} of the previous level's dims")
        getattr(self, f"keep_{dim}").copy_(indices)

    def project(self, x: torch.Tensor, dim: int) -> torch.Tensor:
        return x.index_select(1, self.kept(dim).to(x.device))

    def selected_indices(self) -> dict[int, list[int]]:
        return {d: self.kept(d).tolist() for d in self.dims}

    def config(self) -> dict[str, Any]:
        return {"input_dim": self.input_dim, "dims": list(self.dims), "strategy": self.strategy}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "SelectionCompressor":
        return cls(config["input_dim"], config["dims"], config.get("strategy", "ads"))

    @classmethod
    def fit(cls, vectors: Any, dims: Sequence[int], config: Any = None, examples: Any = None,
            progress: Any = None, validation: Any = None, *, strategy: str = "ads") -> "SelectionCompressor":
        """Choose the nested subsets by ``strategy`` (ADS trains; prefix/variance are closed-form)."""
        from smec_vdb.train.select import fit_selection

        return fit_selection(cls, vectors, dims, config, examples, progress, validation, strategy)
