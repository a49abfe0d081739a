"""Encoding with cached float32 weights in numpy: the query hot path, and every batch of a linear method.

A compressor whose inference map is linear (:mod:`smec_vdb.compress.linear_maps`: SMEC, PCA,
truncation, selection, the adaptors without hidden layer) encodes a batch as one product with a
cached (input_dim, dim) float32 matrix, then L2-normalises each row (SMEC is cosine, paper §3).
Validation costs O(1) Python calls whatever the batch: the input's shape and dtype, then the
output's row norms, which are finite and non-zero exactly when the input rows are (a product with
the whole row carries a NaN/inf to every output, and a zero row stays zero); only when a norm is
flagged are the input rows examined to name the bad one. Maps that can hide a bad input value (a
column selection, an offset) check the input's norms instead. Small batches multiply in numpy (a
GEMV is a few µs); from :data:`TORCH_GEMM_ROWS` rows on, torch's GEMM is faster on this CPU
(measured, ``benchmarks/query_path.py``) and is used when torch is already imported — never
imported here, so ``smec-vdb search`` runs without torch.

Example::

    enc = NumpyEncoder.from_tensors("smec", comp.config(), state, comp.selected_indices())
    enc.encode_many(queries, [128, 64])     # {128: (n, 128) unit rows, 64: …}
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from smec_vdb.compress.linear_maps import LinearMap, Selected, Tensors, linear_maps
from smec_vdb.errors import DimensionError, InvalidVectorError

ENCODE_CHUNK_ROWS = 8192
#: from this many rows on, the product runs on torch's GEMM when torch is loaded (faster here from 16)
TORCH_GEMM_ROWS = 16
#: F.normalize's epsilon: a non-zero input whose projection is zero encodes to zeros, as in torch
NORM_EPS = 1e-12


def check_dim(dim: int, input_dim: int, dims: Sequence[int]) -> int:
    """``dim`` as an int if it is trained (or the input dim); DimensionError otherwise."""
    dim = int(dim)
    if dim != input_dim and dim not in dims:
        raise DimensionError(f"dim {dim} is not trained: this compressor provides {list(dims)} (and the input dim {input_dim})")
    return dim


_FLOAT32 = np.dtype(np.float32)


def as_rows(x: Any, input_dim: int) -> np.ndarray:
    """Numeric (n, input_dim) or (input_dim,) input as a float32 matrix, copied only when its dtype differs."""
    if type(x) is np.ndarray and x.dtype is _FLOAT32 and x.shape[-1] == input_dim and x.size:
        if x.ndim == 2:
            return x  # already what is asked for: the hot path of a query checks nothing more
        if x.ndim == 1:
            return x[None, :]
    m = np.asarray(x)
    if m.dtype.kind not in "fiu":
        raise InvalidVectorError(f"expected numeric vectors, found dtype {m.dtype}")
    if m.ndim == 1:
        m = m[None, :]
    if m.ndim != 2:
        raise DimensionError(f"expected a (n, {input_dim}) matrix, found shape {tuple(m.shape)}")
    if m.shape[0] == 0:
        raise InvalidVectorError("no vectors to encode: input has 0 rows")
    if m.shape[1] != input_dim:
        raise DimensionError(f"expected vectors of width {input_dim}, found width {m.shape[1]}")
    return m.astype(np.float32, copy=False)


def raise_bad_row(rows: np.ndarray, flagged: np.ndarray, row_offset: int = 0) -> None:
    """InvalidVectorError naming the first of the ``flagged`` rows (indices into ``rows``) that holds
    NaN/inf or is all zeros; returns when none is (a flagged norm had another cause)."""
    picked = np.asarray(rows)[flagged]
    bad = ~np.isfinite(picked).all(axis=1)
    if bad.any():
        i = int(flagged[bad][0]) + row_offset
        raise InvalidVectorError(f"row {i} holds NaN or inf values ({int(bad.sum())} such rows in this chunk)")
    zero = ~picked.any(axis=1)
    if zero.any():
        i = int(flagged[zero][0]) + row_offset
        raise InvalidVectorError(f"row {i} is all zeros: it has no direction to compress")


def _flagged(norms: np.ndarray) -> np.ndarray | None:
    """Rows whose norm is zero, NaN or inf (None when there are none: two vectorised calls)."""
    if np.isfinite(norms).all() and norms.all():
        return None
    return np.flatnonzero(~np.isfinite(norms) | (norms == 0))


def _row_norms(m: np.ndarray) -> np.ndarray:
    return np.sqrt(np.einsum("ij,ij->i", m, m))


def _matmul(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    if x.shape[0] >= TORCH_GEMM_ROWS and x.flags.writeable and "torch" in sys.modules:
        torch = sys.modules["torch"]
        return (torch.from_numpy(x) @ torch.from_numpy(w)).numpy()
    return x @ w


@dataclass(frozen=True)
class _Plan:
    """How to encode one tuple of dims: one combined map, each dim's column range, what to check."""

    combined: LinearMap | None
    parts: tuple[tuple[int, int, int], ...]   # (dim, start, stop) in the combined output
    full: bool                                # the input dim is asked for (normalised input rows)
    check_input: bool                         # the output cannot vouch for the input rows

    @property
    def one_matrix(self) -> tuple[int, np.ndarray] | None:
        """(dim, matrix) when the plan is one matrix whose output vouches for its input (the query hot path)."""
        if len(self.parts) != 1 or self.full or self.check_input or self.combined is None:
            return None
        return self.parts[0][0], self.combined.matrix  # type: ignore[return-value]


class NumpyEncoder:
    """Encode with one linear map per dim (see module doc); the interface of ``Compressor.encode``."""

    def __init__(self, method: str, input_dim: int, dims: Sequence[int], maps: Mapping[int, LinearMap],
                 manifest_hash: str | None = None) -> None:
        self.method = method
        self.input_dim = int(input_dim)
        self.dims = tuple(int(d) for d in dims)
        self.maps = dict(maps)
        self.manifest_hash = manifest_hash
        self._plans: dict[tuple[int, ...], _Plan] = {}
        self._single: dict[tuple[int, ...], tuple[int, np.ndarray] | None] = {}

    @classmethod
    def from_tensors(cls, method: str, config: Mapping[str, Any], tensors: Tensors, selected: Selected,
                     manifest_hash: str | None = None) -> "NumpyEncoder | None":
        """The encoder of a compressor given its config and tensors; None when its map is not linear."""
        maps = linear_maps(method, config, tensors, selected)
        if maps is None:
            return None
        return cls(method, int(config["input_dim"]), [int(d) for d in config["dims"]], maps, manifest_hash)

    def check_dim(self, dim: int) -> int:
        return check_dim(dim, self.input_dim, self.dims)

    def encode(self, x: Any, dim: int, *, chunk_rows: int = ENCODE_CHUNK_ROWS) -> np.ndarray:
        """(n, dim) float32 unit rows; ``dim == input_dim`` gives the normalised input."""
        return self.encode_many(x, [dim], chunk_rows=chunk_rows)[int(dim)]

    def encode_many(self, x: Any, dims: Sequence[int], *, chunk_rows: int = ENCODE_CHUNK_ROWS,
                    normalize: bool = True) -> dict[int, np.ndarray]:
        """{dim: (n, dim) float32 unit rows} for a validated batch, streamed in chunks of ``chunk_rows``.
        ``normalize=False``: the rows as projected, validated the same way (for a cosine search, whose
        engine normalises the query itself)."""
        return self.encode_rows(as_rows(x, self.input_dim), dims, chunk_rows=chunk_rows, normalize=normalize)

    def encode_rows(self, m: np.ndarray, dims: Sequence[int], *, chunk_rows: int = ENCODE_CHUNK_ROWS,
                    normalize: bool = True) -> dict[int, np.ndarray]:
        """:meth:`encode_many` of a float32 (n, input_dim) matrix already checked by :func:`as_rows`."""
        key = tuple(dims)
        plan = self._plans.get(key) or self._plan(key)
        if m.shape[0] == 1 and (single := self._single.get(key)) is not None:
            dim, matrix = single  # one query, one matrix: a GEMV, its squared norm (the check), a scale
            y = matrix @ m[0]
            squared = float(np.dot(y, y))
            if 0.0 < squared < math.inf:
                if normalize:
                    y *= 1.0 / math.sqrt(squared)
                return {dim: y[None, :]}
        if m.shape[0] <= chunk_rows:
            return self._encode_chunk(plan, m, 0, normalize)
        out = {d: np.empty((m.shape[0], d), dtype=np.float32) for d in map(int, dims)}
        for start in range(0, m.shape[0], chunk_rows):
            for d, part in self._encode_chunk(plan, m[start:start + chunk_rows], start, normalize).items():
                out[d][start:start + len(part)] = part
        return out

    def _plan(self, key: tuple[int, ...]) -> _Plan:
        dims = [self.check_dim(d) for d in key]
        compressed = list(dict.fromkeys(d for d in dims if d != self.input_dim))
        maps = [self.maps[d] for d in compressed]
        bounds, start = [], 0
        for d in compressed:
            bounds.append((d, start, start + d))
            start += d
        plan = _Plan(LinearMap.concat(maps) if maps else None, tuple(bounds), self.input_dim in dims,
                     check_input=not all(m.propagates_non_finite for m in maps))
        self._single[key] = plan.one_matrix
        self._plans[key] = plan
        return plan

    def _encode_chunk(self, plan: _Plan, m: np.ndarray, row_offset: int, normalize: bool) -> dict[int, np.ndarray]:
        out: dict[int, np.ndarray] = {}
        if plan.full or plan.check_input:
            norms = _row_norms(m)
            if (flagged := _flagged(norms)) is not None:
                raise_bad_row(m, flagged, row_offset)
            if plan.full:
                out[self.input_dim] = m / norms[:, None] if normalize else m
        if plan.combined is None:
            return out
        y = plan.combined.apply(m, _matmul)
        for d, a, b in plan.parts:
            part = y if len(plan.parts) == 1 else y[:, a:b]
            norms = _row_norms(part)
            if (flagged := _flagged(norms)) is not None:
                raise_bad_row(m, flagged, row_offset)
                if not np.isfinite(norms).all():
                    i = int(np.flatnonzero(~np.isfinite(norms))[0]) + row_offset
                    raise InvalidVectorError(f"row {i} overflows float32 when encoded to {d} dims")
                norms = np.maximum(norms, NORM_EPS)
            out[d] = part / norms[:, None] if normalize else np.ascontiguousarray(part)
        return out


def load_encoder(directory: Any) -> NumpyEncoder | None:
    """The encoder of the compressor saved in ``directory``, read without torch (:mod:`.arrays`);
    None when its method is not linear (load it with :func:`smec_vdb.load`)."""
    from smec_vdb.compress.arrays import manifest_identity, read_arrays, selected
    from smec_vdb.errors import ArtifactError, ConfigError

    manifest, tensors = read_arrays(directory)
    config = manifest["config"]
    if config.get("input_dim", manifest["input_dim"]) != manifest["input_dim"] or config.get("dims", manifest["dims"]) != manifest["dims"]:
        raise ArtifactError(f"compressor at {directory}: its config and manifest declare different shapes")
    config = {**config, "input_dim": manifest["input_dim"], "dims": manifest["dims"]}
    try:
        return NumpyEncoder.from_tensors(manifest["method"], config, tensors, selected(manifest),
                                         manifest_identity(manifest))
    except (ConfigError, KeyError, TypeError, ValueError) as e:
        raise ArtifactError(f"incompatible compressor at {directory}: {str(e)[:200]}") from None
