"""The backend Protocol: what migration and coarse-to-fine search need from a vector engine.

It lives in the core package so that collection, search and migration depend on this contract,
never on an adapter. One implementation per engine (``qdrant``, ``qdrant_edge``, ``milvus``) lives
in :mod:`smec_vdb.adapters`; :func:`smec_vdb.adapters.open_backend` picks one. Every
method raises only :class:`smec_vdb.errors.SmecError` subclasses: engine exceptions are mapped
at this boundary (``BackendError.retriable`` says whether trying again may help).

A *multi-resolution collection* stores, per point, one named vector per resolution
(e.g. ``full`` 3584-d, ``d512``, ``d128``) plus a JSON payload.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Iterator, Literal, Mapping, Protocol, Sequence, TypeVar, Union, runtime_checkable

import numpy as np

from smec_vdb.errors import ConfigError
from smec_vdb.layout import Layout

PointId = Union[int, str]
Distance = Literal["cosine", "dot", "euclid", "manhattan"]
DISTANCES: tuple[str, ...] = ("cosine", "dot", "euclid", "manhattan")
#: ``int``: non-negative integers; ``str``: non-empty strings; ``any``: both in one collection
#: (Qdrant: unsigned integers and UUIDs side by side)
IdType = Literal["int", "str", "any"]
#: the name under which a Qdrant collection's default (unnamed) vector appears in a schema
UNNAMED = ""
PayloadType = Literal["keyword", "integer", "float", "bool"]
# Payload filter: {field: value} matches payload[field] == value; {field: [v1, v2]} matches any of them.
# Several fields are ANDed. Values are str/int/float/bool.
Filter = Mapping[str, Any]
_B = TypeVar("_B", bound="ClosingContext")


@dataclass(frozen=True)
class Resolution:
    """One dense vector of a collection: ``name`` (e.g. "d128"; :data:`UNNAMED` for Qdrant's
    default vector of a foreign collection), its width, and its distance when it differs from the
    collection's (``None``: the collection's)."""

    name: str
    dim: int
    distance: Distance | None = None

    def __post_init__(self) -> None:
        if self.name != UNNAMED and not self.name.replace("_", "").replace("-", "").isalnum():
            raise ConfigError(f"vector name must be alphanumeric/underscore/hyphen, found {self.name!r}")
        if self.dim < 1:
            raise ConfigError(f"vector {self.name!r}: dim must be >= 1, found {self.dim}")
        if self.distance is not None and self.distance not in DISTANCES:
            raise ConfigError(f"vector {self.name!r}: distance must be one of {DISTANCES}, found {self.distance!r}")


@dataclass(frozen=True)
class SparseVector:
    """A sparse vector: ascending ``indices`` and their ``values`` (Qdrant sparse vectors,
    Milvus SPARSE_FLOAT_VECTOR)."""

    indices: tuple[int, ...]
    values: tuple[float, ...]

    @classmethod
    def of(cls, indices: Sequence[int], values: Sequence[float]) -> "SparseVector":
        pairs = sorted(zip((int(i) for i in indices), (float(np.float32(v)) for v in values)))
        return cls(tuple(i for i, _ in pairs), tuple(v for _, v in pairs))

    def as_dict(self) -> dict[int, float]:
        return dict(zip(self.indices, self.values))


@dataclass(frozen=True)
class IndexParams:
    """Vector index: ``flat`` (exact) or ``hnsw`` with its build parameters."""

    kind: Literal["flat", "hnsw"] = "flat"
    m: int = 16
    ef_construct: int = 128
    ef_search: int = 128


@dataclass(frozen=True)
class CollectionSchema:
    """What a collection holds. ``resolutions`` are ordered from widest to narrowest."""

    resolutions: tuple[Resolution, ...]
    distance: Distance = "cosine"
    id_type: IdType = "int"
    payload_indexes: Mapping[str, PayloadType] = field(default_factory=dict)
    index: IndexParams = IndexParams()
    #: where each resolution lives (graph, RAM/disk tier, quantization); None = the engine's defaults
    layout: Layout | None = None
    #: names of the sparse vectors (kept as they are, never searched by smec-vdb)
    sparse: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.resolutions:
            raise ConfigError("a collection needs at least one vector resolution")
        names = [r.name for r in self.resolutions]
        if len(set(names)) != len(names):
            raise ConfigError(f"vector names must be unique, found {names}")
        if self.distance not in DISTANCES:
            raise ConfigError(f"distance must be one of {DISTANCES}, found {self.distance!r}")
        if self.id_type not in ("int", "str", "any"):
            raise ConfigError(f"id_type must be int, str or any, found {self.id_type!r}")
        if set(self.sparse) & set(names) or len(set(self.sparse)) != len(self.sparse):
            raise ConfigError(f"sparse vector names must be unique and differ from dense ones, found {list(self.sparse)}")

    def distance_of(self, name: str) -> Distance:
        """The distance of dense vector ``name`` (its own, else the collection's)."""
        return self.resolution(name).distance or self.distance

    def resolution(self, name: str) -> Resolution:
        for r in self.resolutions:
            if r.name == name:
                return r
        raise ConfigError(f"no vector named {name!r}; this collection has {[r.name for r in self.resolutions]}")


@dataclass
class Point:
    """A stored point: id, dense vectors (float32 1-D arrays), payload and sparse vectors."""

    id: PointId
    vectors: dict[str, np.ndarray]
    payload: dict[str, Any]
    sparse: dict[str, SparseVector] = field(default_factory=dict)


@dataclass(frozen=True)
class Hit:
    """A search result. ``score``: higher is better (cosine/dot similarity; negative L2 for euclid)."""

    id: PointId
    score: float
    payload: dict[str, Any] | None = None


@dataclass(frozen=True)
class SearchStage:
    """One step of a coarse-to-fine search: query ``vector`` on resolution ``name``, keep ``limit``.
    ``ef`` and ``oversampling`` override the schema's HNSW ef and the layout's quantization oversampling."""

    name: str
    vector: np.ndarray
    limit: int
    ef: int | None = None
    oversampling: float | None = None


@dataclass
class Batch:
    """A batch of points to upsert: ids, one (n, dim) float32 matrix per dense vector, payloads,
    and per sparse vector of the schema one entry per point (``None``: the point has none)."""

    ids: Sequence[PointId]
    vectors: Mapping[str, np.ndarray]
    payloads: Sequence[Mapping[str, Any]] | None = None
    sparse: Mapping[str, Sequence[SparseVector | None]] | None = None


@runtime_checkable
class Backend(Protocol):
    """A connection to one engine instance (server or embedded store)."""

    #: target name, e.g. "qdrant-edge", "qdrant-local", "qdrant-server", "milvus-lite", "milvus-server"
    target: str
    #: whether create_alias/switch_alias/resolve_alias are supported
    supports_aliases: bool

    # -- collections ------------------------------------------------------------------
    def list_collections(self) -> list[str]: ...
    def exists(self, collection: str) -> bool: ...
    def create_collection(self, collection: str, schema: CollectionSchema) -> None:
        """Create it; CollectionExistsError if it exists (whatever its schema)."""
    def check_schema(self, schema: CollectionSchema) -> None:
        """ConfigError if this engine cannot hold ``schema`` (checked before anything is trained or written)."""
    def check_points(self, schema: CollectionSchema, batch: Batch) -> None:
        """Raise what :meth:`upsert` of ``batch`` into a collection of ``schema`` would raise, writing nothing."""
    def schema(self, collection: str) -> CollectionSchema:
        """The collection's schema as stored by the engine; CollectionNotFoundError if absent."""
    def drop(self, collection: str) -> None:
        """Delete the collection and its metadata; a no-op if absent."""
    def count(self, collection: str) -> int: ...

    # -- points -----------------------------------------------------------------------
    def upsert(self, collection: str, batch: Batch) -> None:
        """Insert or overwrite points (same id → replaced). Every resolution of the schema must be
        given with the right width (DimensionError) and finite values (InvalidVectorError);
        nothing is written when validation fails."""
    def delete(self, collection: str, ids: Sequence[PointId]) -> None:
        """Remove the points with these ids (absent ones are ignored)."""
    def scroll(
        self, collection: str, *, cursor: Any = None, limit: int = 1000, with_vectors: bool | Sequence[str] = True
    ) -> tuple[list[Point], Any]:
        """Points in a stable order (by id) from ``cursor`` (None = start); returns (points, next_cursor),
        next_cursor None at the end. The cursor is JSON-serialisable so a migration can checkpoint it.
        ``with_vectors`` names dense and sparse vectors alike; True returns all of them."""
    def retrieve(
        self, collection: str, ids: Sequence[PointId], *, with_vectors: bool | Sequence[str] = True
    ) -> list[Point]:
        """The points with these ids that exist, in the order of ``ids``."""

    # -- search -----------------------------------------------------------------------
    def search(
        self, collection: str, name: str, vector: np.ndarray, limit: int, *, filter: Filter | None = None,
        with_payload: bool = True,
    ) -> list[Hit]:
        """Nearest neighbours of one query on one resolution."""
    def search_stages(
        self, collection: str, stages: Sequence[SearchStage], *, filter: Filter | None = None,
        with_payload: bool = True,
    ) -> list[Hit]:
        """Coarse-to-fine: stage 0 searches its resolution for ``limit`` candidates (with ``filter``),
        each next stage re-scores the previous stage's candidates on its resolution and keeps its
        ``limit``; the last stage's hits are returned, best first."""

    # -- metadata, aliases ------------------------------------------------------------
    def set_metadata(self, collection: str, key: str, value: Mapping[str, Any] | None) -> None:
        """Durably store (or with None, delete) a JSON object kept with the collection (compressor
        manifest, migration checkpoint). Never visible as a point; dropped with the collection."""
    def get_metadata(self, collection: str, key: str) -> dict[str, Any] | None: ...
    def create_alias(self, alias: str, collection: str) -> None:
        """Point ``alias`` at ``collection``, replacing an existing alias of that name atomically."""
    def resolve_alias(self, alias: str) -> str | None: ...
    def aliases(self, collection: str) -> list[str]:
        """The aliases pointing at ``collection``, sorted (``[]`` where the engine has no aliases)."""
    def delete_alias(self, alias: str) -> None: ...

    def close(self) -> None: ...

    # -- a context manager: ``with open_backend(...) as backend:`` closes it (:class:`ClosingContext`) --
    def __enter__(self) -> "Backend": ...
    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None: ...


class ClosingContext(ABC):
    """A context manager that closes its object on exit, also when the block raises (the block's error is
    the one reported): ``with open_backend(...) as backend:``. Every adapter inherits it, and so does
    :class:`smec_vdb.client.Client`."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection (the Backend Protocol's ``close``)."""

    def __enter__(self: _B) -> _B:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is None:
            self.close()
            return
        try:
            self.close()
        except Exception:  # noqa: BLE001 - the block's error is the one to report, not a failing close after it
            pass


def iterate_points(
    backend: Backend, collection: str, *, batch_size: int = 1000, with_vectors: bool | Sequence[str] = True,
    cursor: Any = None,
) -> Iterator[tuple[list[Point], Any]]:
    """Yield (points, cursor_after_this_batch) over a whole collection, resumable from ``cursor``."""
    while True:
        points, cursor = backend.scroll(collection, cursor=cursor, limit=batch_size, with_vectors=with_vectors)
        if points:
            yield points, cursor
        if cursor is None:
            return
