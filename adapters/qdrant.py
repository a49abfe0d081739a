"""Qdrant through qdrant-client: a server (``url``) or the embedded local mode (``path`` / ":memory:").

Layout (issue 3): one named vector per resolution; the schema smec-vdb needs (resolution order,
id type, index parameters) and the caller's metadata live in the collection's own ``metadata``
(reserved key ``_smec_schema``), so they are durable and dropped with the collection.
Coarse-to-fine (paper §3): on a server, native nested ``prefetch``; in local mode, whose prefetch
is correct but slow (an id filter checked in Python), the first stage is searched with the later
stages' vectors attached and re-scored in numpy (:mod:`smec_vdb.adapters.rerank`).

On a server: an explicit request ``timeout`` (default :data:`DEFAULT_TIMEOUT` s, not httpx's 5 s),
REST or ``prefer_grpc``, upserts split by bytes under ``request_budget``
(:mod:`smec_vdb.adapters.qdrant_requests`), the server version read at connect (collection
metadata needs Qdrant >= 1.16) and, for HNSW collections, an indexing threshold low enough that
a small collection's coarse vectors get their graph (the server default, 10,000 KB of vectors,
would leave the suite's collections on plain full scans). Retries are the caller's:
:mod:`smec_vdb.retry` (errors say whether one helps).

Example::

    backend = QdrantBackend(path="./qdrant_store")          # or url="http://localhost:6333"
    backend.create_collection("docs", CollectionSchema((Resolution("full", 384), Resolution("d64", 64))))
    hits = backend.search("docs", "d64", query64, 10)
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence, cast

import numpy as np
from packaging.version import Version

from smec_vdb.adapters import rerank
from smec_vdb.adapters.errors import engine_errors
from smec_vdb.backend import (
    UNNAMED, Batch, ClosingContext, CollectionSchema, Filter, Hit, PayloadLimits, Point, PointId, Resolution, SearchStage,
)
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
from smec_vdb.adapters.qdrant_layout import check_storage, client_vector_params, quantization_search
from smec_vdb.adapters.server_version import leading_version
from smec_vdb.adapters.qdrant_requests import (
    DEFAULT_REQUEST_BUDGET,
    MAX_POINTS_PER_REQUEST,
    check_budget,
    grpc_shape,
    plan_requests,
    rest_shape,
)
from smec_vdb.adapters.validation import (
    CheckedBatch,
    check_filter,
    check_id,
    check_limit,
    check_metadata_key,
    check_metadata_value,
    check_stages,
)
from smec_vdb.layout import placements
from smec_vdb.errors import CollectionExistsError, CollectionNotFoundError, ConfigError, ServerVersionError, public_url

SCHEMA_KEY = "_smec_schema"
#: seconds per request on a server (qdrant-client would otherwise use httpx's 5 s)
DEFAULT_TIMEOUT = 60.0
#: collection metadata (where the schema, compressor record and checkpoint live) exists from 1.16
MIN_SERVER_VERSION = Version("1.16")
#: KB of vectors in a segment above which a server builds its HNSW graphs (server default 10,000)
INDEXING_THRESHOLD_KB = 1
_DISTANCES = {"cosine": "Cosine", "dot": "Dot", "euclid": "Euclid", "manhattan": "Manhattan"}
#: collection settings a server shards and replicates by, carried from a source server to a target server
SHARDING = ("shard_number", "replication_factor", "write_consistency_factor")
#: a server parses REST bodies with serde_json, whose recursion limit is 128 (read, not run here)
SERVER_PAYLOAD_LIMITS = PayloadLimits(max_depth=128)
#: the longest JSON a float32 component takes (e.g. ``-1.2345678901234567e-05,``)
MAX_FLOAT_JSON_BYTES = 25
#: a collection name as long as Qdrant allows: a request's size is measured with it (an upper bound)
_LONGEST_NAME = "c" * 255


class QdrantBackend(ClosingContext):
    """Backend over qdrant-client. Exactly one of ``url`` (server) or ``path`` (embedded) is given.

    Server only: ``timeout`` seconds per request (default :data:`DEFAULT_TIMEOUT`), ``prefer_grpc``
    (port 6334), ``request_budget`` bytes per upsert request (see the module doc).
    Cosine collections store normalised vectors: ``scroll``/``retrieve`` return v/‖v‖.
    """

    supports_aliases = True

    def __init__(
        self, *, url: str | None = None, path: str | None = None, api_key: str | None = None,
        timeout: float | None = None, prefer_grpc: bool = False, request_budget: int = DEFAULT_REQUEST_BUDGET,
    ) -> None:
        if (url is None) == (path is None):
            raise ConfigError("QdrantBackend needs exactly one of url (server) or path (embedded / ':memory:')")
        if path is not None and (timeout is not None or prefer_grpc):
            raise ConfigError(f"timeout and prefer_grpc apply to a server url, not to the embedded path={path!r}")
        if timeout is not None and not (isinstance(timeout, (int, float)) and timeout > 0):
            raise ConfigError(f"timeout must be a positive number of seconds, found {timeout!r}")
        from qdrant_client import QdrantClient, models

        self._models = models
        self.local = url is None
        self.target = "qdrant-local" if self.local else "qdrant-server"
        self.location = public_url(url) if url is not None else path if path == ":memory:" else str(Path(cast(str, path)).resolve())
        self._engine = f"qdrant ({url or path})"
        self._schemas: dict[str, CollectionSchema] = {}
        self._grpc = prefer_grpc
        self._budget = check_budget(request_budget)
        #: what upsert checks of each payload itself (a server's request size is measured exactly when sending)
        self._limits = PayloadLimits() if url is None else SERVER_PAYLOAD_LIMITS
        #: the server's version; None in local mode
        self.server_version: Version | None = None
        with engine_errors(self._engine):
            if self.local:
                self._client = QdrantClient(location=":memory:") if path == ":memory:" else QdrantClient(path=path)
                return
            # the version is checked below, synchronously, instead of the client's warning thread
            self._client = QdrantClient(url=url, api_key=api_key, timeout=math.ceil(timeout or DEFAULT_TIMEOUT),
                                        prefer_grpc=prefer_grpc, check_compatibility=False)
        try:
            self.server_version = self._check_server_version()
        except BaseException:
            self._client.close()
            raise

    def _check_server_version(self) -> Version:
        """The server's version; a ServerVersionError below :data:`MIN_SERVER_VERSION` (pre-releases of a
        release count as that release)."""
        with engine_errors(self._engine):  # unreachable: a retriable BackendError naming the (masked) url
            reported = str(self._client.info().version)
        version = parse_version(reported, self._engine)
        if Version(version.base_version) < MIN_SERVER_VERSION:
            raise ServerVersionError(
                f"{self._engine}: server version {reported} is too old: smec-vdb keeps each collection's schema, "
                f"compressor record and checkpoint in collection metadata, which needs Qdrant >= {MIN_SERVER_VERSION}; "
                "upgrade the server (nothing was written)"
            )
        return version

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
            r.name: client_vector_params(m, r, m.Distance(_DISTANCES[schema.distance_of(r.name)]), placed[r.name])
            for r in schema.resolutions
        }
        sparse = {name: m.SparseVectorParams() for name in schema.sparse} or None
        # a server builds graphs only past its indexing threshold: lower it so small collections get them
        # too (vectors whose layout says m=0 still get none)
        optimizers = m.OptimizersConfigDiff(indexing_threshold=INDEXING_THRESHOLD_KB) if hnsw and not self.local else None
        with engine_errors(self._engine, collection):
            if self._client.collection_exists(collection):
                raise CollectionExistsError(f"collection {collection!r} exists already")
            self._client.create_collection(
                collection, vectors_config=vectors, sparse_vectors_config=sparse,
                hnsw_config=None if self.local else hnsw_config, optimizers_config=optimizers,
                metadata={SCHEMA_KEY: schema_to_json(schema)},
                **({} if self.local else self._sharding(schema)),
            )
            if not self.local:  # local mode accepts payload indexes but ignores them (and warns)
                for field_name, kind in schema.payload_indexes.items():
                    self._client.create_payload_index(collection, field_name, m.PayloadSchemaType(kind))
        self._schemas[collection] = held(schema)

    @staticmethod
    def _sharding(schema: CollectionSchema) -> dict[str, Any]:
        """``create_collection`` keywords for the schema's shard number, replication and write consistency."""
        return {key: int(value) for key, value in schema.sharding.items() if key in SHARDING}

    def check_schema(self, schema: CollectionSchema) -> None:
        check_creatable(schema, self._engine)
        for r in schema.resolutions:
            check_storage(r, self._engine)

    def check_points(self, schema: CollectionSchema, batch: Batch) -> None:
        checked = check_points(schema, batch, self._limits)
        self._requests(_LONGEST_NAME, checked.ids, self._point_structs(checked))  # a point over the request budget

    def payload_limits(self, schema: CollectionSchema) -> PayloadLimits:
        """Local mode: none of its own. A server: serde_json's nesting limit, and the request budget less
        a point's vectors at their longest JSON (upsert measures each point exactly)."""
        if self.local:
            return self._limits
        vector_bytes = sum(r.dim * MAX_FLOAT_JSON_BYTES for r in schema.resolutions) + len(schema.sparse) * 64
        return PayloadLimits(max_depth=SERVER_PAYLOAD_LIMITS.max_depth,
                             max_json_bytes=max(0, self._budget - vector_bytes - 1024))

    def mapping_notes(self, schema: CollectionSchema) -> dict[str, str]:
        return mapping_notes(schema, self.target, payload_indexes=not self.local, sharding=not self.local)

    def schema(self, collection: str) -> CollectionSchema:
        if collection not in self._schemas:
            self._schemas[collection] = self._read_schema(collection)
        return self._schemas[collection]

    def _read_schema(self, collection: str) -> CollectionSchema:
        with engine_errors(self._engine, collection):
            info = self._client.get_collection(collection)
        config = info.config
        stored = (config.metadata or {}).get(SCHEMA_KEY)
        if stored is not None:
            return schema_from_json(stored)
        return foreign_schema(collection, info)

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
        checked = check_points(self.schema(collection), batch, self._limits)
        points = self._point_structs(checked)
        for chunk in self._requests(collection, checked.ids, points):
            with engine_errors(self._engine, collection):
                self._client.upsert(collection, points[chunk.start : chunk.stop], wait=True)

    def _point_structs(self, checked: CheckedBatch) -> list[Any]:
        points = []
        for row, point_id in enumerate(checked.ids):
            qid, original = encode_id(point_id)
            vector = point_vectors(checked, row, self._models.SparseVector)
            payload = stored_payload(checked.payloads[row], point_id, original)
            points.append(self._models.PointStruct(id=qid, vector=vector, payload=payload))
        return points

    def _requests(self, collection: str, ids: Sequence[PointId], points: list[Any]) -> list[range]:
        """Index ranges of ``points``, one upsert request each (sized by bytes on a server).

        With ``prefer_grpc`` each point is measured as the gRPC message the client converts it to
        (the client is still given ``models.PointStruct``: it deprecates gRPC structs as input).
        """
        if self.local:  # no request is sent: chunk by count only
            step = MAX_POINTS_PER_REQUEST
            return [range(i, min(i + step, len(points))) for i in range(0, len(points), step)]
        if self._grpc:
            from qdrant_client.conversions.conversion import RestToGrpc

            converted = [RestToGrpc.convert_point_struct(p) for p in points]
            return plan_requests(ids, grpc_shape(collection, converted), budget=self._budget)
        return plan_requests(ids, rest_shape(points), budget=self._budget)

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

    def aliases(self, collection: str) -> list[str]:
        with engine_errors(self._engine, collection):
            return sorted(a.alias_name for a in self._client.get_collection_aliases(collection).aliases)

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


def parse_version(reported: str, engine: str) -> Version:
    """The version a server reports, such as ``1.16.2`` or ``v1.17.0-dev`` (PEP 440, :mod:`packaging.version`)."""
    version = leading_version(reported)
    if version is None:
        raise ServerVersionError(f"{engine}: cannot read the server version: expected major.minor[.patch], "
                                 f"found {reported!r}")
    return version


def foreign_schema(collection: str, info: Any) -> CollectionSchema:
    """The schema of a collection smec-vdb did not create (e.g. qdrant-client's quickstart), from its
    ``get_collection`` info: its dense vectors widest first (the unnamed one as :data:`UNNAMED`), each with
    its distance, datatype and multivector config; its sparse vectors; its payload indexes with their
    types (``payload_schema``; a server reports them, local mode never does); its sharding; and
    ``id_type`` "any" (Qdrant allows integer and UUID ids side by side)."""
    params = info.config.params
    vectors = params.vectors
    if vectors is None:
        vectors = {}
    elif not isinstance(vectors, dict):
        vectors = {UNNAMED: vectors}
    resolutions = sorted(
        (Resolution(name, p.size, p.distance.value.lower(), datatype=p.datatype.value if p.datatype else "float32",
                    multivector=p.multivector_config is not None)
         for name, p in vectors.items()), key=lambda r: -r.dim
    )
    if not resolutions:
        raise ConfigError(f"collection {collection!r} has no dense vector to compress (only sparse ones)")
    sharding = {key: value for key in SHARDING if (value := getattr(params, key, None)) is not None}
    payload_indexes = {key: str(getattr(index.data_type, "value", index.data_type))
                       for key, index in sorted((info.payload_schema or {}).items())}
    return CollectionSchema(resolutions=tuple(resolutions), distance=resolutions[0].distance or "cosine",
                            id_type="any", sparse=tuple(sorted((params.sparse_vectors or {}).keys())),
                            payload_indexes=payload_indexes, sharding=sharding)  # type: ignore[arg-type]
