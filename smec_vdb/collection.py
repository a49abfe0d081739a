"""A multi-resolution collection bound to the compressor that wrote it (the library API for ingestion jobs).

Each point stores its vectors at several resolutions: optionally the full input (``full``) and
one ``d<dim>`` vector per compressed dim. Writes encode on the fly; searches run coarse-to-fine
(smallest resolution first, re-scored on each larger one). The collection records the hash of its
compressor's manifest; opening it with another compressor raises CompressorMismatchError. It may
also hold *carried* vectors (a migrated source's other dense and sparse vectors), stored as given
and never encoded.

A search encodes the query once with the bound compressor (numpy on cached weights for a linear
method, :mod:`smec_vdb.compress.numpy_encoder`) and normalises nothing: the collection is cosine,
which every engine (and the numpy re-score) computes on the vectors as given and sends it to the *concrete* collection that compressor wrote, never
to an alias name: a swap landing between the encode and the search cannot mix two compressors'
spaces. Opened through an alias, it checks before each search whether the alias moved — the
backend's ``alias_version()`` token where it has one (a ``stat`` or an in-process counter, no
metadata read), else ``resolve_alias`` — and after a swap binds to the new target and its
compressor; a search that finds its collection dropped by a swap re-binds and runs once more.
The coarse candidate count defaults to the collection's calibrated one
(:mod:`smec_vdb.calibrate`, recorded under ``search`` in the compressor record), else the rule of
:func:`smec_vdb.search.default_candidates`.

Example::

    backend = open_backend("qdrant-edge", path="./smec_data")
    col = SmecCollection.create(backend, "docs", smec_vdb.load("models/docs"))
    col.upsert([1, 2], full_vectors, [{"title": "a"}, {"title": "b"}])
    hits = col.search(query_vector, k=10)
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol, Sequence, TypeVar

import numpy as np

from smec_vdb.backend import (
    Backend,
    Batch,
    CollectionSchema,
    Filter,
    Hit,
    IndexParams,
    PayloadType,
    PointId,
    Resolution,
)
from smec_vdb.compress.numpy_encoder import as_rows
from smec_vdb.errors import ArtifactError, CollectionNotFoundError, CompressorMismatchError, ConfigError, DimensionError
from smec_vdb.layout import DEFAULT_LAYOUT, LAYOUTS, Layout
from smec_vdb.search import default_candidates, plan_stages, scaled_candidates

if TYPE_CHECKING:  # torch is imported only when a compressor is loaded (keeps `smec-vdb inspect` fast)
    from smec_vdb.compress.base import Compressor

FULL = "full"
COMPRESSOR_KEY = "compressor"
#: the calibration's entry in the compressor record (:mod:`smec_vdb.calibrate`)
SEARCH_KEY = "search"
#: queries per engine request of :meth:`SmecCollection.search_many`
SEARCH_BATCH = 256
T = TypeVar("T")


class Encoder(Protocol):
    """What a collection encodes with: a :class:`~smec_vdb.compress.base.Compressor`, or the torch-free
    :class:`~smec_vdb.compress.numpy_encoder.NumpyEncoder` of one."""

    @property
    def method(self) -> str: ...
    @property
    def input_dim(self) -> int: ...
    @property
    def dims(self) -> tuple[int, ...]: ...

    def encode_many(self, x: Any, dims: Sequence[int], *, normalize: bool = True) -> dict[int, np.ndarray]: ...


def resolution_name(dim: int, input_dim: int) -> str:
    """``full`` for the input width, ``d<dim>`` for a compressed one."""
    return FULL if dim == input_dim else f"d{dim}"


def plan_resolutions(compressor: Compressor, dims: Sequence[int] | None, keep_full: bool) -> tuple[Resolution, ...]:
    """Resolutions to store, widest first: ``full`` (if kept) plus the chosen compressed dims."""
    chosen = list(compressor.dims) if dims is None else [int(d) for d in dims]
    for d in chosen:
        compressor.check_dim(d)
    widths = sorted({*chosen, *([compressor.input_dim] if keep_full else [])}, reverse=True)
    if not widths:
        raise ConfigError("nothing to store: no compressed dims and keep_full is False")
    return tuple(Resolution(resolution_name(w, compressor.input_dim), w) for w in widths)


def compressor_record(compressor: Compressor, resolutions: Sequence[Resolution], path: str | None) -> dict[str, Any]:
    """What a collection stores about its compressor (metadata key ``compressor``)."""
    return {
        "manifest_hash": compressor.manifest_hash,
        "method": compressor.method,
        "input_dim": compressor.input_dim,
        "dims": list(compressor.dims),
        "resolutions": {r.name: r.dim for r in resolutions},
        "path": path,
    }


def recorded_path(compressor: Compressor, given: str | Path | None) -> str | None:
    """The folder to record for ``compressor``: ``given`` (CompressorMismatchError unless it holds this
    compressor), else ``compressor.path`` while it still holds it (an in-place extension changes the hash)."""
    from smec_vdb.compress.artifact import stored_hash

    where = given if given is not None else compressor.path
    if where is None:
        return None
    try:
        found = stored_hash(where)
    except ArtifactError:
        if given is None:
            return None
        raise
    if found != compressor.manifest_hash:
        if given is None:
            return None
        raise CompressorMismatchError(f"compressor_path {given} holds compressor {found}, "
                                      f"not the compressor {compressor.manifest_hash} given")
    return str(Path(where).resolve())


@dataclass(frozen=True)
class Binding:
    """What one search reads, replaced as a whole (never piecewise) when an alias moves."""

    collection: str                        #: the concrete collection searched and written
    encoder: Encoder
    encoder_hash: str
    record: dict[str, Any]
    schema: CollectionSchema
    resolutions: tuple[Resolution, ...]    #: the compressor's resolutions, widest first
    via_alias: bool
    alias_token: Any = None                #: the backend's alias_version() when bound

    @cached_property
    def compressed_dims(self) -> list[int]:
        """The dims a query is encoded to (the full resolution is the query itself)."""
        return [r.dim for r in self.resolutions if r.dim != self.encoder.input_dim] or [self.encoder.input_dim]

    @cached_property
    def query_encoder(self) -> Encoder:
        """What a query is encoded with: a compressor's cached-weights encoder when it has one (the module
        would dispatch to it anyway), else the encoder itself."""
        fast = getattr(self.encoder, "numpy_encoder", None)
        return (fast() if fast is not None else None) or self.encoder

    @cached_property
    def coarse_to_fine(self) -> list[str]:
        return [r.name for r in reversed(self.resolutions)]

    @cached_property
    def _defaults(self) -> dict[int, int]:
        return {}

    def default_candidates(self, k: int) -> int:
        """The calibrated count scaled to ``k`` (:func:`smec_vdb.search.scaled_candidates`), else the rule."""
        known = self._defaults.get(k)
        if known is not None:
            return known
        calibrated = (self.record.get(SEARCH_KEY) or {}).get("candidates")
        if calibrated:
            count = scaled_candidates(int(calibrated), int(self.record[SEARCH_KEY].get("k", 10)), k)
        else:
            layout = self.schema.layout
            count = default_candidates(k, self.encoder.input_dim, self.resolutions[-1].dim,
                                       None if layout is None else layout.coarse.quantization)
        self._defaults[k] = count
        return count


class SmecCollection:
    """A collection whose points are written and searched through one compressor (module doc)."""

    def __init__(self, backend: Backend, name: str, compressor: Compressor | Encoder, *,
                 follow_alias: bool = False) -> None:
        self.backend = backend
        self.name = name
        self.follow_alias = follow_alias
        self._torch_compressor: Compressor | None = None
        token, target = self._resolve()
        self._binding = self._bind(compressor, _encoder_hash(compressor), token, target)

    # -- binding --------------------------------------------------------------------------
    def _resolve(self) -> tuple[Any, str]:
        """(the backend's alias token, read first; the concrete collection ``name`` designates now)."""
        version = getattr(self.backend, "alias_version", None)
        token = version() if version is not None else None
        return token, (self.backend.resolve_alias(self.name) if self.backend.supports_aliases else None) or self.name

    def _bind(self, encoder: Encoder, encoder_hash: str, token: Any, target: str,
              record: dict[str, Any] | None = None) -> Binding:
        """Everything a search needs, read from the concrete collection ``target`` (never through the alias)."""
        backend, name = self.backend, self.name
        record = record if record is not None else backend.get_metadata(target, COMPRESSOR_KEY)
        if record is None:
            raise CompressorMismatchError(
                f"collection {name!r} on {backend.target} was not written by smec-vdb (no compressor record)"
            )
        if record.get("manifest_hash") != encoder_hash:
            raise CompressorMismatchError(
                f"collection {name!r} was written by compressor {record.get('manifest_hash')}, "
                f"but compressor {encoder_hash} was given"
            )
        schema = backend.schema(target)
        # The compressor's resolutions (not carried vectors), widest first.
        encoded = record.get("resolutions") or {r.name: r.dim for r in schema.resolutions}
        resolutions = tuple(sorted((schema.resolution(n) for n in encoded), key=lambda r: r.dim, reverse=True))
        return Binding(target, encoder, encoder_hash, record, schema, resolutions, target != name, token)

    def _current(self) -> Binding:
        """The binding to search with: re-bound first if ``name`` is an alias that moved since."""
        b = self._binding
        if not b.via_alias:
            return b  # a collection's name cannot become an alias while the collection exists
        version = getattr(self.backend, "alias_version", None)
        if version is not None and version() == b.alias_token:
            return b
        token, target = self._resolve()
        if target == b.collection:
            self._binding = b = replace(b, alias_token=token)
            return b
        return self._follow_swap(token, target)

    def _follow_swap(self, token: Any = None, target: str | None = None) -> Binding:
        """Bind to ``target`` (default: where ``name`` points now) with the compressor that wrote it."""
        b = self._binding
        if target is None:
            token, target = self._resolve()
        record = self.backend.get_metadata(target, COMPRESSOR_KEY) or {}
        if record.get("manifest_hash") == b.encoder_hash:
            encoder, encoder_hash = b.encoder, b.encoder_hash
        elif self.follow_alias and record.get("path"):
            encoder = load_encoder(record["path"])
            encoder_hash = _encoder_hash(encoder)
            self._torch_compressor = None
        else:
            raise CompressorMismatchError(
                f"alias {self.name!r} now points at {target!r} (was {b.collection!r}), written by compressor "
                f"{record.get('manifest_hash')}: open it again with that compressor"
            )
        self._binding = self._bind(encoder, encoder_hash, token, target, record or None)
        return self._binding

    @property
    def bound_to(self) -> str:
        """The concrete collection this reader searches (``name`` itself, or the alias's target)."""
        return self._binding.collection

    @property
    def record(self) -> dict[str, Any]:
        return self._binding.record

    @property
    def schema(self) -> CollectionSchema:
        return self._binding.schema

    @property
    def resolutions(self) -> tuple[Resolution, ...]:
        return self._binding.resolutions

    @property
    def encoder(self) -> Encoder:
        return self._binding.encoder

    @property
    def compressor(self) -> Compressor:
        """The bound compressor as a torch module (loaded on first use when the collection was opened with
        its numpy encoder only)."""
        from smec_vdb.compress.base import Compressor

        encoder = self._binding.encoder
        if isinstance(encoder, Compressor):
            return encoder
        if self._torch_compressor is None:
            from smec_vdb.compress.artifact import load as load_compressor

            self._torch_compressor = load_compressor(self._binding.record["path"])
        return self._torch_compressor

    def default_candidates(self, k: int) -> int:
        """Coarse candidates a search for top-``k`` uses unless told otherwise (module doc)."""
        return self._current().default_candidates(k)

    def record_search_defaults(self, entry: Mapping[str, Any] | None) -> None:
        """Store ``entry`` (a calibration, :mod:`smec_vdb.calibrate`) under ``search`` in the compressor
        record of the bound collection, or remove it (None); searches use it from now on."""
        b = self._binding
        record = {k: v for k, v in b.record.items() if k != SEARCH_KEY}
        if entry is not None:
            record[SEARCH_KEY] = dict(entry)
        self.backend.set_metadata(b.collection, COMPRESSOR_KEY, record)
        self._binding = replace(b, record=record)

    # -- construction -----------------------------------------------------------------
    @classmethod
    def create(
        cls,
        backend: Backend,
        name: str,
        compressor: Compressor,
        *,
        dims: Sequence[int] | None = None,
        keep_full: bool = True,
        id_type: str = "int",
        payload_indexes: Mapping[str, PayloadType] | None = None,
        index: IndexParams = IndexParams(),
        compressor_path: str | Path | None = None,
        layout: Layout | None = LAYOUTS[DEFAULT_LAYOUT],
        carried: Sequence[Resolution] = (),
        sparse: Sequence[str] = (),
        like: CollectionSchema | None = None,
    ) -> "SmecCollection":
        """Create ``name`` with one vector per resolution (plus ``carried`` dense and ``sparse`` vectors
        kept as given) and record the compressor's hash and folder: ``compressor_path``, else the folder it
        was loaded from or saved to (``compressor.path``) if that still holds it; a ``compressor_path``
        holding another compressor is refused before anything is created.

        ``layout`` places the compressor's resolutions (see :mod:`smec_vdb.layout`; default ``tiered``:
        the coarsest with its graph in RAM, the wider ones graph-less on disk); carried vectors keep the
        engine's defaults. None = engine defaults for all. ``like``: a schema whose other settings
        (sharding, partitions, columns…, e.g. a migration source's) the collection takes.
        """
        resolutions = plan_resolutions(compressor, dims, keep_full)
        path = recorded_path(compressor, compressor_path)
        schema = replace(
            like or CollectionSchema(resolutions=resolutions),
            resolutions=resolutions + tuple(carried),
            distance="cosine",
            id_type=id_type,  # type: ignore[arg-type]
            payload_indexes=dict(payload_indexes or {}),
            index=index,
            layout=None if layout is None else layout.governing(r.name for r in resolutions),
            sparse=tuple(sparse),
        )
        backend.create_collection(name, schema)
        backend.set_metadata(name, COMPRESSOR_KEY, compressor_record(compressor, resolutions, path))
        return cls(backend, name, compressor)

    @classmethod
    def open(cls, backend: Backend, name: str, compressor: Compressor | str | Path | None = None) -> "SmecCollection":
        """Open an existing collection with its compressor: the one given (a module, or its folder), else
        the one its record names — then an alias swap is followed by loading the new target's. A folder
        of a linear method is read as its numpy encoder, without torch (:func:`load_encoder`)."""
        follow = compressor is None
        if compressor is None:
            target = (backend.resolve_alias(name) if backend.supports_aliases else None) or name
            record = backend.get_metadata(target, COMPRESSOR_KEY) if backend.exists(target) else None
            if record is None:
                backend.schema(name)  # raises CollectionNotFoundError when absent
                raise CompressorMismatchError(f"collection {name!r} has no compressor record: pass its compressor")
            if not record.get("path"):
                raise CompressorMismatchError(f"collection {name!r} does not record where its compressor is: pass it")
            compressor = record["path"]
        encoder = load_encoder(compressor) if isinstance(compressor, (str, Path)) else compressor
        return cls(backend, name, encoder, follow_alias=follow)

    # -- writing ------------------------------------------------------------------------
    def encode(self, full_vectors: Any) -> dict[str, np.ndarray]:
        """Every stored resolution of these full-width vectors (float32, unit rows)."""
        b = self._binding
        encoded = b.encoder.encode_many(full_vectors, [r.dim for r in b.resolutions])
        return {r.name: encoded[r.dim] for r in b.resolutions}

    def upsert(
        self, ids: Sequence[PointId], full_vectors: Any, payloads: Sequence[Mapping[str, Any]] | None = None
    ) -> None:
        """Encode full-width vectors at every resolution and upsert them (same id → replaced)."""
        b = self._binding
        vectors = self.encode(full_vectors)
        n = next(iter(vectors.values())).shape[0]
        if len(ids) != n:
            raise DimensionError(f"got {len(ids)} ids for {n} vectors")
        carried = [r.name for r in b.schema.resolutions if r not in b.resolutions]
        if carried:
            raise ConfigError(f"collection {self.name!r} also holds the vectors {carried}: write them with backend.upsert")
        self.backend.upsert(b.collection, Batch(ids=list(ids), vectors=vectors, payloads=payloads))

    # -- searching ----------------------------------------------------------------------
    def search(
        self,
        vector: Any,
        k: int = 10,
        *,
        candidates: int | None = None,
        ef: int | None = None,
        filter: Filter | None = None,
        with_payload: bool = True,
    ) -> list[Hit]:
        """Coarse-to-fine search with one full-width query: encoded once to the compressed resolutions,
        the smallest searched for ``candidates`` (default: :meth:`default_candidates`) with HNSW ``ef``
        (default: the schema's ``ef_search``), each larger one re-scoring the survivors of the previous
        one, on the concrete collection (module doc)."""
        if k < 1:
            raise ConfigError(f"k must be >= 1, found {k}")

        def run(b: Binding) -> list[Hit]:
            query = as_rows(vector, b.encoder.input_dim)
            if query.shape[0] != 1:
                raise DimensionError(f"search takes one query vector, found {query.shape[0]} rows")
            stages = self._stages(b, {name: m[0] for name, m in self._queries(b, query).items()}, k, candidates, ef)
            return self.backend.search_stages(b.collection, stages, filter=filter, with_payload=with_payload)

        return self._on_binding(run)

    def search_many(
        self,
        vectors: Any,
        k: int = 10,
        *,
        candidates: int | None = None,
        ef: int | None = None,
        filter: Filter | None = None,
        with_payload: bool = True,
    ) -> list[list[Hit]]:
        """:meth:`search` for each row of an (n, input_dim) matrix: one encode of all of them, then the
        engine's batch query (qdrant-edge ``query_batch``, Qdrant ``query_batch_points``, one Milvus search
        of every vector) per :data:`SEARCH_BATCH` queries; the hits of each query, in order."""
        if k < 1:
            raise ConfigError(f"k must be >= 1, found {k}")

        def run(b: Binding) -> list[list[Hit]]:
            queries = as_rows(vectors, b.encoder.input_dim)
            matrices = self._queries(b, queries)
            out: list[list[Hit]] = []
            for start in range(0, len(queries), SEARCH_BATCH):
                part = {name: m[start:start + SEARCH_BATCH] for name, m in matrices.items()}
                out += self.backend.search_stages_many(b.collection, self._stages(b, part, k, candidates, ef),
                                                       filter=filter, with_payload=with_payload)
            return out

        return self._on_binding(run)

    def _on_binding(self, run: Callable[[Binding], T]) -> T:
        """``run`` on the bound collection; once more on the alias's new collection when a swap dropped
        the old one under it (an error of a collection not bound through an alias is reported)."""
        for attempt in (0, 1):
            b = self._current() if attempt == 0 else self._follow_swap()
            try:
                return run(b)
            except CollectionNotFoundError:
                if not b.via_alias or attempt:
                    raise
        raise AssertionError("unreachable")

    @staticmethod
    def _queries(b: Binding, queries: np.ndarray) -> dict[str, np.ndarray]:
        """Each resolution's query rows: the compressed ones encoded once (cosine, every SMEC collection:
        the engines normalise the query themselves), the full one as given."""
        encoded = b.query_encoder.encode_many(queries, b.compressed_dims, normalize=False)
        return {r.name: encoded.get(r.dim, queries) for r in b.resolutions}

    @staticmethod
    def _stages(b: Binding, queries: Mapping[str, np.ndarray], k: int, candidates: int | None,
                ef: int | None) -> list:
        """The stages of one search (or one batch of them): ``ef`` set on the first, the coarse one."""
        stages = plan_stages(queries, b.coarse_to_fine, k, candidates or b.default_candidates(k))
        return stages if ef is None else [replace(stages[0], ef=ef), *stages[1:]]

    def count(self) -> int:
        return self.backend.count(self._binding.collection)


def _encoder_hash(encoder: Any) -> str:
    """The id a collection records for ``encoder`` (a Compressor computes it from its weights)."""
    found = getattr(encoder, "manifest_hash", None)
    if not found:
        raise CompressorMismatchError("this encoder has no compressor id: load it from its saved folder")
    return str(found)


def load_encoder(path: str | Path) -> Encoder:
    """The compressor saved at ``path``: its numpy encoder when the method is linear (no torch), else the module."""
    from smec_vdb.compress.numpy_encoder import load_encoder as load_numpy

    encoder = load_numpy(path)
    if encoder is not None:
        return encoder
    from smec_vdb.compress.artifact import load as load_compressor

    return load_compressor(path)
