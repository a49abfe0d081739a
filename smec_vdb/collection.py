"""A multi-resolution collection bound to the compressor that wrote it (the library API for ingestion jobs).

Each point stores its vectors at several resolutions: optionally the full input (``full``) and
one ``d<dim>`` vector per compressed dim. Writes encode on the fly; searches run coarse-to-fine
(smallest resolution first, re-scored on each larger one). The collection records the hash of its
compressor's manifest; opening it with another compressor raises CompressorMismatchError. It may
also hold *carried* vectors (a migrated source's other dense and sparse vectors), stored as given
and never encoded. Opened through an alias, it re-resolves the alias on every search and follows
a swap (loading the new target's compressor), so it never answers with a stale compressor.

Example::

    backend = open_backend("qdrant-edge", path="./smec_data")
    col = SmecCollection.create(backend, "docs", smec_vdb.load("models/docs"))
    col.upsert([1, 2], full_vectors, [{"title": "a"}, {"title": "b"}])
    hits = col.search(query_vector, k=10)
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

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
from smec_vdb.errors import ArtifactError, CompressorMismatchError, ConfigError, DimensionError
from smec_vdb.layout import DEFAULT_LAYOUT, LAYOUTS, Layout
from smec_vdb.search import default_candidates, plan_stages

if TYPE_CHECKING:  # torch is imported only when a compressor is loaded (keeps `smec-vdb inspect` fast)
    from smec_vdb.compress.base import Compressor

FULL = "full"
COMPRESSOR_KEY = "compressor"


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


class SmecCollection:
    """A collection whose points are written and searched through one compressor."""

    def __init__(self, backend: Backend, name: str, compressor: Compressor, *, follow_alias: bool = False) -> None:
        self.backend = backend
        self.name = name
        self.follow_alias = follow_alias
        self._bind(compressor)

    def _bind(self, compressor: Compressor) -> None:
        backend, name = self.backend, self.name
        self.compressor = compressor
        self.bound_to = (backend.resolve_alias(name) if backend.supports_aliases else None) or name
        record = backend.get_metadata(name, COMPRESSOR_KEY)
        if record is None:
            raise CompressorMismatchError(
                f"collection {name!r} on {backend.target} was not written by smec-vdb (no compressor record)"
            )
        if record.get("manifest_hash") != compressor.manifest_hash:
            raise CompressorMismatchError(
                f"collection {name!r} was written by compressor {record.get('manifest_hash')}, "
                f"but compressor {compressor.manifest_hash} was given"
            )
        self.record = record
        self.schema = backend.schema(name)
        # The compressor's resolutions (not carried vectors), widest first.
        encoded = record.get("resolutions") or {r.name: r.dim for r in self.schema.resolutions}
        self.resolutions = tuple(sorted((self.schema.resolution(n) for n in encoded), key=lambda r: r.dim, reverse=True))

    def _follow_swap(self) -> None:
        """If ``name`` is an alias now pointing elsewhere, bind to the new target and its compressor."""
        if not self.backend.supports_aliases:
            return
        now = self.backend.resolve_alias(self.name) or self.name
        if now == self.bound_to:
            return
        record = self.backend.get_metadata(self.name, COMPRESSOR_KEY) or {}
        if record.get("manifest_hash") == self.compressor.manifest_hash:
            self._bind(self.compressor)
        elif self.follow_alias and record.get("path"):
            from smec_vdb.compress.artifact import load as load_compressor

            self._bind(load_compressor(record["path"]))
        else:
            raise CompressorMismatchError(
                f"alias {self.name!r} now points at {now!r} (was {self.bound_to!r}), written by compressor "
                f"{record.get('manifest_hash')}: open it again with that compressor"
            )

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
        """Open an existing collection, loading its compressor from the recorded path unless one is given
        (then an alias swap is followed by loading the new target's compressor)."""
        from smec_vdb.compress.artifact import load as load_compressor
        from smec_vdb.compress.base import Compressor

        follow = compressor is None
        if compressor is None:
            record = backend.get_metadata(name, COMPRESSOR_KEY) if backend.exists(name) else None
            if record is None:
                backend.schema(name)  # raises CollectionNotFoundError when absent
                raise CompressorMismatchError(f"collection {name!r} has no compressor record: pass its compressor")
            if not record.get("path"):
                raise CompressorMismatchError(f"collection {name!r} does not record where its compressor is: pass it")
            compressor = record["path"]
        if not isinstance(compressor, Compressor):
            compressor = load_compressor(compressor)
        return cls(backend, name, compressor, follow_alias=follow)

    # -- writing ------------------------------------------------------------------------
    def encode(self, full_vectors: Any) -> dict[str, np.ndarray]:
        """Every stored resolution of these full-width vectors (float32, unit rows)."""
        encoded = self.compressor.encode_many(full_vectors, [r.dim for r in self.resolutions])
        return {r.name: encoded[r.dim] for r in self.resolutions}

    def upsert(
        self, ids: Sequence[PointId], full_vectors: Any, payloads: Sequence[Mapping[str, Any]] | None = None
    ) -> None:
        """Encode full-width vectors at every resolution and upsert them (same id → replaced)."""
        vectors = self.encode(full_vectors)
        n = next(iter(vectors.values())).shape[0]
        if len(ids) != n:
            raise DimensionError(f"got {len(ids)} ids for {n} vectors")
        carried = [r.name for r in self.schema.resolutions if r not in self.resolutions]
        if carried:
            raise ConfigError(f"collection {self.name!r} also holds the vectors {carried}: write them with backend.upsert")
        self.backend.upsert(self.name, Batch(ids=list(ids), vectors=vectors, payloads=payloads))

    # -- searching ----------------------------------------------------------------------
    def search(
        self,
        vector: Any,
        k: int = 10,
        *,
        candidates: int | None = None,
        filter: Filter | None = None,
        with_payload: bool = True,
    ) -> list[Hit]:
        """Coarse-to-fine search: the full-width query is encoded at every stored resolution; the
        smallest is searched for ``candidates`` (default: :func:`default_candidates`), each larger
        one re-scores the survivors of the previous one."""
        if k < 1:
            raise ConfigError(f"k must be >= 1, found {k}")
        self._follow_swap()
        coarse = self.resolutions[-1]
        quantization = None if self.schema.layout is None else self.schema.layout.coarse.quantization
        candidates = candidates or default_candidates(k, self.compressor.input_dim, coarse.dim, quantization)
        if candidates < k:
            raise ConfigError(f"candidates ({candidates}) must be >= k ({k})")
        encoded = self.encode(np.asarray(vector, dtype=np.float32).reshape(1, -1))
        queries = {name: matrix[0] for name, matrix in encoded.items()}
        stages = plan_stages(queries, [r.name for r in reversed(self.resolutions)], k, candidates)
        return self.backend.search_stages(self.name, stages, filter=filter, with_payload=with_payload)

    def count(self) -> int:
        return self.backend.count(self.name)
