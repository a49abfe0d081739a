"""What a migration is asked to do (:class:`MigrationOptions`), and how it reports progress."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

from smec_vdb.backend import IndexParams
from smec_vdb.errors import ConfigError, Interrupted, MigrationError
from smec_vdb.layout import Layout

CHECKPOINT_KEY = "checkpoint"
COMPLETE_KEY = "migration"
#: beside, never inside, an engine's data dir (qdrant-edge's default store is ./smec_data)
DEFAULT_COMPRESSOR_STORE = "./smec_compressors"


class MigrationInterrupted(MigrationError, Interrupted):
    """A stop was requested (Ctrl-C); the run stopped at a batch boundary and can be resumed."""


@dataclass(frozen=True)
class MigrationEvent:
    """Progress of one phase: ``phase`` in survey/train/copy/resync/verify; ``total`` None when unknown."""

    phase: str
    done: int
    total: int | None
    detail: str = ""


ProgressCallback = Callable[[MigrationEvent], None]
StopCheck = Callable[[], bool]


@dataclass(frozen=True)
class MigrationOptions:
    """What to migrate and how. ``dims`` (explicit schedule) or ``dim`` (schedule picked from the width).

    ``check``: compare source and target and report drift, writing nothing. Error messages name
    these fields (``dim``, ``restart``…); the CLI maps them to its flags.

    ``leave_out``: source vectors (dense or sparse) not to copy, e.g. a multivector the target cannot
    hold. ``on_bad_payload``: a payload the target cannot store (over its limits, an integer beyond
    64 bits, NaN) fails the plan, or with ``skip`` leaves the point out (counted in the report).
    ``allow_empty_source``: re-sync a migrated target to a source that is now empty (deletes every point).
    """

    source: str
    target: str | None = None
    dim: int | None = None
    dims: tuple[int, ...] | None = None
    vector: str | None = None
    compressor: str | None = None
    keep_full: bool = True
    batch_size: int = 512
    train_sample: int = 20_000
    min_recall: float = 0.95
    swap_alias: str | None = None
    restart: bool = False
    check: bool = False
    verify_queries: int = 200
    on_bad_vector: Literal["fail", "skip"] = "fail"
    on_bad_payload: Literal["fail", "skip"] = "fail"
    leave_out: tuple[str, ...] = ()
    allow_empty_source: bool = False
    seed: int = 0
    compressor_store: str = DEFAULT_COMPRESSOR_STORE
    index: IndexParams = IndexParams()
    layout: Layout | None = None  # None: smec_vdb.layout.default_layout(target engine, index kind)
    train_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.dim is None) == (self.dims is None) and self.compressor is None:
            raise ConfigError("give exactly one of dim or dims (or compressor, to reuse a trained one)")
        if self.dim is not None and self.dims is not None:
            raise ConfigError("dim and dims are exclusive: dims is the explicit schedule")
        if self.dim is not None and (isinstance(self.dim, bool) or self.dim < 1):
            raise ConfigError(f"dim must be a positive number of dimensions, found {self.dim}")
        if self.dims is not None and (not self.dims or any(d < 1 for d in self.dims)
                                      or any(b >= a for a, b in zip(self.dims, self.dims[1:]))):
            raise ConfigError(f"dims must be positive and strictly decreasing, found {list(self.dims)}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, found {self.batch_size}")
        if self.train_sample < 2:
            raise ConfigError(f"train_sample must be >= 2, found {self.train_sample}")
        if not 0.0 <= self.min_recall <= 1.0:
            raise ConfigError(f"min_recall must be within [0, 1], found {self.min_recall}")
        if self.verify_queries < 1:
            raise ConfigError(f"verify_queries must be >= 1, found {self.verify_queries}")
        if self.on_bad_vector not in ("fail", "skip"):
            raise ConfigError(f"on_bad_vector must be fail or skip, found {self.on_bad_vector!r}")
        if self.on_bad_payload not in ("fail", "skip"):
            raise ConfigError(f"on_bad_payload must be fail or skip, found {self.on_bad_payload!r}")
        if self.check and self.restart:
            raise ConfigError("check writes nothing, restart drops the target: give one of them")

    def check_width(self, width: int) -> None:
        """ConfigError unless ``dim`` / ``dims`` are below the source ``width``: asked as soon as the
        source is known, before the target is looked at (a bad dim is reported as such, not as a
        clash with an existing target)."""
        wanted = self.dims if self.dims is not None else (self.dim,) if self.dim is not None else ()
        if wanted and max(wanted) >= width:
            raise ConfigError(f"{'dims' if self.dims is not None else 'dim'} must be below the source width "
                              f"{width}, found {list(wanted) if self.dims is not None else self.dim}")

    @property
    def target_name(self) -> str:
        return self.target or f"{self.source}_smec"

    def plan_id(self, vector: str, source_store: str, target_store: str) -> str:
        """Identifies a run: a checkpoint is only resumed by the same plan. ``source_store`` and
        ``target_store`` name the engine stores (engine and location, no credentials), so migrations of
        same-named collections in two stores never share a plan."""
        key = {"source": self.source, "target": self.target_name, "vector": vector, "dim": self.dim,
               "source_store": source_store, "target_store": target_store,
               "dims": self.dims, "compressor": self.compressor, "keep_full": self.keep_full,
               "train_sample": self.train_sample, "seed": self.seed, "train": self.train_options,
               "layout": None if self.layout is None else self.layout.to_json(),
               **({"leave_out": sorted(self.leave_out)} if self.leave_out else {})}
        return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:12]
