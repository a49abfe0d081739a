"""The compressor interface every method (SMEC and the baselines) implements.

A compressor maps a D-dim input embedding to a nested family of lower-dim embeddings
``dims`` (strictly decreasing, each < D). ``encode(x, dim)`` returns float32, L2-normalised
rows, streaming large inputs through fixed-size chunks so memory stays bounded.

Example::

    comp = smec_vdb.load("models/scifact")
    low = comp.encode(vectors, 64)          # (n, 64) float32, unit rows
    full = comp.encode(vectors, comp.input_dim)  # the input itself, normalised
"""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np
import torch
from torch import nn

from smec_vdb.errors import ConfigError, DimensionError, InvalidVectorError

ENCODE_CHUNK_ROWS = 8192


def validate_schedule(input_dim: int, dims: Sequence[int]) -> tuple[int, ...]:
    """Check that ``dims`` is a non-empty, strictly decreasing list of positive ints below ``input_dim``."""
    dims = tuple(int(d) for d in dims)
    if input_dim < 2:
        raise ConfigError(f"input dim must be >= 2, found {input_dim}")
    if not dims:
        raise ConfigError("dims schedule is empty: expected e.g. 128,64,32")
    if any(d <= 0 for d in dims):
        raise ConfigError(f"dims must be positive, found {list(dims)}")
    if any(b >= a for a, b in zip(dims, dims[1:])):
        raise ConfigError(f"dims must be strictly decreasing, found {list(dims)}")
    if dims[0] >= input_dim:
        raise ConfigError(f"dims must be smaller than the input dim {input_dim}, found {dims[0]}")
    return dims


def as_matrix(x: Any, input_dim: int) -> np.ndarray | torch.Tensor:
    """Validate numpy/torch/list input as a (n, input_dim) numeric matrix without copying it."""
    if isinstance(x, torch.Tensor):
        m: np.ndarray | torch.Tensor = x.detach()
    else:
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
    return m


def rows_as_tensor(m: np.ndarray | torch.Tensor, start: int = 0, stop: int | None = None) -> torch.Tensor:
    """Rows ``start:stop`` of a validated matrix as a float32 tensor (only those rows are converted)."""
    part = m[start:stop]
    if isinstance(part, torch.Tensor):
        return part.to(dtype=torch.float32)
    part = np.asarray(part, dtype=np.float32)
    if not (part.flags.writeable and part.flags.c_contiguous):  # torch needs writable, contiguous memory
        part = np.array(part, dtype=np.float32, order="C")
    return torch.from_numpy(part)


def as_float_tensor(x: Any, input_dim: int) -> torch.Tensor:
    """Turn numpy/torch/list input into a 2-D float32 tensor of width ``input_dim``, or raise."""
    return rows_as_tensor(as_matrix(x, input_dim))


def check_finite_rows(t: torch.Tensor, row_offset: int = 0) -> None:
    """Raise InvalidVectorError naming the first row that holds NaN/inf or is all zeros.

    One norm pass screens the chunk (a NaN/inf row has a non-finite norm, an all-zero row a zero
    norm); only flagged rows get the exact checks, so huge or tiny finite rows are never rejected.
    """
    norms = torch.linalg.vector_norm(t, dim=1)
    flagged = torch.nonzero(~torch.isfinite(norms) | (norms == 0)).flatten()
    if len(flagged) == 0:
        return
    rows = t.index_select(0, flagged)
    bad = ~torch.isfinite(rows).all(dim=1)
    if bool(bad.any()):
        i = int(flagged[bad][0]) + row_offset
        raise InvalidVectorError(f"row {i} holds NaN or inf values ({int(bad.sum())} such rows in this chunk)")
    zero = (rows == 0).all(dim=1)
    if bool(zero.any()):
        i = int(flagged[zero][0]) + row_offset
        raise InvalidVectorError(f"row {i} is all zeros: it has no direction to compress")


class Compressor(nn.Module):
    """Base class: subclasses implement :meth:`project` and declare their tensors for saving.

    Subclasses set ``method`` (their name in :mod:`smec_vdb.compress.registry`), implement
    ``project(x, dim)`` (un-normalised (n, dim) output for a float32 batch) and the classmethod
    ``fit`` that builds a trained instance. Those whose constructor takes more than ``(input_dim,
    dims)`` also override ``config()`` (JSON-able constructor arguments) and ``from_config()``;
    the saved tensors are then loaded with ``load_state_dict``. ``stochastic`` says whether the
    seed changes what ``fit`` returns; ``uses_labels`` whether ``fit`` trains on ranking examples.
    """

    method: ClassVar[str] = ""
    stochastic: ClassVar[bool] = True
    uses_labels: ClassVar[bool] = True

    def __init__(self, input_dim: int, dims: Sequence[int]) -> None:
        super().__init__()
        self.input_dim = int(input_dim)
        self.dims = validate_schedule(self.input_dim, dims)
        self.training_info: dict[str, Any] = {}
        #: the folder it was loaded from or last saved to (None: only in memory); collections record it
        self.path: Path | None = None

    # -- what subclasses provide ------------------------------------------------------
    @classmethod
    @abstractmethod
    def fit(
        cls,
        vectors: Any,
        dims: Sequence[int],
        config: Any = None,
        examples: Any = None,
        progress: Any = None,
        validation: Any = None,
    ) -> "Compressor":
        """Train on (N, D) corpus ``vectors`` for ``dims``: ``config`` a TrainConfig, ``examples`` the
        RankingExamples of supervised training, ``validation`` held-out examples (a dev split) for
        model selection, ``progress`` a ProgressCallback."""

    @abstractmethod
    def project(self, x: torch.Tensor, dim: int) -> torch.Tensor:
        """Map a float32 (n, input_dim) batch to the un-normalised (n, dim) embedding."""

    def config(self) -> dict[str, Any]:
        """Constructor arguments (JSON-able) needed to rebuild this compressor before loading tensors."""
        return {"input_dim": self.input_dim, "dims": list(self.dims)}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "Compressor":
        """Rebuild an untrained instance with the right shapes from :meth:`config`."""
        return cls(config["input_dim"], config["dims"])

    @classmethod
    def tensor_shapes(cls, config: dict[str, Any]) -> dict[str, tuple[torch.dtype, tuple[int, ...]]]:
        """The tensors (state_dict name → dtype, shape) of ``from_config(config)``, known without allocating
        them: loading an untrusted folder checks them against its bounds and weights file first. This
        default builds the module on torch's meta device (nothing is allocated, but the first call can take
        seconds while torch imports its meta kernels); a method may compute them directly instead."""
        with torch.device("meta"):
            skeleton = cls.from_config(config)
        return {k: (t.dtype, tuple(t.shape)) for k, t in skeleton.state_dict().items()}

    def selected_indices(self) -> dict[int, list[int]] | None:
        """For methods that select dimensions (ADS), which stage-input dims each level keeps."""
        return None

    # -- shared behaviour -------------------------------------------------------------
    def check_dim(self, dim: int) -> int:
        dim = int(dim)
        if dim != self.input_dim and dim not in self.dims:
            raise DimensionError(
                f"dim {dim} is not trained: this compressor provides {list(self.dims)} (and the input dim {self.input_dim})"
            )
        return dim

    @torch.inference_mode()
    def encode(self, x: Any, dim: int, *, chunk_rows: int = ENCODE_CHUNK_ROWS) -> np.ndarray:
        """Encode vectors to ``dim``: float32, L2-normalised rows, streamed in chunks of ``chunk_rows``.

        ``x`` is a (n, input_dim) or (input_dim,) numpy array or torch tensor of any float dtype.
        ``dim == input_dim`` returns the normalised input (the "full" resolution).
        """
        return self.encode_many(x, [dim], chunk_rows=chunk_rows)[int(dim)]

    @torch.inference_mode()
    def encode_many(self, x: Any, dims: Sequence[int], *, chunk_rows: int = ENCODE_CHUNK_ROWS) -> dict[int, np.ndarray]:
        """Encode vectors to several dims at once: the input is validated and converted once per chunk
        ("compute once, slice many times"); returns {dim: float32 unit rows}."""
        dims = [self.check_dim(d) for d in dims]
        m = as_matrix(x, self.input_dim)
        device = self._device()
        out = {d: np.empty((m.shape[0], d), dtype=np.float32) for d in dims}
        for start in range(0, m.shape[0], chunk_rows):
            chunk = rows_as_tensor(m, start, start + chunk_rows)
            check_finite_rows(chunk, start)
            chunk = chunk.to(device)
            for d in dims:
                low = chunk if d == self.input_dim else self.project(chunk, d)
                low = torch.nn.functional.normalize(low, dim=1)
                out[d][start : start + chunk.shape[0]] = low.float().cpu().numpy()
        return out

    def _device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        for b in self.buffers():
            return b.device
        return torch.device("cpu")

    def save(self, directory: str | Path) -> Path:
        """Write safetensors weights and a JSON manifest to ``directory`` (see :mod:`artifact`)."""
        from smec_vdb.compress.artifact import save

        return save(self, directory)

    @property
    def manifest_hash(self) -> str:
        """Stable id of this compressor (hash of its manifest and weights): collections record it."""
        from smec_vdb.compress.artifact import compressor_hash

        return compressor_hash(self)
