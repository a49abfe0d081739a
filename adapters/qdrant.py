"""Qdrant through qdrant-client: a server (``url``) or the embedded local mode (``path`` / ":memory:").

Layout (issue 3): one named vector per resolution; the schema smec-vdb needs (resolution order,
id type, index parameters) and the caller's metadata live in the collection's own ``metadata``
(reserved key ``_smec_schema``), so they are durable and dropped with the collection.
Coarse-to-fine (paper §3): on a server, native nested ``prefetch``; in local mode, whose prefetch
is correct but slow (an id filter checked in Python), the first stage is searched with the later
stages' vectors attached and re-scored in numpy (:mod:`smec_vdb.adapters.rerank`).

Example::

    backend = QdrantBackend(path="./qdrant_store")          # or url="http://localhost:6333"
    backend.create_collection("docs", CollectionSchema((Resolution("full", 384), Resolution("d64", 64))))
    hits = backend.search("docs", "d64", query64, 10)
"""

from __future__ import annotations

from typing import Any, Sequence, cast

import numpy as np

from smec_vdb.adapters import rerank
from smec_vdb.adapters.errors import engine_errors
from smec_vdb.backend import UNNAMED, Batch, CollectionSchema, Filter, Hit, Point, PointId, Resolution, SearchStage
from smec_vdb.adapters.qdrant_common import (
    SMEC_ID_KEY,
    build_filter,
    check_creatable,
    check_points,
    cursor_id,
    decode_id,
    encode_id,
    public_payload,
    schema_from_json,
    schema_to_json,
    split_vectors,
    stored_payload,
)
from smec_vdb.adapters.qdrant_layout import client_vector_params, quantization_search
from smec_vdb.adapters.validation import (
    check_batch,
    check_filter,
    check_id,
    check_limit,
    check_metadata_key,
    check_metadata_value,
    check_stages,
)
from smec_vdb.layout import placements
from smec_vdb.errors import CollectionExistsError, CollectionNotFoundError, ConfigError

SCHEMA_KEY = "_smec_schema"
UPSERT_CHUNK = 512
_DISTANCES = {"cosine": "Cosine", "dot": "Dot", "euclid": "Euclid", "manhattan": "Manhattan"}
_PAYLOAD_TYPES = {"keyword": "keyword", "integer": "integer", "float": "float", "bool": "bool"}


class QdrantBackend:
    """Backend over qdrant-client. Exactly one of ``url`` (server) or ``path`` (embedded) is given.

    Cosine collections store normalised vectors: ``scroll``/``retrieve`` return v/‖v‖.
    """

    supports_aliases = True

    def __init__(self, *, url: str | None = None, path: str | None = None, api_key: str | None = None) -> None:
        if (url is None) == (path is None):
            raise ConfigError("QdrantBackend needs exactly one of url (server) or path (embedded / ':memory:')")
        from qdrant_client import QdrantClient, models

        self._models = models
        self.local = url is None
        self.target = "qdrant-local" if self.local else "qdrant-server"
        self._engine = f"qdrant ({url or path})"
        self._schemas: dict[str, CollectionSchema] = {}
        with engine_errors(self._engine):
            if self.local:
                self._client = QdrantClient(location=":memory:") if path == ":memory:" else QdrantClient(path=path)
            else:
                self._client = QdrantClient(url=url, api_key=api_key)

    # -- collections ------------------------------------------------------------------
    def list_collections(self) -> list[str]:
        with engine_errors(self._engine):
            return sorted(c.name for c in self._client.get_collections().collections)

    def exists(self, collection: str) -> bool:
        with engine_errors(self._engine, collection):
            return bool(self._client.collection_exists(collection))

    def create_collection(self, collection: str, schema: CollectionSchema) -> None:
        m = self._models
        hnsw = schema.index.kind == "hnsw"
        # flat = exact search; m=0 keeps a server from building a graph it would never use
        hnsw_config = m.HnswConfigDiff(m=schema.index.m if hnsw else 0, ef_construct=schema.index.ef_construct)
        check_creatable(schema, self._engine)
        placed = placements(schema)  # layout: on_disk / m=0 / quantization per resolution
        vectors = {
            r.name: client_vector_params(m, r.dim, m.Distance(_DISTANCES[schema.distance_of(r.name)]), placed[r.name])
            for r in schema.resolutions
        }
        sparse = {name: m.SparseVectorParams() for name in schema.sparse} or None
        with engine_errors(self._engine, collection):
            if self._client.collection_exists(collection):
                raise CollectionExistsError(f"collection {collection!r} exists already")
            self._client.create_collection(
                collection, vectors_config=vectors, sparse_vectors_config=sparse,
                hnsw_config=None if self.local else hnsw_config, metadata={SCHEMA_KEY: schema_to_json(schema)},
            )
            if not self.local:  # local mode accepts payload indexes but ignores them (and warns)
                for field_name, kind in schema.payload_indexes.items():
                    self._client.create_payload_index(collection, field_name, m.PayloadSchemaType(_PAYLOAD_TYPES[kind]))
        self._schemas[collection] = schema

    def check_schema(self, schema: CollectionSchema) -> None:
        check_creatable(schema, self._engine)

    def check_points(self, schema: CollectionSchema, batch: Batch) -> None:
        check_points(schema, batch)

    def schema(self, collection: str) -> CollectionSchema:
        if collection not in self._schemas:
            self._schemas[collection] = self._read_schema(collection)
        return self._schemas[collection]

    def _read_schema(self, collection: str) -> CollectionSchema:
        with engine_errors(self._engine, collection):
            config = self._client.get_collection(collection).config
        stored = (config.metadata or {}).get(SCHEMA_KEY)
        if stored is not None:
            return schema_from_json(stored)
        return foreign_schema(collection, config.params)

    def drop(self, collection: str) -> None:
        self._schemas.pop(collection, None)
        with engine_errors(self._engine, collection):
            if self._client.collection_exists(collection):
                self._client.delete_collection(collection)

    def count(self, collection: str) -> int:
        with engine_errors(self._engine, collection):
            return int(self._client.count(collection, exact=True).count)

    # -- points -----------------------------------------------------------------------
    def upsert(self, collection: str, batch: Batch) -> None:
        checked = check_batch(self.schema(collection), batch)
        rows = {name: matrix.tolist() for name, matrix in checked.vectors.items()}
        points = []
        for row, point_id in enumerate(checked.ids):
            qid, original = encode_id(point_id)
            vector: dict[str, Any] = {name: values[row] for name, values in rows.items()}
            for name, entries in checked.sparse.items():
                if (entry := entries[row]) is not None:
                    vector[name] = self._models.SparseVector(indices=list(entry.indices), values=list(entry.values))
            payload = stored_payload(checked.payloads[row], point_id, original)
            points.append(self._models.PointStruct(id=qid, vector=vector, payload=payload))
        with engine_errors(self._engine, collection):
            for start in range(0, len(points), UPSERT_CHUNK):
                self._client.upsert(collection, points[start : start + UPSERT_CHUNK], wait=True)

    def delete(self, collection: str, ids: Sequence[PointId]) -> None:
        schema = self.schema(collection)
        qids: list[Any] = [encode_id(check_id(schema, i))[0] for i in ids]
        if qids:
            with engine_errors(self._engine, collection):
                self._client.delete(collection, points_selector=self._models.PointIdsList(points=qids), wait=True)

    def _vector_names(self, collection: str, with_vectors: bool | Sequence[str]) -> bool | list[str]:
        if isinstance(with_vectors, bool):
            return with_vectors
        schema = self.schema(collection)
        return [name if name in schema.sparse else schema.resolution(name).name for name in with_vectors]

    def _point(self, record: Any) -> Point:
        dense, sparse = split_vectors(record.vector)
        return Point(id=decode_id(record.id, record.payload), vectors=dense,
                     payload=public_payload(record.id, record.payload), sparse=sparse)

    def scroll(
        self, collection: str, *, cursor: Any = None, limit: int = 1000, with_vectors: bool | Sequence[str] = True
    ) -> tuple[list[Point], Any]:
        """Points ordered by (stored) id; cosine collections return normalised vectors."""
        names = self._vector_names(collection, with_vectors)
        with engine_errors(self._engine, collection):
            records, next_offset = self._client.scroll(
                collection, offset=cursor, limit=check_limit(limit), with_payload=True, with_vectors=names
            )
        return [self._point(r) for r in records], cursor_id(next_offset)

    def retrieve(
        self, collection: str, ids: Sequence[PointId], *, with_vectors: bool | Sequence[str] = True
    ) -> list[Point]:
        """The existing points among ``ids``, in that order; cosine collections return normalised vectors."""
        schema = self.schema(collection)
        names = self._vector_names(collection, with_vectors)
        qids = [encode_id(check_id(schema, i))[0] for i in ids]
        with engine_errors(self._engine, collection):
            records = self._client.retrieve(collection, ids=qids, with_payload=True, with_vectors=names)
        by_id = {str(r.id): self._point(r) for r in records}
        return [by_id[str(q)] for q in dict.fromkeys(qids) if str(q) in by_id]

    # -- search -----------------------------------------------------------------------
    def _search_params(self, schema: CollectionSchema, stage: SearchStage) -> Any:
        if self.local:  # always exact; local mode warns about any search_params
            return None
        quantization = quantization_search(self._models, placements(schema)[stage.name], stage)
        if schema.index.kind == "flat":
            return self._models.SearchParams(exact=True, quantization=quantization)
        return self._models.SearchParams(hnsw_ef=stage.ef or schema.index.ef_search, quantization=quantization)

    def _filter(self, filter: Filter | None) -> Any:
        condition = check_filter(filter)
        return None if condition is None else build_filter(condition, self._models, self._models.Range)

    def _hit(self, point: Any, distance: str, with_payload: bool) -> Hit:
        score = -point.score if distance == "euclid" else point.score
        payload = public_payload(point.id, point.payload) if with_payload else None
        return Hit(id=decode_id(point.id, point.payload), score=float(score), payload=payload)

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
        """Coarse-to-fine: native nested prefetch on a server, numpy re-scoring in local mode."""
        schema = self.schema(collection)
        stages = check_stages(schema, stages)
        query_filter = self._filter(filter)
        payload_selector: bool | list[str] = True if with_payload else [SMEC_ID_KEY]
        if self.local and len(stages) > 1:
            return self._search_rescore(collection, schema, stages, query_filter, payload_selector, with_payload)
        prefetch = None
        for stage in stages[:-1]:
            prefetch = self._models.Prefetch(
                query=stage.vector.tolist(), using=stage.name, limit=stage.limit, params=self._search_params(schema, stage),
                filter=query_filter if prefetch is None else None, prefetch=prefetch,
            )
        last = stages[-1]
        with engine_errors(self._engine, collection):
            response = self._client.query_points(
                collection, query=last.vector.tolist(), using=last.name, prefetch=prefetch, limit=last.limit,
                query_filter=query_filter, search_params=self._search_params(schema, last), with_payload=payload_selector,
            )
        return [self._hit(p, schema.distance, with_payload) for p in response.points]

    def _search_rescore(
        self, collection: str, schema: CollectionSchema, stages: list[SearchStage], query_filter: Any,
        payload_selector: bool | list[str], with_payload: bool,
    ) -> list[Hit]:
        first, later = stages[0], stages[1:]
        names = list(dict.fromkeys(s.name for s in later))
        with engine_errors(self._engine, collection):
            points = self._client.query_points(
                collection, query=first.vector.tolist(), using=first.name, limit=first.limit,
                query_filter=query_filter, with_payload=payload_selector, with_vectors=names,
            ).points
        candidates = rerank.Candidates(
            ids=[decode_id(p.id, p.payload) for p in points],
            vectors={n: np.asarray([cast(dict, p.vector)[n] for p in points], dtype=np.float32).reshape(len(points), -1) for n in names},
            payloads=[public_payload(p.id, p.payload) for p in points] if with_payload else None,
        )
        return rerank.rescore(candidates, later, schema.distance)

    # -- metadata, aliases ------------------------------------------------------------
    def set_metadata(self, collection: str, key: str, value: Any) -> None:
        key, value = check_metadata_key(key), check_metadata_value(value)
        collection = self.resolve_alias(collection) or collection  # metadata follows aliases
        with engine_errors(self._engine, collection):
            if not self._client.collection_exists(collection):
                raise CollectionNotFoundError(f"collection {collection!r} does not exist")
            # a top-level key is replaced as a whole; None removes it (server and local mode alike)
            self._client.update_collection(collection, metadata={key: value})

    def get_metadata(self, collection: str, key: str) -> dict[str, Any] | None:
        key = check_metadata_key(key)
        collection = self.resolve_alias(collection) or collection  # metadata follows aliases
        with engine_errors(self._engine, collection):
            metadata = self._client.get_collection(collection).config.metadata or {}
        return metadata.get(key)

    def create_alias(self, alias: str, collection: str) -> None:
        m = self._models
        self._schemas.pop(alias, None)
        with engine_errors(self._engine, collection):
            if not self._client.collection_exists(collection):
                raise CollectionNotFoundError(f"collection {collection!r} does not exist")
            operations = []
            if self.resolve_alias(alias) is not None:
                operations.append(m.DeleteAliasOperation(delete_alias=m.DeleteAlias(alias_name=alias)))
            operations.append(m.CreateAliasOperation(create_alias=m.CreateAlias(collection_name=collection, alias_name=alias)))
            self._client.update_collection_aliases(change_aliases_operations=operations)

    def resolve_alias(self, alias: str) -> str | None:
        with engine_errors(self._engine):
            for description in self._client.get_aliases().aliases:
                if description.alias_name == alias:
                    return description.collection_name
        return None

    def delete_alias(self, alias: str) -> None:
        m = self._models
        self._schemas.pop(alias, None)
        with engine_errors(self._engine):
            if self.resolve_alias(alias) is not None:
                self._client.update_collection_aliases(
                    change_aliases_operations=[m.DeleteAliasOperation(delete_alias=m.DeleteAlias(alias_name=alias))]
                )

    def close(self) -> None:
        with engine_errors(self._engine):
            self._client.close()


def foreign_schema(collection: str, params: Any) -> CollectionSchema:
    """The schema of a collection smec-vdb did not create (e.g. qdrant-client's quickstart): its dense
    vectors widest first (the unnamed one as :data:`UNNAMED`), each with its distance, its sparse
    vectors, and ``id_type`` "any" (Qdrant allows integer and UUID ids side by side)."""
    vectors = params.vectors
    if vectors is None:
        vectors = {}
    elif not isinstance(vectors, dict):
        vectors = {UNNAMED: vectors}
    resolutions = sorted(
        (Resolution(name, p.size, p.distance.value.lower()) for name, p in vectors.items()), key=lambda r: -r.dim
    )
    if not resolutions:
        raise ConfigError(f"collection {collection!r} has no dense vector to compress (only sparse ones)")
    return CollectionSchema(resolutions=tuple(resolutions), distance=resolutions[0].distance or "cosine",
                            id_type="any", sparse=tuple(sorted((params.sparse_vectors or {}).keys())))
