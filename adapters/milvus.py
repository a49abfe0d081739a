"""Milvus adapter: a multi-resolution collection in Milvus Lite (``x.db``) or a Milvus server.

:class:`MilvusBackend` implements the Backend Protocol by composing one room per concept:

- :mod:`~smec_vdb.adapters.milvus_connection`: the pymilvus client, which target it reached, the
  server's version gates (:mod:`~smec_vdb.adapters.milvus_version`) and Milvus Lite's lifetime;
- :mod:`~smec_vdb.adapters.milvus_errors`: engine errors mapped into smec-vdb's, ``retriable`` set;
- :mod:`~smec_vdb.adapters.milvus_schema`: the collection schema as Milvus fields (own and foreign
  collections, typed payload columns), created all-or-nothing;
- :mod:`~smec_vdb.adapters.milvus_layout`: a memory layout as index settings per vector field;
- :mod:`~smec_vdb.adapters.milvus_consistency`: consistency levels, load and flush before reads;
- :mod:`~smec_vdb.adapters.milvus_filters`: filters as Milvus expressions (a superset, narrowed here);
- :mod:`~smec_vdb.adapters.milvus_metadata`: metadata in a hidden companion collection.

What stays here is the Protocol's own behaviour:

- Vectors come back **raw**: unlike Qdrant, a cosine collection returns the stored vector as
  written, not normalised.
- Scores: COSINE/IP distances are similarities; L2 distances are *squared*, reported as
  ``-sqrt(d)`` so that higher is better and equal to Qdrant's negative Euclidean distance.
- Milvus has no nested prefetch: :meth:`MilvusBackend.search_stages` searches the coarsest
  resolution with the filter, returns the later resolutions' vectors with the hits (one call)
  and re-scores them in numpy (:mod:`smec_vdb.adapters.rerank`).
- Scrolling by primary key needs the query ``iterator`` flag: a plain limited query does not
  return the smallest keys in order.

Example::

    backend = MilvusBackend("./vectors.db")            # or MilvusBackend("http://host:19530", token)
    backend.create_collection("docs", CollectionSchema((Resolution("full", 4), Resolution("d2", 2))))
    backend.upsert("docs", Batch([1, 2], {"full": np.eye(2, 4), "d2": np.eye(2)}, [{"lang": "en"}, {"lang": "de"}]))
    hits = backend.search("docs", "full", np.array([1.0, 0, 0, 0]), limit=1)   # [Hit(id=1, score=1.0, ...)]
"""

from __future__ import annotations

import math
import os
from typing import Any, Mapping, Sequence

import numpy as np

from smec_vdb.adapters.milvus_connection import DEFAULT_MAX_VECTOR_FIELDS, MilvusConnection, location
from smec_vdb.adapters.milvus_consistency import Reads
from smec_vdb.adapters.milvus_filters import filter_expression, in_ids, literal
from smec_vdb.adapters.milvus_metadata import META_SUFFIX, MetadataStore, is_companion
from smec_vdb.adapters.milvus_columns import row_of
from smec_vdb.adapters.milvus_schema import (
    DEFAULT_PARTITION,
    ID_FIELD,
    METRICS,
    PAYLOAD_FIELD,
    SERVER_JSON_BYTES,
    CollectionFields,
    build_fields,
    check_holdable,
    check_id_range,
    create_all_or_nothing,
    indexed_columns,
    read_fields,
)
from smec_vdb.adapters.milvus_version import MilvusCapabilities
from smec_vdb.adapters.rerank import Candidates, rescore
from smec_vdb.adapters.validation import (
    CheckedBatch,
    check_batch,
    check_filter,
    check_id,
    check_limit,
    check_query,
    check_stages,
)
from smec_vdb.backend import (
    Batch,
    ClosingContext,
    CollectionSchema,
    Distance,
    Filter,
    Hit,
    PayloadLimits,
    Point,
    PointId,
    SearchStage,
)
from smec_vdb.errors import CollectionExistsError, CollectionNotFoundError, ConfigError, DataError, public_url
from smec_vdb.filters import matches
from smec_vdb.layout import check_engine_support

MAX_QUERY_WINDOW = 16384  # Milvus caps limit (+offset) of one query/search at 16384
REQUEST_BYTES = 16 * 1024 * 1024  # vector bytes per upsert request, well under gRPC's 64 MiB


def _score(distance: Distance, raw: float) -> float:
    return -math.sqrt(max(raw, 0.0)) if distance == "euclid" else float(raw)


class MilvusBackend(ClosingContext):
    """The Backend Protocol over pymilvus ``MilvusClient``: a Milvus Lite file (``path``, e.g. ``x.db``)
    or a server (``url``); ``uri`` takes either, as pymilvus does."""

    supports_aliases = True

    def __init__(
        self, uri: str | None = None, token: str | None = None, *, url: str | None = None, path: str | None = None,
        max_vector_fields: int = DEFAULT_MAX_VECTOR_FIELDS, timeout: float | None = 30.0,
    ) -> None:
        self.uri = location(uri, url, path)
        self._conn = MilvusConnection(self.uri, token, max_vector_fields=max_vector_fields, timeout=timeout)
        self.target = self._conn.target
        self.location = os.path.abspath(self.uri.rstrip("/")) if self.target == "milvus-lite" else public_url(self.uri)
        self.capabilities: MilvusCapabilities = self._conn.capabilities
        #: vector fields one collection may have: the server's proxy.maxVectorFieldNum, 1 before Milvus 2.4
        self.max_vector_fields = self._conn.max_vector_fields
        self._client = self._conn.client
        self._reads = Reads(self._conn)
        self._metadata = MetadataStore(self._conn, self._reads, self.resolve_alias)
        self._fields: dict[str, CollectionFields] = {}
        self._closed = False

    # -- collections ----------------------------------------------------------------------
    def list_collections(self) -> list[str]:
        with self._conn.errors("list collections"):
            names = self._client.list_collections()
        return sorted(n for n in names if not is_companion(n))

    def exists(self, collection: str) -> bool:
        with self._conn.errors(f"check collection {collection!r}"):
            return bool(self._client.has_collection(collection))

    def create_collection(self, collection: str, schema: CollectionSchema) -> None:
        self._check_holdable(collection, schema)
        check_engine_support(self.target, schema.layout, schema.index.kind)
        if self.exists(collection):
            raise CollectionExistsError(f"{self.target}: collection {collection!r} exists already")
        fields, index_params, properties = build_fields(schema, self._conn)
        create_all_or_nothing(self._conn, self._reads, collection, fields, index_params, properties, schema.partitions)
        self._fields[collection] = CollectionFields(
            schema, pk=schema.primary.name if schema.primary is not None else ID_FIELD,
            columned=schema.primary is not None, typed_columns=self.capabilities.nullable_columns)

    def check_schema(self, schema: CollectionSchema) -> None:
        self._check_holdable("", schema)

    def check_points(self, schema: CollectionSchema, batch: Batch) -> None:
        self._checked(schema, batch)

    def _checked(self, schema: CollectionSchema, batch: Batch) -> CheckedBatch:
        """The validated batch, or what Milvus would refuse: an id beyond 64 bits, a point lacking a vector
        field, a payload over the server's JSON limit."""
        checked = check_batch(schema, batch)
        check_id_range(schema, checked.ids)
        for name, flags in checked.absent.items():
            raise DataError(f"point {checked.ids[flags.index(True)]!r} has no {name!r} vector: Milvus stores every "
                            "vector field on every row")
        named = set(schema.partitions)
        stray = next((p for p in checked.partitions or () if p is not None and p not in named), None)
        if stray is not None:
            raise DataError(f"partition {stray!r} is not one of the collection's {sorted(named)}")
        if schema.primary is not None:  # typed columns: each value must fit its column
            for point_id, payload in zip(checked.ids, checked.payloads):
                row_of(point_id, payload, schema.columns, schema.dynamic_field)
        limits = self.payload_limits(schema)
        for point_id, payload in zip(checked.ids, checked.payloads):
            if (problem := limits.problem(payload)) is not None:
                raise DataError(f"payload of id {point_id!r}: {problem}; {self.target} cannot store it")
        return checked

    def payload_limits(self, schema: CollectionSchema) -> PayloadLimits:
        """A server: the payload is one JSON field of at most 65,536 bytes; Milvus Lite: no limit of its own."""
        return PayloadLimits() if self.capabilities.release is None else PayloadLimits(max_json_bytes=SERVER_JSON_BYTES)

    def mapping_notes(self, schema: CollectionSchema) -> dict[str, str]:
        if schema.primary is not None:  # the source's own layout: key, columns, dynamic field, partitions
            return {"sharding": "not kept: the target's default shards"} if schema.sharding else {}
        notes = {"payload": f"one JSON field {PAYLOAD_FIELD!r} holds every payload key"}
        columns = indexed_columns(schema.payload_indexes) if self.capabilities.nullable_columns else {}
        others = sorted(k for k in schema.payload_indexes if k not in columns)
        if others:
            reason = ("no typed columns before Milvus 2.5 (no nullable fields)" if not self.capabilities.nullable_columns
                      else "no typed column for these types or keys")
            notes["payload_indexes"] = f"{others} recorded, not built: {reason}; filters read the JSON payload"
        if schema.sharding:
            notes["sharding"] = "not kept: the target's default shards"
        if schema.partitions:
            notes["partitions"] = "not kept: every point in the default partition"
        return notes

    def schema(self, collection: str) -> CollectionSchema:
        return self._fields_of(collection).schema

    def drop(self, collection: str) -> None:
        self._fields.pop(collection, None)
        for name in (collection, collection + META_SUFFIX):
            self._reads.forget(name)
            with self._conn.errors(f"drop collection {name!r}"):
                if not self._client.has_collection(name):
                    continue
                for alias in self._client.list_aliases(name).get("aliases", []):
                    self._client.drop_alias(alias)
                self._client.drop_collection(name)

    def count(self, collection: str) -> int:
        self._fields_of(collection)
        self._reads.ensure_loaded(collection)
        with self._conn.errors(f"count points of {collection!r}", collection):
            rows = self._client.query(collection, filter="", output_fields=["count(*)"],
                                      consistency_level=self._reads.barrier_level)
        return int(rows[0]["count(*)"])

    # -- points -----------------------------------------------------------------------------
    def upsert(self, collection: str, batch: Batch) -> None:
        fields = self._fields_of(collection)
        fields.writable(self.target, collection)
        checked = self._checked(fields.schema, batch)
        row_bytes = 4 * sum(r.dim for r in fields.schema.resolutions)
        step = max(1, REQUEST_BYTES // row_bytes)
        with self._conn.errors(f"upsert into {collection!r}", collection):
            for start in range(0, len(checked.ids), step):
                rows = fields.rows(checked, start, min(start + step, len(checked.ids)))
                if not fields.partitioned:
                    self._client.upsert(collection, rows)
                    continue
                # upsert into a partition deletes the key from every other one first (measured): a point
                # that moved between partitions in the source moves in the target too
                where = (checked.partitions or [None] * len(checked.ids))[start:start + len(rows)]
                for partition in dict.fromkeys(where):
                    self._client.upsert(collection, [r for r, p in zip(rows, where) if p == partition],
                                        partition_name=partition or DEFAULT_PARTITION)
        self._reads.written(collection)

    def delete(self, collection: str, ids: Sequence[PointId]) -> None:
        fields = self._fields_of(collection)
        fields.writable(self.target, collection)
        wanted = list(dict.fromkeys(check_id(fields.schema, i) for i in ids))
        with self._conn.errors(f"delete points of {collection!r}", collection):
            for start in range(0, len(wanted), MAX_QUERY_WINDOW):
                self._client.delete(collection, filter=in_ids(fields.pk, wanted[start : start + MAX_QUERY_WINDOW]))
        self._reads.written(collection)

    def scroll(
        self, collection: str, *, cursor: Any = None, limit: int = 1000, with_vectors: bool | Sequence[str] = True
    ) -> tuple[list[Point], Any]:
        """Points by ascending id after ``cursor`` (the last id of the previous page, JSON-serialisable).

        Each page is a query ``id > cursor`` with the iterator flag, which makes Milvus return the
        smallest matching primary keys in order (a plain limited query does not).
        """
        fields = self._fields_of(collection)
        limit = min(check_limit(limit), MAX_QUERY_WINDOW)
        expression = ""
        if cursor is not None:
            try:
                after = check_id(fields.schema, cursor)
            except DataError as e:
                raise DataError(f"scroll cursor must be the last id seen: {e}") from e
            expression = f"{fields.pk} > {literal(after)}"
        names = fields.names(with_vectors)
        self._reads.ready(collection)
        with self._conn.errors(f"scroll {collection!r}", collection):
            # pymilvus sends no consistency with the iterator flag: pass this client's last write
            # timestamp (Session) so that a scroll sees this client's own writes
            rows = self._client.query(collection, filter=expression, output_fields=fields.output_fields(with_vectors),
                                      limit=limit, iterator="True",
                                      guarantee_timestamp=self._reads.session_timestamp(collection))
        points = sorted((fields.point(row, names) for row in rows), key=lambda p: p.id)
        self._place(collection, fields, points)
        next_cursor = points[-1].id if len(points) == limit else None
        return points, next_cursor

    def _place(self, collection: str, fields: CollectionFields, points: list[Point]) -> None:
        """Set each point's partition: one id query per named partition (a row does not say its partition)."""
        if not fields.partitioned or not points:
            return
        by_id = {p.id: p for p in points}
        with self._conn.errors(f"read the partitions of {collection!r}", collection):
            for partition in fields.schema.partitions:
                for start in range(0, len(points), MAX_QUERY_WINDOW):
                    ids = [p.id for p in points[start:start + MAX_QUERY_WINDOW]]
                    for row in self._client.query(collection, filter=in_ids(fields.pk, ids), output_fields=[fields.pk],
                                                  partition_names=[partition], consistency_level=self._reads.read_level):
                        by_id[row[fields.pk]].partition = partition

    def retrieve(
        self, collection: str, ids: Sequence[PointId], *, with_vectors: bool | Sequence[str] = True
    ) -> list[Point]:
        fields = self._fields_of(collection)
        wanted = [check_id(fields.schema, i) for i in ids]
        if not wanted:
            return []
        output, names = fields.output_fields(with_vectors), fields.names(with_vectors)
        unique = list(dict.fromkeys(wanted))
        found: dict[PointId, Point] = {}
        self._reads.ready(collection)
        with self._conn.errors(f"retrieve points of {collection!r}", collection):
            for start in range(0, len(unique), MAX_QUERY_WINDOW):
                for row in self._client.query(collection, filter=in_ids(fields.pk, unique[start : start + MAX_QUERY_WINDOW]),
                                              output_fields=output, consistency_level=self._reads.read_level):
                    point = fields.point(row, names)
                    found[point.id] = point
        self._place(collection, fields, list(found.values()))
        return [found[i] for i in wanted if i in found]

    # -- search ------------------------------------------------------------------------------
    def search(
        self, collection: str, name: str, vector: np.ndarray, limit: int, *, filter: Filter | None = None,
        with_payload: bool = True,
    ) -> list[Hit]:
        fields = self._fields_of(collection)
        query = check_query(fields.schema, name, vector)
        rows = self._search_rows(collection, fields, name, query, check_limit(limit), filter, with_payload, [])
        distance = fields.schema.distance
        return [
            Hit(id=row[fields.pk], score=_score(distance, row["distance"]),
                payload=fields.payload(row["entity"]) if with_payload else None)
            for row in rows
        ]

    def search_stages(
        self, collection: str, stages: Sequence[SearchStage], *, filter: Filter | None = None,
        with_payload: bool = True,
    ) -> list[Hit]:
        """Coarse-to-fine: stage 0 in the engine (with the filter), later stages re-scored in numpy.

        The first search returns the later resolutions' vectors with its hits, so the whole
        search is one engine call (measured faster than a search followed by a get).
        """
        fields = self._fields_of(collection)
        checked = check_stages(fields.schema, stages)
        first, later = checked[0], checked[1:]
        if not later:
            return self.search(collection, first.name, first.vector, first.limit, filter=filter, with_payload=with_payload)
        names = list(dict.fromkeys(s.name for s in later))
        rows = self._search_rows(collection, fields, first.name, first.vector, first.limit, filter, with_payload, names)
        if not rows:
            return []
        candidates = Candidates(
            ids=[row[fields.pk] for row in rows],
            vectors={
                n: np.asarray([row["entity"][n] for row in rows], dtype=np.float32).reshape(len(rows), -1)
                for n in names
            },
            payloads=[fields.payload(row["entity"]) for row in rows] if with_payload else None,
        )
        return rescore(candidates, later, fields.schema.distance)

    def _search_rows(
        self, collection: str, fields: CollectionFields, name: str, query: np.ndarray, limit: int,
        filter: Filter | None, with_payload: bool, vector_names: list[str],
    ) -> list[dict[str, Any]]:
        """Search hits with the filter applied exactly: the engine's expression is a superset
        (:mod:`smec_vdb.adapters.milvus_filters`), narrowed here by :func:`smec_vdb.filters.matches`."""
        if limit > MAX_QUERY_WINDOW:
            raise ConfigError(f"Milvus returns at most {MAX_QUERY_WINDOW} hits per search, asked for {limit}")
        condition = check_filter(filter)
        expression = filter_expression(condition, fields.schema if fields.in_columns else None)
        params: dict[str, Any] = {"metric_type": METRICS[fields.schema.distance]}
        if fields.schema.index.kind == "hnsw":
            params["params"] = {"ef": max(fields.schema.index.ef_search, limit)}
        # Naming only the primary key keeps Milvus Lite from returning every field (it does for []).
        output = fields.payload_fields if with_payload or condition is not None else [fields.pk]
        output += vector_names
        self._reads.ready(collection)
        window = limit
        while True:  # widen the window until the exact filter keeps ``limit`` rows or the engine runs out
            with self._conn.errors(f"search {collection!r} on {name!r}", collection):
                result = self._client.search(
                    collection, data=[query], anns_field=name, limit=window, filter=expression,
                    output_fields=output, search_params=params, consistency_level=self._reads.read_level,
                )
            rows = list(result[0]) if result else []
            kept = rows if condition is None else [r for r in rows if matches(condition, fields.payload(r["entity"]))]
            if len(kept) >= limit or len(rows) < window or window >= MAX_QUERY_WINDOW:
                return kept[:limit]
            window = min(4 * window, MAX_QUERY_WINDOW)

    # -- metadata, aliases --------------------------------------------------------------------
    def set_metadata(self, collection: str, key: str, value: Mapping[str, Any] | None) -> None:
        self._metadata.set(collection, key, value)

    def get_metadata(self, collection: str, key: str) -> dict[str, Any] | None:
        return self._metadata.get(collection, key)

    def create_alias(self, alias: str, collection: str) -> None:
        if not self.exists(collection):
            raise CollectionNotFoundError(f"{self.target}: collection {collection!r} does not exist")
        current = self.resolve_alias(alias)
        with self._conn.errors(f"point alias {alias!r} at {collection!r}"):
            if current is None:
                self._client.create_alias(collection, alias)
            elif current != collection:
                self._client.alter_alias(collection, alias)
        self._fields.pop(alias, None)
        self._reads.unload(alias)

    def resolve_alias(self, alias: str) -> str | None:
        with self._conn.errors(f"resolve alias {alias!r}"):
            if alias not in self._client.list_aliases().get("aliases", []):
                return None
            return self._client.describe_alias(alias)["collection_name"]

    def aliases(self, collection: str) -> list[str]:
        with self._conn.errors(f"list the aliases of {collection!r}"):
            return sorted(self._client.list_aliases(collection).get("aliases", []))

    def delete_alias(self, alias: str) -> None:
        """Remove ``alias`` (a no-op if it does not exist); the collection stays."""
        if self.resolve_alias(alias) is None:
            return
        with self._conn.errors(f"delete alias {alias!r}"):
            self._client.drop_alias(alias)
        self._fields.pop(alias, None)
        self._reads.unload(alias)

    def close(self) -> None:
        """Flush what this client wrote (so a reopened Milvus Lite store searches fast) and disconnect;
        the last client of a Milvus Lite path also stops its in-process server, freeing the path
        for other processes. Closing twice is a no-op."""
        if self._closed:
            return
        self._closed = True
        try:
            self._reads.flush_pending()
        finally:
            self._conn.close()

    # -- internals ----------------------------------------------------------------------------
    def _check_holdable(self, collection: str, schema: CollectionSchema) -> None:
        if is_companion(collection):
            raise ConfigError(f"collection names ending in {META_SUFFIX!r} are reserved, found {collection!r}")
        check_holdable(schema, self._conn)

    def _fields_of(self, collection: str) -> CollectionFields:
        """The collection's fields, read from the engine once per client."""
        fields = self._fields.get(collection)
        if fields is None:
            fields = self._fields[collection] = read_fields(self._conn, collection)
        return fields
