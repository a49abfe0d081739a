"""A toy in-memory engine: the smallest Backend a plug-in can be, and its one registration record.

It lives in the test tree to show what adding an engine takes: this module (the adapter and its
:class:`~smec_vdb.engines.Engine` record :data:`TOY`) plus one registration, ``register(TOY)`` in
process or an entry point in the ``smec_vdb.engines`` group of an installed package. Nothing in
smec-vdb names it. Stores live in this process only, keyed by path, so a path reopened in the same
process sees what was written. It builds on the helpers every adapter uses: input validation
(:mod:`smec_vdb.adapters.validation`), the filter language (:mod:`smec_vdb.filters`) and numpy
re-scoring (:mod:`smec_vdb.adapters.rerank`).

Example::

    from smec_vdb.engines import register
    register(TOY)
    with smec_vdb.connect("toy:///scratch") as client:
        client.backend.list_collections()
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from smec_vdb.adapters.rerank import Candidates, rescore
from smec_vdb.adapters import validation
from smec_vdb.backend import Batch, ClosingContext, CollectionSchema, Filter, Hit, Point, PointId, SearchStage
from smec_vdb.engines import Capabilities, Engine, Target
from smec_vdb.errors import CollectionExistsError, CollectionNotFoundError, ConfigError
from smec_vdb.filters import matches
from smec_vdb.layout import check_engine_support
from smec_vdb.search import similarity

TOY = Engine(
    "toy", "toy_engine:ToyBackend", "an in-memory toy engine (the plug-in example of the test suite)",
    (Target("toy", "path", "a name for an in-memory store", test_store="toy-store"),),
    caps=Capabilities(payload_indexes=False, quantizations=frozenset({"none"})),
    install_hint="it ships with smec-vdb's test suite",
)


@dataclass
class _Collection:
    schema: CollectionSchema
    points: dict[PointId, Point] = field(default_factory=dict)
    metadata: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class _Store:
    collections: dict[str, _Collection] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)


_STORES: dict[str, _Store] = {}


class ToyBackend(ClosingContext):
    """The Backend Protocol over Python dicts: exact search in numpy, one store per path in this process."""

    target = "toy"
    supports_aliases = True

    def __init__(self, path: str) -> None:
        self.location = str(path)  # the store's identity (in-memory: its name)
        self._store = _STORES.setdefault(str(path), _Store())

    # -- collections ------------------------------------------------------------------
    def list_collections(self) -> list[str]:
        return sorted(self._store.collections)

    def exists(self, collection: str) -> bool:
        return self._name(collection) in self._store.collections

    def create_collection(self, collection: str, schema: CollectionSchema) -> None:
        self.check_schema(schema)
        check_engine_support(self.target, schema.layout, schema.index.kind)
        if self.exists(collection):
            raise CollectionExistsError(f"toy: collection {collection!r} exists already")
        self._store.collections[collection] = _Collection(schema)

    def check_schema(self, schema: CollectionSchema) -> None:
        if schema.sparse:
            raise ConfigError("toy: no sparse vectors")

    def check_points(self, schema: CollectionSchema, batch: Batch) -> None:
        validation.check_batch(schema, batch)

    def schema(self, collection: str) -> CollectionSchema:
        return self._get(collection).schema

    def drop(self, collection: str) -> None:
        self._store.collections.pop(collection, None)
        self._store.aliases = {a: c for a, c in self._store.aliases.items() if c != collection}

    def count(self, collection: str) -> int:
        return len(self._get(collection).points)

    # -- points -----------------------------------------------------------------------
    def upsert(self, collection: str, batch: Batch) -> None:
        stored = self._get(collection)
        checked = validation.check_batch(stored.schema, batch)
        for i, pid in enumerate(checked.ids):
            vectors = {name: matrix[i].copy() for name, matrix in checked.vectors.items()}
            stored.points[pid] = Point(pid, vectors, dict(checked.payloads[i]))

    def delete(self, collection: str, ids: Sequence[PointId]) -> None:
        stored = self._get(collection)
        for pid in ids:
            stored.points.pop(validation.check_id(stored.schema, pid), None)

    def scroll(self, collection: str, *, cursor: Any = None, limit: int = 1000,
               with_vectors: bool | Sequence[str] = True) -> tuple[list[Point], Any]:
        stored = self._get(collection)
        ids = sorted(stored.points)
        after = [i for i in ids if cursor is None or i > validation.check_id(stored.schema, cursor)]
        page = after[: validation.check_limit(limit)]
        points = [self._copy(stored.points[i], with_vectors) for i in page]
        return points, (page[-1] if len(after) > len(page) else None)

    def retrieve(self, collection: str, ids: Sequence[PointId], *,
                 with_vectors: bool | Sequence[str] = True) -> list[Point]:
        stored = self._get(collection)
        wanted = [validation.check_id(stored.schema, i) for i in ids]
        return [self._copy(stored.points[i], with_vectors) for i in wanted if i in stored.points]

    # -- search -----------------------------------------------------------------------
    def search(self, collection: str, name: str, vector: np.ndarray, limit: int, *, filter: Filter | None = None,
               with_payload: bool = True) -> list[Hit]:
        stored = self._get(collection)
        ids, scores = self._ranked(stored, name, validation.check_query(stored.schema, name, vector), filter)
        return [Hit(i, float(s), dict(stored.points[i].payload) if with_payload else None)
                for i, s in zip(ids[: validation.check_limit(limit)], scores)]

    def search_stages(self, collection: str, stages: Sequence[SearchStage], *, filter: Filter | None = None,
                      with_payload: bool = True) -> list[Hit]:
        stored = self._get(collection)
        first, *later = validation.check_stages(stored.schema, stages)
        ids, _ = self._ranked(stored, first.name, first.vector, filter)
        ids = ids[: first.limit]
        if not later:
            return self.search(collection, first.name, first.vector, first.limit, filter=filter,
                               with_payload=with_payload)
        vectors = {s.name: np.stack([stored.points[i].vectors[s.name] for i in ids]) for s in later}
        payloads = [dict(stored.points[i].payload) for i in ids] if with_payload else None
        return rescore(Candidates(ids, vectors, payloads), later, stored.schema.distance) if ids else []

    # -- metadata, aliases ------------------------------------------------------------
    def set_metadata(self, collection: str, key: str, value: Mapping[str, Any] | None) -> None:
        stored, key, value = self._get(collection), validation.check_metadata_key(key), validation.check_metadata_value(value)
        if value is None:
            stored.metadata.pop(key, None)
        else:
            stored.metadata[key] = value

    def get_metadata(self, collection: str, key: str) -> dict[str, Any] | None:
        value = self._get(collection).metadata.get(validation.check_metadata_key(key))
        return None if value is None else dict(value)

    def create_alias(self, alias: str, collection: str) -> None:
        if collection not in self._store.collections:
            raise CollectionNotFoundError(f"toy: collection {collection!r} does not exist")
        self._store.aliases[alias] = collection

    def resolve_alias(self, alias: str) -> str | None:
        return self._store.aliases.get(alias)

    def aliases(self, collection: str) -> list[str]:
        return sorted(a for a, c in self._store.aliases.items() if c == collection)

    def delete_alias(self, alias: str) -> None:
        self._store.aliases.pop(alias, None)

    def close(self) -> None:
        """Nothing to release: the store stays in this process for the next open of its path."""

    # -- internals --------------------------------------------------------------------
    def _name(self, collection: str) -> str:
        return self._store.aliases.get(collection, collection)

    def _get(self, collection: str) -> _Collection:
        stored = self._store.collections.get(self._name(collection))
        if stored is None:
            raise CollectionNotFoundError(f"toy: collection {collection!r} does not exist")
        return stored

    @staticmethod
    def _copy(point: Point, with_vectors: bool | Sequence[str]) -> Point:
        names = point.vectors if with_vectors is True else ([] if with_vectors is False else with_vectors)
        return Point(point.id, {n: point.vectors[n].copy() for n in names}, dict(point.payload))

    @staticmethod
    def _ranked(stored: _Collection, name: str, query: np.ndarray, filter: Filter | None) -> tuple[list[PointId], np.ndarray]:
        condition = validation.check_filter(filter)
        ids = [i for i in sorted(stored.points) if condition is None or matches(condition, stored.points[i].payload)]
        if not ids:
            return [], np.zeros(0)
        matrix = np.stack([stored.points[i].vectors[name] for i in ids])
        scores = similarity(stored.schema.distance_of(name), query, matrix)
        order = np.argsort(-scores, kind="stable")
        return [ids[k] for k in order], scores[order]
