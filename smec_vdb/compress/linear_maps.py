"""Each method's inference map written once in numpy, from the tensors it saves (no torch).

At inference every method but the Matryoshka-Adaptor (an MLP) and a linear adaptor with a hidden
layer is affine in its input: SMEC's chain of stages collapses to one matrix per level (paper
§3.2–3.3: level k = W_k[sel_k] · level_{k-1}, the rows ADS keeps), PCA is a centred projection,
the Search-Adaptor is ``x + W x + b`` cut to its dim, truncation and selection keep columns. A
query is then one GEMV on cached float32 weights (:mod:`smec_vdb.compress.numpy_encoder`); the
torch ``project`` of each class stays the training-time form, and the tests check both agree.

Each derivation reads the tensors by their ``state_dict`` names, the config by its
``Compressor.config()`` keys and, for SMEC, the kept indices of ``selected_indices()`` (also in
the saved manifest). :data:`NONLINEAR` lists the methods that have no such map.

Example::

    maps = linear_maps("pca", {"input_dim": 4, "dims": [2]}, {"mean": mean, "axes": axes}, None)
    maps[2].apply(x)          # (n, 2) = (x - mean) @ axes[:2].T, un-normalised
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from smec_vdb.errors import ConfigError

Tensors = Mapping[str, np.ndarray]
Selected = Mapping[int, Sequence[int]] | None


@dataclass(frozen=True)
class LinearMap:
    """One dim's map: ``x[:, columns]`` (a selection), or ``x @ matrix.T + offset``.

    ``matrix`` is (dim, input_dim) float32, C-contiguous: one query is ``matrix @ q``, a GEMV over
    contiguous rows (faster here than ``q @ matrix.T``); a batch is one GEMM with the transposed view.
    """

    matrix: np.ndarray | None = None
    offset: np.ndarray | None = None
    columns: np.ndarray | None = None

    @property
    def width(self) -> int:
        return len(self.columns) if self.columns is not None else self.matrix.shape[0]  # type: ignore[union-attr]

    @property
    def propagates_non_finite(self) -> bool:
        """Whether a NaN/inf anywhere in a row reaches every output of it (a product with the whole row),
        and an all-zero row stays all zero: then checking the output is checking the input."""
        return self.matrix is not None and self.offset is None

    def apply(self, x: np.ndarray, matmul: Callable[[np.ndarray, np.ndarray], np.ndarray] = np.matmul) -> np.ndarray:
        """The un-normalised (n, dim) output for a float32 (n, input_dim) batch."""
        if self.columns is not None:
            return x[:, self.columns]
        out = matmul(x, self.matrix.T)  # type: ignore[union-attr]
        return out if self.offset is None else out + self.offset

    @classmethod
    def concat(cls, maps: Sequence["LinearMap"]) -> "LinearMap":
        """One map computing several side by side (one GEMM for all dims: "compute once, slice many times")."""
        if len(maps) == 1:
            return maps[0]
        if all(m.columns is not None for m in maps):
            return cls(columns=np.concatenate([m.columns for m in maps]))  # type: ignore[misc]
        if any(m.columns is not None for m in maps):
            raise ConfigError("cannot combine column selections with matrices")
        offsets = [m.offset if m.offset is not None else np.zeros(m.width, np.float32) for m in maps]
        return cls(matrix=np.ascontiguousarray(np.concatenate([m.matrix for m in maps], axis=0)),  # type: ignore[misc]
                   offset=None if all(m.offset is None for m in maps) else np.concatenate(offsets))


def _matrix(m: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(m, dtype=np.float32)


def _tensor(tensors: Tensors, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """``tensors[name]`` as float64, ConfigError unless present with exactly ``shape``."""
    if name not in tensors:
        raise ConfigError(f"tensor {name!r} is missing")
    t = np.asarray(tensors[name])
    if t.shape != shape:
        raise ConfigError(f"tensor {name!r} has shape {t.shape}, expected {shape}")
    return t.astype(np.float64)


def _indices(values: Any, n: int, upper: int, what: str) -> np.ndarray:
    idx = np.asarray(values, dtype=np.int64).reshape(-1)
    if len(idx) != n or (n and (idx.min() < 0 or idx.max() >= upper)):
        raise ConfigError(f"{what}: expected {n} indices below {upper}, found {len(idx)}")
    return idx


def smec_maps(config: Mapping[str, Any], tensors: Tensors, selected: Selected) -> dict[int, LinearMap]:
    """SMEC (§3.2–3.3): level k = M_k x, M_k = W_k[sel_k] · M_{source(k)} (the input when the source is 0)."""
    input_dim, dims = int(config["input_dim"]), [int(d) for d in config["dims"]]
    sources = [int(s) for s in (config.get("sources") or range(len(dims)))]
    if selected is None:
        raise ConfigError("smec needs the indices each level keeps (selected_indices)")
    widths = (input_dim, *dims)
    levels: dict[int, np.ndarray] = {}
    for k, (d, src) in enumerate(zip(dims, sources)):
        width = widths[src]
        w = _tensor(tensors, f"stages.{k}.weight", (width, width))
        kept = w[_indices(selected[d], d, width, f"kept rows of level {d}")]
        levels[k + 1] = kept if src == 0 else kept @ levels[src]
    return {d: LinearMap(matrix=_matrix(levels[k + 1])) for k, d in enumerate(dims)}


def pca_maps(config: Mapping[str, Any], tensors: Tensors, selected: Selected) -> dict[int, LinearMap]:
    """PCA: (x - mean) @ axes[:d].T = x @ axes[:d].T - mean @ axes[:d].T."""
    input_dim, dims = int(config["input_dim"]), [int(d) for d in config["dims"]]
    mean = _tensor(tensors, "mean", (input_dim,))
    axes = _tensor(tensors, "axes", (dims[0], input_dim))
    return {d: LinearMap(matrix=_matrix(axes[:d]), offset=(-(mean @ axes[:d].T)).astype(np.float32)) for d in dims}


def selection_maps(config: Mapping[str, Any], tensors: Tensors, selected: Selected) -> dict[int, LinearMap]:
    """Selection (paper Table 2): the raw input dims each level keeps."""
    input_dim = int(config["input_dim"])
    return {int(d): LinearMap(columns=_indices(tensors.get(f"keep_{d}", []), int(d), input_dim, f"keep_{d}"))
            for d in config["dims"]}


def truncation_maps(config: Mapping[str, Any], tensors: Tensors, selected: Selected) -> dict[int, LinearMap]:
    """Truncation: the first d input dims."""
    return {int(d): LinearMap(columns=np.arange(int(d))) for d in config["dims"]}


def linear_adaptor_maps(config: Mapping[str, Any], tensors: Tensors, selected: Selected) -> dict[int, LinearMap] | None:
    """Linear adaptor without hidden layer: rotation[:d] x (with one, an MLP: no linear map)."""
    if int(config.get("hidden_dim", 0)):
        return None
    input_dim, dims = int(config["input_dim"]), [int(d) for d in config["dims"]]
    rotation = _tensor(tensors, "rotation", (dims[0], input_dim))
    return {d: LinearMap(matrix=_matrix(rotation[:d])) for d in dims}


def search_adaptor_maps(config: Mapping[str, Any], tensors: Tensors, selected: Selected) -> dict[int, LinearMap]:
    """Search-Adaptor: (x + W_d x + b_d)[:d] = x @ (I + W_d)[:d].T + b_d[:d]."""
    input_dim, dims = int(config["input_dim"]), [int(d) for d in config["dims"]]
    maps = {}
    for i, d in enumerate(dims):
        w = _tensor(tensors, f"maps.{i}.weight", (input_dim, input_dim))
        b = _tensor(tensors, f"maps.{i}.bias", (input_dim,))
        maps[d] = LinearMap(matrix=_matrix(np.eye(input_dim)[:d] + w[:d]), offset=b[:d].astype(np.float32))
    return maps


Derivation = Callable[[Mapping[str, Any], Tensors, Selected], "dict[int, LinearMap] | None"]
#: method name (smec_vdb.compress.registry) → its derivation
DERIVATIONS: dict[str, Derivation] = {
    "smec": smec_maps,
    "pca": pca_maps,
    "select": selection_maps,
    "truncate": truncation_maps,
    "linear-adaptor": linear_adaptor_maps,
    "search-adaptor": search_adaptor_maps,
}
#: methods whose inference map is not linear (they encode through torch)
NONLINEAR = frozenset({"matryoshka-adaptor"})


def linear_maps(method: str, config: Mapping[str, Any], tensors: Tensors, selected: Selected) -> dict[int, LinearMap] | None:
    """{dim: LinearMap} of a compressor of ``method``, or None when its map is not linear.

    ConfigError when the tensors do not have the shapes the config declares."""
    derive = DERIVATIONS.get(method)
    return None if derive is None else derive(config, tensors, selected)
