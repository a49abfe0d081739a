"""Qdrant Edge (qdrant-edge-py): Qdrant's Rust engine in-process, the fast embedded default.

Edge has shards, not collections, so a *store* directory holds one shard per collection::

    <store>/aliases.json                  {alias: collection}, replaced atomically under <store>/aliases.lock
    <store>/<collection>/.smec-collection marker written first: this folder is a collection smec-vdb made
    <store>/<collection>/schema.json      the CollectionSchema (written last: the collection is complete)
    <store>/<collection>/metadata.json    {key: JSON object}, replaced atomically
    <store>/<collection>/shard/           the EdgeShard (WAL + segments)

Shards are opened lazily, cached, and closed by :meth:`QdrantEdgeBackend.close`; one process per
collection (Edge locks a shard's WAL). Alias updates are read-modify-write under an exclusive
file lock, so processes sharing a store never lose each other's aliases. The adapter never deletes
a folder it did not create (one without the marker, e.g. a compressor store put in the store). Coarse-to-fine search (paper §3) runs as Edge's native nested
``prefetch``. ``hnsw`` collections are searched exactly until :meth:`QdrantEdgeBackend.optimize`
builds their graphs (a blocking call, tens of seconds per 20k points on 2 cores).

Example::

    backend = QdrantEdgeBackend("./smec_data")
    backend.create_collection("docs", CollectionSchema((Resolution("full", 384), Resolution("d64", 64))))
    hits = backend.search_stages("docs", [SearchStage("d64", q64, 100), SearchStage("full", q, 10)])
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
from filelock import FileLock

from smec_vdb.adapters.errors import engine_errors
from smec_vdb.backend import Batch, ClosingContext, CollectionSchema, Filter, Hit, PayloadLimits, Point, PointId, SearchStage
from smec_vdb.adapters.qdrant_common import (
    SMEC_ID_KEY,
    build_filter,
    check_creatable,
    check_points,
    cursor_id,
    decode_id,
    encode_id,
    held,
    mapping_notes,
    point_vectors,
    public_payload,
    schema_from_json,
    schema_to_json,
    split_vectors,
    stored_payload,
)
from smec_vdb.adapters.qdrant_layout import check_storage, edge_vector_params, quantization_search
from smec_vdb.adapters.validation import (
    check_filter,
    check_id,
    check_limit,
    check_metadata_key,
    check_metadata_value,
    check_stages,
)
from smec_vdb.atomic import atomic_write
from smec_vdb.errors import CollectionExistsError, CollectionNotFoundError, ConfigError, CorruptStoreError
from smec_vdb.layout import placements

UPSERT_CHUNK = 1024
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_SCHEMA_FILE, _METADATA_FILE, _SHARD_DIR, _ALIASES_FILE = "schema.json", "metadata.json", "shard", "aliases.json"
_MARKER_FILE, _ALIASES_LOCK = ".smec-collection", "aliases.lock"
_PAYLOAD_TYPES = {"keyword": "Keyword", "integer": "Integer", "float": "Float", "bool": "Bool", "text": "Text",
                  "datetime": "Datetime", "uuid": "Uuid", "geo": "Geo"}
#: Edge's payload decoder stops at a recursion limit of 128 nested objects/arrays, the payload included
#: (measured: 127 levels under a key store, 128 fail "recursion limit exceed")
PAYLOAD_LIMITS = PayloadLimits(max_depth=128)

#: KB of a vector per segment above which optimize() builds its HNSW graph (the engine's default, 10,000,
#: left collections under ~10 MB per segment graph-less: an `hnsw` schema then searched by a plain scan)
INDEXING_THRESHOLD_KB = 1


def _check_name(name: str, what: str = "collection") -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"{what} name must match {_NAME.pattern} (it is a directory name), found {name!r}")
    return name


def _write_json(path: Path, data: Any) -> None:
    atomic_write(path, json.dumps(data).encode())


def _read_json(path: Path, default: Any) -> Any:
    """The JSON in ``path`` (``default`` if absent); CorruptStoreError naming the file if unreadable."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return default
    try:
        return json.loads(text)
    except ValueError as exc:
        raise CorruptStoreError(
            f"qdrant-edge: {path} is not valid JSON ({exc}); restore it from a backup, or drop the collection"
        ) from exc


def _made_by_us(directory: Path) -> bool:
    """Whether ``directory`` is (or was half-way to becoming) a collection this adapter created: it has
    the marker or a schema, or holds nothing but what a create killed early leaves (an empty folder, a
    ``shard`` folder: what versions before the marker left)."""
    if (directory / _MARKER_FILE).is_file() or (directory / _SCHEMA_FILE).is_file():
        return True
    return directory.is_dir() and {p.name for p in directory.iterdir()} <= {_SHARD_DIR}


class QdrantEdgeBackend(ClosingContext):
    """Backend over qdrant-edge-py: one EdgeShard per collection under the store directory ``path``.

    Cosine collections store normalised vectors: ``scroll``/``retrieve`` return v/‖v‖.
    """

    target = "qdrant-edge"
    supports_aliases = True

    def __init__(self, path: str | os.PathLike[str]) -> None:
        import qdrant_edge

        self._edge = qdrant_edge
        self.store = Path(path)
        self.location = str(self.store.resolve())
        self._engine = f"qdrant-edge ({self.store})"
        self._shards: dict[str, Any] = {}
        self._schemas: dict[str, CollectionSchema] = {}
        self._plans: dict[str, _SearchPlan] = {}
        self._store_path = str(self.store)
        self._aliases_path = os.path.join(self._store_path, _ALIASES_FILE)
        self._opening = threading.Lock()  # a shard opened twice fails (its WAL is locked): one opener at a time
        try:
            self.store.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the qdrant-edge store directory {self.store}: {exc}") from exc

    # -- layout -----------------------------------------------------------------------
    def _aliases(self) -> dict[str, str]:
        return _read_json(self.store / _ALIASES_FILE, {})

    @contextmanager
    def _aliases_locked(self) -> Iterator[dict[str, str]]:
        """The alias map under an exclusive lock, written back atomically (if changed) on exit."""
        with FileLock(self.store / _ALIASES_LOCK):
            aliases = self._aliases()
            before = dict(aliases)
            yield aliases
            if aliases != before:
                _write_json(self.store / _ALIASES_FILE, aliases)

    def aliases(self, collection: str) -> list[str]:
        return sorted(alias for alias, target in self._aliases().items() if target == collection)

    def _is_collection(self, name: str) -> bool:
        return os.path.isfile(os.path.join(self._store_path, name, _SCHEMA_FILE))  # one stat, no pathlib

    def _resolve(self, name: str) -> str:
        """The collection ``name`` designates (itself, or an alias's target); CollectionNotFoundError if none."""
        if self._is_collection(name):
            return name
        target = self._aliases().get(name)
        if target is not None and self._is_collection(target):
            return target
        raise CollectionNotFoundError(f"qdrant-edge: collection {name!r} does not exist in {self.store}")

    def alias_version(self) -> Any:
        """The identity of ``aliases.json`` (replaced atomically on every change: a new inode) — a ``stat``."""
        try:
            st = os.stat(self._aliases_path)
        except FileNotFoundError:
            return ()
        return st.st_ino, st.st_mtime_ns, st.st_size

    def _shard(self, collection: str) -> tuple[str, Any]:
        name = self._resolve(collection)
        with self._opening:
            if name not in self._shards:
                with engine_errors(self._engine, name):
                    self._shards[name] = self._edge.EdgeShard.load(str(self.store / name / _SHARD_DIR))
        return name, self._shards[name]

    # -- collections ------------------------------------------------------------------
    def list_collections(self) -> list[str]:
        return sorted(p.parent.name for p in self.store.glob(f"*/{_SCHEMA_FILE}"))

    def exists(self, collection: str) -> bool:
        try:
            self._resolve(collection)
        except CollectionNotFoundError:
            return False
        return True

    def create_collection(self, collection: str, schema: CollectionSchema) -> None:
        e = self._edge
        directory = self.store / _check_name(collection)
        check_creatable(schema, self._engine)
        if (directory.exists() and not (directory / _SCHEMA_FILE).exists() and _made_by_us(directory)
                and collection not in self._shards):
            shutil.rmtree(directory)  # a create killed before its schema (written last) landed: never usable
        if directory.exists() and not _made_by_us(directory):
            raise CollectionExistsError(
                f"qdrant-edge: {directory} exists and is not a smec-vdb collection (left untouched): "
                "choose another collection name, or move that folder out of the store"
            )
        if directory.exists() or collection in self._aliases():
            raise CollectionExistsError(f"qdrant-edge: collection (or alias) {collection!r} exists already in {self.store}")
        distances = {"cosine": e.Distance.Cosine, "dot": e.Distance.Dot, "euclid": e.Distance.Euclid,
                     "manhattan": e.Distance.Manhattan}
        hnsw = None
        if schema.index.kind == "hnsw":
            hnsw = e.HnswIndexConfig(m=schema.index.m, ef_construct=schema.index.ef_construct,
                                     full_scan_threshold=schema.index.full_scan_threshold_kb)
        placed = placements(schema)  # layout: graph / memory tier / quantization per resolution
        config = e.EdgeConfig(
            vectors={r.name: edge_vector_params(e, r, distances[schema.distance_of(r.name)], placed[r.name], schema.index)
                     for r in schema.resolutions},
            sparse_vectors={name: e.EdgeSparseVectorParams() for name in schema.sparse} or None,
            hnsw_config=hnsw,
            optimizers=None if hnsw is None else e.EdgeOptimizersConfig(indexing_threshold=INDEXING_THRESHOLD_KB),
        )
        try:
            with engine_errors(self._engine, collection):
                directory.mkdir(parents=True)
                (directory / _MARKER_FILE).touch()
                shard = e.EdgeShard.create(str(directory / _SHARD_DIR), config)
                for field_name, kind in schema.payload_indexes.items():
                    shard.update(e.UpdateOperation.create_field_index(field_name, getattr(e.PayloadSchemaType, _PAYLOAD_TYPES[kind])))
                _write_json(directory / _SCHEMA_FILE, schema_to_json(schema))  # last: marks it complete
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        self._shards[collection] = shard
        self._schemas[collection] = held(schema)

    def check_schema(self, schema: CollectionSchema) -> None:
        check_creatable(schema, self._engine)
        for r in schema.resolutions:
            check_storage(r, self._engine)

    def check_points(self, schema: CollectionSchema, batch: Batch) -> None:
        check_points(schema, batch, PAYLOAD_LIMITS)

    def payload_limits(self, schema: CollectionSchema) -> PayloadLimits:
        return PAYLOAD_LIMITS

    def mapping_notes(self, schema: CollectionSchema) -> dict[str, str]:
        return mapping_notes(schema, "qdrant-edge", payload_indexes=True, sharding=False)

    def schema(self, collection: str) -> CollectionSchema:
        name = self._resolve(collection)
        if name not in self._schemas:
            self._schemas[name] = schema_from_json(_read_json(self.store / name / _SCHEMA_FILE, None))
        return self._schemas[name]

    def drop(self, collection: str) -> None:
        """Delete the collection's shard, schema and metadata, and the aliases pointing at it."""
        _check_name(collection)
        directory = self.store / collection
        if not directory.exists() or not _made_by_us(directory):
            return  # absent, or a folder this adapter did not create: never deleted
        shard = self._shards.pop(collection, None)
        self._schemas.pop(collection, None)
        self._plans.pop(collection, None)
        with engine_errors(self._engine, collection):
            if shard is not None:
                shard.close()
            shutil.rmtree(directory)
            with self._aliases_locked() as aliases:
                for alias in [a for a, c in aliases.items() if c == collection]:
                    del aliases[alias]

    def count(self, collection: str) -> int:
        name, shard = self._shard(collection)
        with engine_errors(self._engine, name):
            return int(shard.count(self._edge.CountRequest(exact=True)))

    def optimize(self, collection: str) -> bool:
        """Build the HNSW graphs of an ``hnsw`` collection (blocks; not part of the Backend Protocol).

        Call it once after bulk loading; until then searches are exact brute force.
        Returns whether anything was optimised.
        """
        name, shard = self._shard(collection)
        with engine_errors(self._engine, name):
            return bool(shard.optimize())

    # -- points -----------------------------------------------------------------------
    def upsert(self, collection: str, batch: Batch) -> None:
        e = self._edge
        name, shard = self._shard(collection)
        checked = check_points(self.schema(name), batch, PAYLOAD_LIMITS)
        points = []
        for row, point_id in enumerate(checked.ids):
            qid, original = encode_id(point_id)
            vectors = point_vectors(checked, row, e.SparseVector)
            points.append(e.Point(qid, vectors, stored_payload(checked.payloads[row], point_id, original)))
        with engine_errors(self._engine, name):
            for start in range(0, len(points), UPSERT_CHUNK):
                shard.update(e.UpdateOperation.upsert_points(points[start : start + UPSERT_CHUNK]))

    def delete(self, collection: str, ids: Sequence[PointId]) -> None:
        name, shard = self._shard(collection)
        schema = self.schema(name)
        qids: list[Any] = [encode_id(check_id(schema, i))[0] for i in ids]
        if qids:
            with engine_errors(self._engine, name):
                shard.update(self._edge.UpdateOperation.delete_points(qids))

    def _vector_names(self, collection: str, with_vectors: bool | Sequence[str]) -> bool | list[str]:
        if isinstance(with_vectors, bool):
            return with_vectors
        schema = self.schema(collection)
        return [name if name in schema.sparse else schema.resolution(name).name for name in with_vectors]

    @staticmethod
    def _point(record: Any) -> Point:
        dense, sparse = split_vectors(record.vector)
        return Point(id=decode_id(record.id, record.payload), vectors=dense,
                     payload=public_payload(record.id, record.payload), sparse=sparse)

    def scroll(
        self, collection: str, *, cursor: Any = None, limit: int = 1000, with_vectors: bool | Sequence[str] = True
    ) -> tuple[list[Point], Any]:
        """Points ordered by (stored) id; cosine collections return normalised vectors."""
        name, shard = self._shard(collection)
        request = self._edge.ScrollRequest(
            offset=cursor, limit=check_limit(limit), with_payload=True, with_vector=self._vector_names(name, with_vectors)
        )
        with engine_errors(self._engine, name):
            records, next_offset = shard.scroll(request)
        return [self._point(r) for r in records], cursor_id(next_offset)

    def retrieve(
        self, collection: str, ids: Sequence[PointId], *, with_vectors: bool | Sequence[str] = True
    ) -> list[Point]:
        """The existing points among ``ids``, in that order; cosine collections return normalised vectors."""
        name, shard = self._shard(collection)
        schema = self.schema(name)
        qids = list(dict.fromkeys(encode_id(check_id(schema, i))[0] for i in ids))
        with engine_errors(self._engine, name):
            records = shard.retrieve(qids, True, self._vector_names(name, with_vectors))
        by_id = {str(r.id): self._point(r) for r in records}
        return [by_id[str(q)] for q in qids if str(q) in by_id]

    # -- search -----------------------------------------------------------------------
    def _filter(self, filter: Filter | None) -> Any:
        condition = check_filter(filter)
        if condition is None:
            return None
        return build_filter(condition, self._edge, self._edge.RangeFloat, match_booleans=False)

    def search(
        self, collection: str, name: str, vector: np.ndarray, limit: int, *, filter: Filter | None = None,
        with_payload: bool = True,
    ) -> list[Hit]:
        return self.search_stages(
            collection, [SearchStage(name, vector, limit)], filter=filter, with_payload=with_payload
        )

    def search_stages(
        self, collection: str, stages: Sequence[SearchStage], *, filter: Filter | None = None,
        with_payload: bool = True,
    ) -> list[Hit]:
        """Coarse-to-fine as native nested prefetch: stage 0 (filtered) innermost, the last stage outermost."""
        name, shard = self._shard(collection)
        plan = self._plan(name)
        stages = check_stages(plan.schema, stages)
        request = plan.request(stages, [s.vector for s in stages], self._filter(filter), with_payload)
        with engine_errors(self._engine, name):
            points = shard.query(request)
        return plan.hits(points, with_payload)

    def search_stages_many(
        self, collection: str, stages: Sequence[SearchStage], *, filter: Filter | None = None,
        with_payload: bool = True,
    ) -> list[list[Hit]]:
        """:meth:`search_stages` for each row of the stages' vectors, as one ``query_batch``."""
        name, shard = self._shard(collection)
        plan = self._plan(name)
        stages = check_stages(plan.schema, stages, batch=True)
        query_filter = self._filter(filter)
        requests = [plan.request(stages, row, query_filter, with_payload)
                    for row in zip(*(s.vector for s in stages))]
        with engine_errors(self._engine, name):
            batches = shard.query_batch(self._edge.QueryBatchRequest(requests))
        return [plan.hits(points, with_payload) for points in batches]

    def _plan(self, name: str) -> "_SearchPlan":
        plan = self._plans.get(name)
        if plan is None or plan.schema is not self.schema(name):
            plan = self._plans[name] = _SearchPlan(self._edge, self.schema(name))
        return plan

    # -- metadata, aliases ------------------------------------------------------------
    def set_metadata(self, collection: str, key: str, value: Any) -> None:
        key, value = check_metadata_key(key), check_metadata_value(value)
        path = self.store / self._resolve(collection) / _METADATA_FILE
        metadata = _read_json(path, {})
        if value is None:
            metadata.pop(key, None)
        else:
            metadata[key] = value
        _write_json(path, metadata)

    def get_metadata(self, collection: str, key: str) -> dict[str, Any] | None:
        key = check_metadata_key(key)
        return _read_json(self.store / self._resolve(collection) / _METADATA_FILE, {}).get(key)

    def create_alias(self, alias: str, collection: str) -> None:
        _check_name(alias, "alias")
        if (self.store / alias).exists():
            raise ConfigError(f"qdrant-edge: alias {alias!r} would shadow the collection of that name")
        target = self._resolve(collection)
        with self._aliases_locked() as aliases:
            aliases[alias] = target

    def resolve_alias(self, alias: str) -> str | None:
        return self._aliases().get(alias)

    def delete_alias(self, alias: str) -> None:
        with self._aliases_locked() as aliases:
            aliases.pop(alias, None)

    def close(self) -> None:
        """Flush and close every open shard (the backend can be used again: shards reopen lazily)."""
        shards, self._shards = self._shards, {}
        with engine_errors(self._engine):
            for shard in shards.values():
                shard.flush()
                shard.close()


class _SearchPlan:
    """What every search of one collection shares: its schema, the placements of its resolutions and
    the engine's search parameters per (resolution, ef, oversampling), built once."""

    def __init__(self, e: Any, schema: CollectionSchema) -> None:
        self.e, self.schema = e, schema
        self.placed = placements(schema)
        self.sign = -1.0 if schema.distance == "euclid" else 1.0
        self._params: dict[tuple[str, int | None, float | None], Any] = {}

    def params(self, stage: SearchStage) -> Any:
        """Exact or HNSW ef, plus the layout's quantization parameters."""
        key = (stage.name, stage.ef, stage.oversampling)
        found = self._params.get(key)
        if found is None:
            e, schema = self.e, self.schema
            quantization = quantization_search(e, self.placed[stage.name], stage)
            found = self._params[key] = (e.SearchParams(exact=True, quantization=quantization) if schema.index.kind == "flat"
                                         else e.SearchParams(hnsw_ef=stage.ef or schema.index.ef_search, quantization=quantization))
        return found

    def request(self, stages: Sequence[SearchStage], vectors: Sequence[np.ndarray], query_filter: Any,
                with_payload: bool) -> Any:
        """The nested-prefetch request of one query (``vectors``: its vector per stage). qdrant-edge-py takes
        a query as a list of floats: an array is read element by element (3× slower), a buffer is not taken."""
        e = self.e
        prefetch = None
        for stage, vector in zip(stages[:-1], vectors):
            prefetch = e.Prefetch(
                limit=stage.limit, query=e.Query.Nearest(vector.tolist(), using=stage.name),
                prefetches=None if prefetch is None else [prefetch], params=self.params(stage),
                filter=query_filter if prefetch is None else None,
            )
        last = stages[-1]
        return e.QueryRequest(
            limit=last.limit, query=e.Query.Nearest(vectors[-1].tolist(), using=last.name),
            prefetches=None if prefetch is None else [prefetch], filter=query_filter, params=self.params(last),
            with_payload=True if with_payload else [SMEC_ID_KEY],
        )

    def hits(self, points: Sequence[Any], with_payload: bool) -> list[Hit]:
        """Hits of the engine's points (each attribute of a point is converted on access: read once)."""
        sign, out = self.sign, []
        for p in points:
            point_id, payload = p.id, p.payload
            out.append(Hit(id=decode_id(point_id, payload), score=sign * p.score,
                           payload=public_payload(point_id, payload) if with_payload else None))
        return out
