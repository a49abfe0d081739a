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

import json
import math
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
#: a payload index: Qdrant's field schema types (``keyword`` … ``geo``); Milvus typed columns hold the first four
PayloadType = Literal["keyword", "integer", "float", "bool", "text", "datetime", "uuid", "geo"]
PAYLOAD_TYPES: tuple[str, ...] = ("keyword", "integer", "float", "bool", "text", "datetime", "uuid", "geo")
#: how an engine stores a dense vector's components (Qdrant ``datatype``; Milvus FLOAT16_VECTOR, INT8_VECTOR,
#: BINARY_VECTOR: ``binary`` packs ``dim`` bits in dim / 8 bytes)
VectorDatatype = Literal["float32", "float16", "bfloat16", "uint8", "int8", "binary"]
DATATYPES: tuple[str, ...] = ("float32", "float16", "bfloat16", "uint8", "int8", "binary")
#: a typed scalar column (Milvus): its values' type
ColumnType = Literal["bool", "int8", "int16", "int32", "int64", "float", "double", "varchar", "json", "array"]
COLUMN_TYPES: tuple[str, ...] = ("bool", "int8", "int16", "int32", "int64", "float", "double", "varchar", "json", "array")
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
    #: how the engine stores the components; a point's vector comes back with the values it holds
    datatype: VectorDatatype = "float32"
    #: several vectors of width ``dim`` per point, compared by max-sim (Qdrant ``MultiVectorConfig``, ColBERT):
    #: a point's value is a (tokens, dim) matrix
    multivector: bool = False

    def __post_init__(self) -> None:
        if self.name != UNNAMED and not self.name.replace("_", "").replace("-", "").isalnum():
            raise ConfigError(f"vector name must be alphanumeric/underscore/hyphen, found {self.name!r}")
        if self.dim < 1:
            raise ConfigError(f"vector {self.name!r}: dim must be >= 1, found {self.dim}")
        if self.distance is not None and self.distance not in DISTANCES:
            raise ConfigError(f"vector {self.name!r}: distance must be one of {DISTANCES}, found {self.distance!r}")
        if self.datatype not in DATATYPES:
            raise ConfigError(f"vector {self.name!r}: datatype must be one of {DATATYPES}, found {self.datatype!r}")

    @property
    def plain(self) -> bool:
        """One float32 vector per point: what smec-vdb compresses and searches."""
        return self.datatype == "float32" and not self.multivector

    def describe(self) -> str:
        """e.g. ``'img' 4-d float16 multivector``."""
        kind = "" if self.datatype == "float32" else f" {self.datatype}"
        return f"{self.name or '(unnamed)'!r} {self.dim}-d{kind}{' multivector' if self.multivector else ''}"


@dataclass(frozen=True)
class Column:
    """A typed scalar field of a collection (Milvus): name, type, and what the engine enforces.

    ``element_type``/``max_capacity`` for an ``array``; ``max_length`` for a ``varchar`` (and an array of
    them); ``default`` is filled in for a null on insert; ``index`` the scalar index type (e.g. ``INVERTED``)
    or None; ``partition_key``: the column Milvus partitions by; ``absent_when_null``: a null cell is a
    payload without the key (the column holds a key that some points lack and none has as null)."""

    name: str
    type: ColumnType
    nullable: bool = False
    default: Any = None
    max_length: int | None = None
    element_type: ColumnType | None = None
    max_capacity: int | None = None
    index: str | None = None
    partition_key: bool = False
    absent_when_null: bool = False

    def __post_init__(self) -> None:
        if self.type not in COLUMN_TYPES or (self.element_type is not None and self.element_type not in COLUMN_TYPES):
            raise ConfigError(f"column {self.name!r}: type must be one of {COLUMN_TYPES}, found {self.type!r}")


@dataclass(frozen=True)
class PrimaryKey:
    """How a collection names and makes its ids (Milvus): field ``name``, ``auto_id``, a VARCHAR key's ``max_length``."""

    name: str = "id"
    auto_id: bool = False
    max_length: int | None = None


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


INT64_RANGE = (-(2**63), 2**63 - 1)


@dataclass(frozen=True)
class PayloadLimits:
    """What one engine holds of a point's payload (None: no limit of that kind).

    ``max_json_bytes``: the payload as compact UTF-8 JSON (Milvus server: one JSON field of 65,536 bytes);
    ``max_depth``: nested objects/arrays, the payload itself counted (qdrant-edge: 128);
    ``max_string_bytes``: one string value. Beyond any engine's limits: integers outside signed 64 bits
    (Qdrant stores them as floats, Milvus refuses them) and NaN/infinity (not JSON; qdrant-edge refuses
    them, Milvus stores null).
    """

    max_json_bytes: int | None = None
    max_depth: int | None = None
    max_string_bytes: int | None = None

    def problem(self, payload: Mapping[str, Any]) -> str | None:
        """How ``payload`` exceeds these limits (a phrase naming the key), or None when it fits."""
        lo, hi = INT64_RANGE
        stack: list[tuple[str, Any, int]] = [("", payload, 1)]
        while stack:
            path, value, depth = stack.pop()
            if isinstance(value, Mapping) or isinstance(value, (list, tuple)):
                if self.max_depth is not None and depth > self.max_depth:
                    return f"key {path!r} nests {depth} levels deep (limit {self.max_depth})"
                items = value.items() if isinstance(value, Mapping) else enumerate(value)
                stack.extend((f"{path}.{k}" if path else str(k), v, depth + 1) for k, v in items)
            elif isinstance(value, bool) or value is None:
                continue
            elif isinstance(value, int) and not lo <= value <= hi:
                return f"key {path!r} holds the integer {value}, beyond signed 64 bits"
            elif isinstance(value, float) and not math.isfinite(value):
                return f"key {path!r} holds {value}, which JSON cannot hold"
            elif isinstance(value, str) and self.max_string_bytes is not None and (
                    len(value) > self.max_string_bytes // 4 and len(value.encode()) > self.max_string_bytes):
                return f"key {path!r} holds a string of {len(value.encode())} bytes (limit {self.max_string_bytes})"
        if self.max_json_bytes is not None:
            size = len(json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str).encode())
            if size > self.max_json_bytes:
                return f"the payload is {size} bytes of JSON (limit {self.max_json_bytes})"
        return None


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
    # -- what a foreign (user-made) collection has beyond vectors and a payload; the defaults are
    # -- smec-vdb's own layout. An adapter fills in what its engine has and creates what it can hold.
    #: typed scalar columns (Milvus); payload keys of every other point live in the payload
    columns: tuple[Column, ...] = ()
    #: the id field (None: the engine's default for smec-vdb collections)
    primary: PrimaryKey | None = None
    #: keys outside ``columns`` are kept (Milvus dynamic field); Qdrant payloads always are
    dynamic_field: bool = True
    #: named partitions besides the default one (each point's is :attr:`Point.partition`)
    partitions: tuple[str, ...] = ()
    #: shard_number / replication_factor / write_consistency_factor (Qdrant server), shards (Milvus)
    sharding: Mapping[str, int] = field(default_factory=dict)

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
        if bad := sorted(k for k, v in self.payload_indexes.items() if v not in PAYLOAD_TYPES):
            raise ConfigError(f"payload index types must be among {PAYLOAD_TYPES}, found {bad}")

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
    """A stored point: id, dense vectors (1-D arrays; a multivector's a (tokens, dim) matrix; only those the
    point has), payload and sparse vectors, and its partition (None: the default one, or no partitions)."""

    id: PointId
    vectors: dict[str, np.ndarray]
    payload: dict[str, Any]
    sparse: dict[str, SparseVector] = field(default_factory=dict)
    partition: str | None = None


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
    """A batch of points to upsert: ids, one (n, dim) float32 matrix per dense vector (per multivector a
    list of (tokens, dim) matrices), payloads, and per sparse vector of the schema one entry per point
    (``None``: the point has none).

    ``absent``: per dense vector, one flag per point that lacks it (its row is ignored; engines that
    store every vector on every point refuse it); ``partitions``: one partition name (or None) per point.
    """

    ids: Sequence[PointId]
    vectors: Mapping[str, Any]
    payloads: Sequence[Mapping[str, Any]] | None = None
    sparse: Mapping[str, Sequence[SparseVector | None]] | None = None
    absent: Mapping[str, Sequence[bool]] | None = None
    partitions: Sequence[str | None] | None = None


@runtime_checkable
class Backend(Protocol):
    """A connection to one engine instance (server or embedded store)."""

    #: target name, e.g. "qdrant-edge", "qdrant-local", "qdrant-server", "milvus-lite", "milvus-server"
    target: str
    #: where this engine instance is, without credentials: a server's URL (``public_url``) or the absolute
    #: path of an embedded store; with ``target``, a store's identity (plan ids, compressor gc reports)
    location: str
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
        """Raise what :meth:`upsert` of ``batch`` into a collection of ``schema`` would raise, writing nothing,
        including the engine's limits (payload size and nesting, integers beyond 64 bits: DataError;
        a point larger than a request: RequestTooLargeError)."""
    def payload_limits(self, schema: CollectionSchema) -> PayloadLimits:
        """What one point's payload may be in a collection of ``schema`` (what check_points and upsert refuse)."""
    def mapping_notes(self, schema: CollectionSchema) -> dict[str, str]:
        """How this engine holds each part of ``schema`` it does not keep as given, by topic (``ids``,
        ``payload``, ``payload_indexes``, ``sharding``, ``partitions``): an index it does not build, a
        setting it does not have; {} when it keeps all of it as given."""
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
