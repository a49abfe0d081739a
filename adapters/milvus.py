"""Milvus adapter: a multi-resolution collection in Milvus Lite (``x.db``) or a Milvus server.

Layout (issue 3): one FLOAT_VECTOR field per resolution (needs Milvus >= 2.4), primary key
``id`` (INT64 or VARCHAR), the payload in one JSON field ``payload``. Index per vector field:
FLAT for ``flat``, HNSW (M, efConstruction; ``ef`` at search time) for ``hnsw``; metric COSINE,
IP or L2. What Milvus cannot report back (payload indexes, ``ef_search``) is kept in a
collection property ``smec.schema``. Metadata (compressor manifest, migration checkpoints) lives
in a hidden companion collection ``<name>__smec_meta`` (VARCHAR key, JSON value, a 2-d dummy
vector because Milvus requires one), left out of :meth:`list_collections` and dropped with it.

Engine facts this module relies on (measured, see ENGINES.md):

- Vectors come back **raw**: unlike Qdrant, a cosine collection returns the stored vector as
  written, not normalised.
- Scores: COSINE/IP distances are similarities; L2 distances are *squared*, reported as
  ``-sqrt(d)`` so that higher is better and equal to Qdrant's negative Euclidean distance.
- Milvus has no nested prefetch: :meth:`MilvusBackend.search_stages` searches the coarsest
  resolution with the filter, returns the later resolutions' vectors with the hits (one call)
  and re-scores them in numpy (:mod:`smec_vdb.adapters.rerank`).
- Filtering inside the JSON field is slow in Milvus Lite (131 ms against 9 ms on a typed column,
  20k rows, measured) and Lite cannot index JSON. So each ``payload_indexes`` key that is an
  identifier also gets a nullable typed column ``payload_<key>`` (VARCHAR, INT64, DOUBLE, BOOL;
  INVERTED-indexed on a server; nullable columns need Milvus >= 2.5, so before 2.5 there are no
  typed columns), holding the payload value when it has the declared type and null otherwise.
  Keys that are not identifiers get no column (a no-op). Filters read the JSON payload, not these
  columns: a column cannot tell an array from a missing value, and :mod:`smec_vdb.filters` matches
  array elements.
- Milvus's JSON comparison conflates booleans and numbers (``true == 1``) and is null-valued on a
  missing key, so :func:`filter_expression` is a superset that the exact check narrows.
- Milvus Lite searches rows not yet flushed by a slow path (20k rows: 1.6 s per query, 45 ms
  once flushed): the first read after this client's writes flushes the collection, and so does
  :meth:`MilvusBackend.close`.
- Scrolling by primary key needs the query ``iterator`` flag: a plain limited query does not
  return the smallest keys in order.
- A server allows at most ``proxy.maxVectorFieldNum`` (default 4) vector fields per collection, and
  before Milvus 2.4 only one (:mod:`smec_vdb.adapters.milvus_version`, read at connect): there a
  single-vector collection is a migration source or a single-resolution target, and a schema with
  more vector fields is refused by :meth:`MilvusBackend.check_schema` (so before any training).
- Consistency: reads are ``Session`` (this client sees its own writes; otherwise as cheap as
  Bounded); :meth:`MilvusBackend.count` (the barrier before verification) and
  :meth:`MilvusBackend.get_metadata` (a checkpoint another process wrote) are ``Strong``. Strong on
  every read cost 379 ms per search against 3 ms on the 2.3.5 server (measured). A foreign
  collection's scroll follows its own default (quick setup: Bounded, a few seconds stale).
- Creating a collection (and the metadata companion) is all-or-nothing: create, index and load,
  else the half-made collection is dropped.
- After (re)opening, a collection must be loaded before search/get/query.
- One process per Milvus Lite path; its in-process server outlives ``MilvusClient.close()``, so
  the last :meth:`MilvusBackend.close` of a path stops it.

Example::

    backend = MilvusBackend("./vectors.db")            # or MilvusBackend("http://host:19530", token)
    backend.create_collection("docs", CollectionSchema((Resolution("full", 4), Resolution("d2", 2))))
    backend.upsert("docs", Batch([1, 2], {"full": np.eye(2, 4), "d2": np.eye(2)}, [{"lang": "en"}, {"lang": "de"}]))
    hits = backend.search("docs", "full", np.array([1.0, 0, 0, 0]), limit=1)   # [Hit(id=1, score=1.0, ...)]
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence
from urllib.parse import urlparse

import numpy as np

from smec_vdb.adapters.errors import is_retriable
from smec_vdb.backend import (
    Batch,
    CollectionSchema,
    Distance,
    Filter,
    Hit,
    IndexParams,
    PayloadLimits,
    PayloadType,
    Point,
    PointId,
    Resolution,
    SearchStage,
    SparseVector,
)
from smec_vdb.adapters.milvus_layout import field_index
from smec_vdb.adapters.milvus_version import LITE, MilvusCapabilities, capabilities
from smec_vdb.adapters.rerank import Candidates, rescore
from smec_vdb.filters import And, AnyOf, Condition, Not, Or, matches
from smec_vdb.adapters.validation import (
    CheckedBatch,
    check_batch,
    check_filter,
    check_id,
    check_limit,
    check_metadata_key,
    check_metadata_value,
    check_query,
    check_stages,
)
from smec_vdb.layout import Layout, check_engine_support, placements
from smec_vdb.errors import (
    BackendError,
    CollectionExistsError,
    CollectionNotFoundError,
    ConfigError,
    DataError,
    MissingDependencyError,
    SmecError,
    UnsupportedServerError,
)
from smec_vdb.engines import engine

ID_FIELD = "id"
PAYLOAD_FIELD = "payload"
META_SUFFIX = "__smec_meta"
META_KEY_FIELD, META_VALUE_FIELD, META_VECTOR_FIELD = "key", "value", "dummy"
SCHEMA_PROPERTY = "smec.schema"
DEFAULT_MAX_VECTOR_FIELDS = 4  # Milvus proxy.maxVectorFieldNum
MAX_VARCHAR = 65535
MAX_QUERY_WINDOW = 16384  # Milvus caps limit (+offset) of one query/search at 16384
REQUEST_BYTES = 16 * 1024 * 1024  # vector bytes per upsert request, well under gRPC's 64 MiB
INT64_MAX = 2**63 - 1

METRICS: dict[str, str] = {"cosine": "COSINE", "dot": "IP", "euclid": "L2"}
DISTANCES: dict[str, Distance] = {v: k for k, v in METRICS.items()}  # type: ignore[misc]
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,199}")
# Milvus Lite serves each path from one in-process server that outlives MilvusClient.close(); the
# adapter counts its users per path and stops it after the last close, releasing the path's lock.
_LITE_USERS: dict[str, int] = {}
_LITE_USERS_LOCK = threading.Lock()
#: reads see this client's own writes (pymilvus keeps each collection's last write timestamp) and are
#: otherwise as cheap as Bounded: 7 ms per search against 201 ms Strong on the 2.3.5 server (measured)
READ_CONSISTENCY = "Session"
#: count() and get_metadata() wait for every write acknowledged before them, whoever made it: the
#: barrier verification's count and a resumed run's checkpoint rely on (~0.3 s a call on the 2.3.5 server)
BARRIER_CONSISTENCY = "Strong"
RETRIABLE_HINTS = ("fail connecting", "unavailable", "deadline exceeded", "timeout", "timed out", "connection refused")


def _pymilvus():
    # gRPC's C core logs transport chatter (e.g. Milvus Lite's "too_many_pings" GOAWAY) straight to
    # stderr; every real failure still reaches us as an exception, so keep the terminal clean.
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    try:
        import pymilvus
    except ImportError as e:  # the [milvus] extra is not installed
        raise MissingDependencyError(f"the milvus backend needs pymilvus: {engine('milvus').install_hint}") from e
    return pymilvus


def target_of(uri: str) -> str:
    """``milvus-server`` for an http(s)/tcp URL, ``milvus-lite`` for a local path ending in ``.db``."""
    scheme = urlparse(uri).scheme.lower()
    if scheme in ("http", "https", "tcp"):
        return "milvus-server"
    if not scheme or len(scheme) == 1:  # no scheme, or a Windows drive letter
        if uri.rstrip("/").endswith(".db"):
            return "milvus-lite"
        raise ConfigError(f"a Milvus Lite path must end in '.db', found {uri!r}")
    raise ConfigError(f"Milvus URI must be http(s)://host:port, tcp://host:port or a path ending in '.db', found {uri!r}")


def literal(value: PointId | float | bool) -> str:
    """A Milvus expression literal: ``true``/``false``, numbers as is, strings double-quoted and escaped."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    return json.dumps(str(value), ensure_ascii=False)


#: payload index types a typed column holds (others, e.g. Qdrant's text or geo, get none: filters read the JSON)
COLUMN_KINDS = ("keyword", "integer", "float", "bool")
#: a Milvus server refuses a JSON value longer than this (``length (66687) of json field (value) exceeds
#: max length (65536)``, measured on 2.3.5); Milvus Lite has no such limit
SERVER_JSON_BYTES = 65536


def indexed_columns(payload_indexes: Mapping[str, PayloadType]) -> dict[str, tuple[str, PayloadType]]:
    """Payload key -> (typed column name, type) for the ``payload_indexes`` keys that are identifiers."""
    return {key: (f"{PAYLOAD_FIELD}_{key}", kind) for key, kind in payload_indexes.items()
            if IDENTIFIER.fullmatch(key) and kind in COLUMN_KINDS}


def fits(kind: PayloadType, value: Any) -> bool:
    """Whether ``value`` can live in a typed column of payload type ``kind`` (bools are not numbers)."""
    if kind == "keyword":
        return isinstance(value, str)
    if kind == "bool":
        return isinstance(value, bool)
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return False
    if kind == "integer":
        return isinstance(value, (int, np.integer)) and bool(-INT64_MAX - 1 <= value <= INT64_MAX)
    return math.isfinite(value)


def column_value(kind: PayloadType, value: Any) -> Any:
    """The typed column's cell for a payload value: the value if it fits ``kind``, else null."""
    if not fits(kind, value):
        return None
    return float(value) if kind == "float" else value


def filter_expression(condition: Condition | None) -> str:
    """A Milvus boolean expression that every point matching ``condition`` satisfies ("" = no constraint).

    Milvus's own JSON comparison conflates booleans and numbers (``true == 1``) and is null-valued on
    a missing key (so ``not`` would drop it), so the expression is a *superset*: equality is
    ``== v or json_contains(.., v)`` (arrays match an element), a range also lets every array
    through (``json_contains_all(.., [])`` holds exactly for arrays), and a ``$not`` constrains nothing; :meth:`MilvusBackend._search_rows` then keeps the rows that
    :func:`smec_vdb.filters.matches` accepts. Dotted keys are nested JSON paths.
    """
    return _superset(condition) or ""


def _superset(c: Condition | None) -> str | None:
    if c is None or isinstance(c, Not):
        return None
    if isinstance(c, (And, Or)):
        parts = [_superset(p) for p in c.parts]
        if isinstance(c, And):
            kept = [p for p in parts if p is not None]
            return " and ".join(f"({p})" for p in kept) if kept else None
        return None if any(p is None for p in parts) else " or ".join(f"({p})" for p in parts)
    field = PAYLOAD_FIELD + "".join(f"[{literal(key)}]" for key in c.path)
    if isinstance(c, AnyOf):
        return " or ".join(f"{field} == {literal(v)} or json_contains({field}, {literal(v)})" for v in c.values)
    bounds = [(">", c.gt), (">=", c.gte), ("<", c.lt), ("<=", c.lte)]
    scalar = " and ".join(f"{field} {op} {literal(float(v))}" for op, v in bounds if v is not None)
    return f"({scalar}) or json_contains_all({field}, [])"


def _score(distance: Distance, raw: float) -> float:
    return -math.sqrt(max(raw, 0.0)) if distance == "euclid" else float(raw)


@dataclass(frozen=True)
class _Layout:
    """What this adapter needs to know about a collection, read once from the engine.

    A collection smec-vdb created keeps its payload in the JSON field ``payload``; a *foreign* one
    (e.g. made by ``MilvusClient.create_collection(name, dimension=...)``) is read as it is: its
    primary key ``pk`` under any name, and as payload its scalar fields plus, when dynamic fields
    are enabled, every dynamic key (``$meta``), at top level as pymilvus returns them.
    """

    schema: CollectionSchema
    pk: str = ID_FIELD
    foreign: bool = False
    scalars: tuple[str, ...] = ()
    dynamic: bool = False
    #: whether the ``payload_indexes`` keys have typed columns (none before Milvus 2.5: no nullable fields)
    typed_columns: bool = True

    @property
    def columns(self) -> dict[str, tuple[str, PayloadType]]:
        return indexed_columns(self.schema.payload_indexes) if self.typed_columns else {}

    @property
    def vector_names(self) -> list[str]:
        return [r.name for r in self.schema.resolutions]

    def names(self, with_vectors: bool | Sequence[str]) -> list[str]:
        if with_vectors is True:
            return self.vector_names + list(self.schema.sparse)
        if with_vectors is False:
            return []
        return [name if name in self.schema.sparse else self.schema.resolution(name).name for name in with_vectors]

    def output_fields(self, with_vectors: bool | Sequence[str]) -> list[str]:
        """Fields to ask for: the key, the payload's fields, then the vectors wanted."""
        payload = [*self.scalars, *(["$meta"] if self.dynamic else [])] if self.foreign else [PAYLOAD_FIELD]
        return [self.pk, *payload, *self.names(with_vectors)]

    def point(self, row: Mapping[str, Any], vector_names: Sequence[str]) -> Point:
        vectors = set(self.vector_names) | set(self.schema.sparse)
        if self.foreign:
            payload = {k: v for k, v in row.items() if k != self.pk and k not in vectors and k != "$meta"}
        else:
            payload = dict(row.get(PAYLOAD_FIELD) or {})
        dense = {n: np.asarray(row[n], dtype=np.float32) for n in vector_names if n not in self.schema.sparse}
        sparse = {n: SparseVector.of(list(row[n]), list(row[n].values())) for n in vector_names
                  if n in self.schema.sparse and row.get(n)}
        return Point(id=row[self.pk], vectors=dense, payload=payload, sparse=sparse)

    def writable(self, target: str, collection: str) -> None:
        if self.foreign:
            raise ConfigError(
                f"{target}: collection {collection!r} was not created by smec-vdb; it is only read (migrate it)"
            )


class MilvusBackend:
    """The Backend Protocol over pymilvus ``MilvusClient`` (Milvus Lite path or server URL)."""

    def __init__(
        self, uri: str, token: str | None = None, *, max_vector_fields: int = DEFAULT_MAX_VECTOR_FIELDS,
        timeout: float | None = 30.0,
    ) -> None:
        self.target = target_of(uri)
        self.supports_aliases = True
        self.uri = uri
        self._layouts: dict[str, _Layout] = {}
        self._loaded: set[str] = set()
        self._unflushed: set[str] = set()
        self._closed = False
        pymilvus = _pymilvus()
        if self.target == "milvus-lite":
            self._lite_path = os.path.abspath(uri.rstrip("/"))
            os.makedirs(os.path.dirname(self._lite_path), exist_ok=True)
        with self._engine_errors(f"connect to {self.target} at {uri!r}"):
            self._client = pymilvus.MilvusClient(uri=uri, token=token or "", timeout=timeout)
        if self.target == "milvus-lite":
            with _LITE_USERS_LOCK:
                _LITE_USERS[self._lite_path] = _LITE_USERS.get(self._lite_path, 0) + 1
        self.capabilities: MilvusCapabilities = LITE
        if self.target == "milvus-server":
            with self._engine_errors(f"read the server version of {uri!r}"):
                self.capabilities = capabilities(str(self._client.get_server_version()))
            if self.capabilities.release is None:  # Milvus Lite behind a TCP server
                self.target = "milvus-lite-server"
        #: vector fields one collection may have: the server's proxy.maxVectorFieldNum, 1 before Milvus 2.4
        self.max_vector_fields = max_vector_fields if self.capabilities.multi_vector else 1

    # -- error mapping ------------------------------------------------------------------
    @contextmanager
    def _engine_errors(self, action: str, collection: str | None = None) -> Iterator[None]:
        """Map pymilvus/gRPC exceptions into smec-vdb's hierarchy (``retriable`` where a retry can help)."""
        try:
            yield
        except SmecError:
            raise
        except Exception as e:  # noqa: BLE001 - every engine error must be mapped at this boundary
            raise self._mapped(e, action, collection) from e

    def _mapped(self, error: Exception, action: str, collection: str | None) -> SmecError:
        message = getattr(error, "message", None) or str(error)
        code = getattr(error, "code", None)
        lowered = message.lower()
        if collection is not None and (code == 100 or ("collection" in lowered and "not" in lowered and "exist" in lowered)):
            return CollectionNotFoundError(f"{self.target}: collection {collection!r} does not exist")
        if "multiple vector fields" in lowered:
            return BackendError(
                f"{self.target}: cannot {action}: this Milvus server holds one vector field per collection; "
                f"multi-resolution collections need Milvus >= 2.4 ({message})"
            )
        if self.target == "milvus-lite" and ("another process" in lowered or "open local milvus failed" in lowered):
            return BackendError(
                f"{self.target}: cannot {action}: {message} (Milvus Lite allows one process per path: is another "
                "process using it? Close it or use another path)"
            )
        # MilvusException.retriable is the server's own verdict; code 2 is pymilvus's "cannot connect".
        retriable = (
            bool(getattr(error, "retriable", False)) or is_retriable(error) or code == 2
            or isinstance(error, _pymilvus().exceptions.MilvusUnavailableException)
            or any(hint in lowered for hint in RETRIABLE_HINTS)
        )
        return BackendError(f"{self.target}: cannot {action}: {message}", retriable=retriable)

    # -- collections ----------------------------------------------------------------------
    def list_collections(self) -> list[str]:
        with self._engine_errors("list collections"):
            names = self._client.list_collections()
        return sorted(n for n in names if not n.endswith(META_SUFFIX))

    def exists(self, collection: str) -> bool:
        with self._engine_errors(f"check collection {collection!r}"):
            return bool(self._client.has_collection(collection))

    def create_collection(self, collection: str, schema: CollectionSchema) -> None:
        self._check_layout(collection, schema)
        check_engine_support(self.target, schema.layout, schema.index.kind)
        if self.exists(collection):
            raise CollectionExistsError(f"{self.target}: collection {collection!r} exists already")
        pymilvus = _pymilvus()
        DataType = pymilvus.DataType
        fields = pymilvus.MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        if schema.id_type == "int":
            fields.add_field(ID_FIELD, DataType.INT64, is_primary=True)
        else:
            fields.add_field(ID_FIELD, DataType.VARCHAR, is_primary=True, max_length=MAX_VARCHAR)
        for r in schema.resolutions:
            fields.add_field(r.name, DataType.FLOAT_VECTOR, dim=r.dim)
        for name in schema.sparse:
            fields.add_field(name, DataType.SPARSE_FLOAT_VECTOR)
        fields.add_field(PAYLOAD_FIELD, DataType.JSON)
        column_types = {"keyword": DataType.VARCHAR, "integer": DataType.INT64, "float": DataType.DOUBLE, "bool": DataType.BOOL}
        # Before Milvus 2.5 a column cannot be null (nor INVERTED-indexed): no typed columns there, the
        # filters read the JSON payload anyway (a non-null sentinel could not tell "missing" from a value).
        columns = indexed_columns(schema.payload_indexes) if self.capabilities.nullable_columns else {}
        for column, kind in columns.values():
            extra = {"max_length": MAX_VARCHAR} if kind == "keyword" else {}
            fields.add_field(column, column_types[kind], nullable=True, **extra)
        index_params = self._client.prepare_index_params()
        for name in schema.sparse:
            index_params.add_index(name, index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
        placed = placements(schema)  # layout: HNSW / HNSW_SQ / FLAT (+ mmap) per resolution
        for r in schema.resolutions:
            index_type, params = field_index(placed[r.name], schema.index)
            index_params.add_index(r.name, index_type=index_type, metric_type=METRICS[schema.distance_of(r.name)],
                                   params=params)
        # Milvus Lite filters typed columns fast without an index; a server gets an INVERTED index.
        if self.target != "milvus-lite":
            for column, _ in columns.values():
                index_params.add_index(column, index_type="INVERTED")
        self._create_all_or_nothing(collection, fields, index_params, {SCHEMA_PROPERTY: json.dumps(_schema_extras(schema))})
        self._layouts[collection] = _Layout(schema, typed_columns=self.capabilities.nullable_columns)

    def check_schema(self, schema: CollectionSchema) -> None:
        self._check_layout("", schema)

    def check_points(self, schema: CollectionSchema, batch: Batch) -> None:
        self._checked(schema, batch)

    def _checked(self, schema: CollectionSchema, batch: Batch) -> CheckedBatch:
        """The validated batch, or what Milvus would refuse: an id beyond 64 bits, a point lacking a vector
        field, a payload over the server's JSON limit."""
        checked = check_batch(schema, batch)
        _check_id_range(schema, checked.ids)
        for name, flags in checked.absent.items():
            raise DataError(f"point {checked.ids[flags.index(True)]!r} has no {name!r} vector: Milvus stores every "
                            "vector field on every row")
        limits = self.payload_limits(schema)
        for point_id, payload in zip(checked.ids, checked.payloads):
            if (problem := limits.problem(payload)) is not None:
                raise DataError(f"payload of id {point_id!r}: {problem}; {self.target} cannot store it")
        return checked

    def payload_limits(self, schema: CollectionSchema) -> PayloadLimits:
        """A server: the payload is one JSON field of at most 65,536 bytes; Milvus Lite: no limit of its own."""
        return PayloadLimits() if self.capabilities.release is None else PayloadLimits(max_json_bytes=SERVER_JSON_BYTES)

    def mapping_notes(self, schema: CollectionSchema) -> dict[str, str]:
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
        return self._layout(collection).schema

    def drop(self, collection: str) -> None:
        self._layouts.pop(collection, None)
        for name in (collection, collection + META_SUFFIX):
            self._loaded.discard(name)
            self._unflushed.discard(name)
            with self._engine_errors(f"drop collection {name!r}"):
                if not self._client.has_collection(name):
                    continue
                for alias in self._client.list_aliases(name).get("aliases", []):
                    self._client.drop_alias(alias)
                self._client.drop_collection(name)

    def count(self, collection: str) -> int:
        self._layout(collection)
        self._ensure_loaded(collection)
        with self._engine_errors(f"count points of {collection!r}", collection):
            rows = self._client.query(collection, filter="", output_fields=["count(*)"],
                                      consistency_level=BARRIER_CONSISTENCY)
        return int(rows[0]["count(*)"])

    # -- points -----------------------------------------------------------------------------
    def upsert(self, collection: str, batch: Batch) -> None:
        layout = self._layout(collection)
        layout.writable(self.target, collection)
        checked = self._checked(layout.schema, batch)
        names = layout.vector_names
        columns = list(layout.columns.items())
        row_bytes = 4 * sum(r.dim for r in layout.schema.resolutions)
        step = max(1, REQUEST_BYTES // row_bytes)
        with self._engine_errors(f"upsert into {collection!r}", collection):
            for start in range(0, len(checked.ids), step):
                stop = min(start + step, len(checked.ids))
                vectors = {name: checked.vectors[name][start:stop] for name in names}
                rows = [
                    {ID_FIELD: checked.ids[i], PAYLOAD_FIELD: checked.payloads[i],
                     **{name: vectors[name][i - start] for name in names},
                     **{name: (entry.as_dict() if (entry := entries[i]) is not None else {})
                        for name, entries in checked.sparse.items()},
                     **{column: column_value(kind, checked.payloads[i].get(key)) for key, (column, kind) in columns}}
                    for i in range(start, stop)
                ]
                self._client.upsert(collection, rows)
        if self.capabilities.release is None:  # Milvus Lite, in-process or over TCP
            self._unflushed.add(collection)

    def delete(self, collection: str, ids: Sequence[PointId]) -> None:
        layout = self._layout(collection)
        layout.writable(self.target, collection)
        wanted = list(dict.fromkeys(check_id(layout.schema, i) for i in ids))
        with self._engine_errors(f"delete points of {collection!r}", collection):
            for start in range(0, len(wanted), MAX_QUERY_WINDOW):
                chunk = ", ".join(literal(i) for i in wanted[start : start + MAX_QUERY_WINDOW])
                self._client.delete(collection, filter=f"{ID_FIELD} in [{chunk}]")
        if self.capabilities.release is None:  # Milvus Lite, in-process or over TCP
            self._unflushed.add(collection)

    def scroll(
        self, collection: str, *, cursor: Any = None, limit: int = 1000, with_vectors: bool | Sequence[str] = True
    ) -> tuple[list[Point], Any]:
        """Points by ascending id after ``cursor`` (the last id of the previous page, JSON-serialisable).

        Each page is a query ``id > cursor`` with the iterator flag, which makes Milvus return the
        smallest matching primary keys in order (a plain limited query does not).
        """
        layout = self._layout(collection)
        limit = min(check_limit(limit), MAX_QUERY_WINDOW)
        expression = ""
        if cursor is not None:
            try:
                after = check_id(layout.schema, cursor)
            except DataError as e:
                raise DataError(f"scroll cursor must be the last id seen: {e}") from e
            expression = f"{layout.pk} > {literal(after)}"
        names = layout.names(with_vectors)
        self._ready_to_read(collection)
        with self._engine_errors(f"scroll {collection!r}", collection):
            # pymilvus sends no consistency with the iterator flag: pass this client's last write
            # timestamp (Session) so that a scroll sees this client's own writes
            rows = self._client.query(collection, filter=expression, output_fields=layout.output_fields(with_vectors),
                                      limit=limit, iterator="True", guarantee_timestamp=self._session_timestamp(collection))
        points = sorted((layout.point(row, names) for row in rows), key=lambda p: p.id)
        next_cursor = points[-1].id if len(points) == limit else None
        return points, next_cursor

    def retrieve(
        self, collection: str, ids: Sequence[PointId], *, with_vectors: bool | Sequence[str] = True
    ) -> list[Point]:
        layout = self._layout(collection)
        wanted = [check_id(layout.schema, i) for i in ids]
        if not wanted:
            return []
        output, names = layout.output_fields(with_vectors), layout.names(with_vectors)
        unique = list(dict.fromkeys(wanted))
        found: dict[PointId, Point] = {}
        self._ready_to_read(collection)
        with self._engine_errors(f"retrieve points of {collection!r}", collection):
            for start in range(0, len(unique), MAX_QUERY_WINDOW):
                # Our own ``id in [...]`` with escaped literals: pymilvus's get() quotes strings in a
                # way Milvus Lite cannot parse (e.g. a backslash in an id).
                chunk = ", ".join(literal(i) for i in unique[start : start + MAX_QUERY_WINDOW])
                for row in self._client.query(collection, filter=f"{layout.pk} in [{chunk}]", output_fields=output,
                                              consistency_level=READ_CONSISTENCY):
                    point = layout.point(row, names)
                    found[point.id] = point
        return [found[i] for i in wanted if i in found]

    # -- search ------------------------------------------------------------------------------
    def search(
        self, collection: str, name: str, vector: np.ndarray, limit: int, *, filter: Filter | None = None,
        with_payload: bool = True,
    ) -> list[Hit]:
        layout = self._layout(collection)
        query = check_query(layout.schema, name, vector)
        rows = self._search_rows(collection, layout, name, query, check_limit(limit), filter, with_payload, [])
        distance = layout.schema.distance
        return [
            Hit(id=row["id"], score=_score(distance, row["distance"]),
                payload=(row["entity"].get(PAYLOAD_FIELD) or {}) if with_payload else None)
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
        layout = self._layout(collection)
        checked = check_stages(layout.schema, stages)
        first, later = checked[0], checked[1:]
        if not later:
            return self.search(collection, first.name, first.vector, first.limit, filter=filter, with_payload=with_payload)
        names = list(dict.fromkeys(s.name for s in later))
        rows = self._search_rows(collection, layout, first.name, first.vector, first.limit, filter, with_payload, names)
        if not rows:
            return []
        candidates = Candidates(
            ids=[row["id"] for row in rows],
            vectors={
                n: np.asarray([row["entity"][n] for row in rows], dtype=np.float32).reshape(len(rows), -1)
                for n in names
            },
            payloads=[row["entity"].get(PAYLOAD_FIELD) or {} for row in rows] if with_payload else None,
        )
        return rescore(candidates, later, layout.schema.distance)

    def _search_rows(
        self, collection: str, layout: _Layout, name: str, query: np.ndarray, limit: int, filter: Filter | None,
        with_payload: bool, vector_names: list[str],
    ) -> list[dict[str, Any]]:
        if limit > MAX_QUERY_WINDOW:
            raise ConfigError(f"Milvus returns at most {MAX_QUERY_WINDOW} hits per search, asked for {limit}")
        condition = check_filter(filter)
        expression = filter_expression(condition)
        params: dict[str, Any] = {"metric_type": METRICS[layout.schema.distance]}
        if layout.schema.index.kind == "hnsw":
            params["params"] = {"ef": max(layout.schema.index.ef_search, limit)}
        # Naming only the primary key keeps Milvus Lite from returning every field (it does for []).
        output = [PAYLOAD_FIELD] if with_payload or condition is not None else [ID_FIELD]
        output += vector_names
        self._ready_to_read(collection)
        window = limit
        while True:  # widen the window until the exact filter keeps ``limit`` rows or the engine runs out
            with self._engine_errors(f"search {collection!r} on {name!r}", collection):
                result = self._client.search(
                    collection, data=[query], anns_field=name, limit=window, filter=expression,
                    output_fields=output, search_params=params, consistency_level=READ_CONSISTENCY,
                )
            rows = list(result[0]) if result else []
            kept = rows if condition is None else [r for r in rows if matches(condition, r["entity"].get(PAYLOAD_FIELD))]
            if len(kept) >= limit or len(rows) < window or window >= MAX_QUERY_WINDOW:
                return kept[:limit]
            window = min(4 * window, MAX_QUERY_WINDOW)

    # -- metadata, aliases --------------------------------------------------------------------
    def set_metadata(self, collection: str, key: str, value: Mapping[str, Any] | None) -> None:
        key = check_metadata_key(key)
        value = check_metadata_value(value)
        if len(key.encode()) > MAX_VARCHAR:
            raise ConfigError(f"metadata key is longer than {MAX_VARCHAR} bytes")
        if not self.exists(collection):
            raise CollectionNotFoundError(f"{self.target}: collection {collection!r} does not exist")
        meta = self._collection_of(collection) + META_SUFFIX
        if value is None and not self.exists(meta):
            return
        self._ensure_meta(meta)
        with self._engine_errors(f"write metadata {key!r} of {collection!r}"):
            if value is None:
                self._client.delete(meta, ids=[key])
            else:
                self._client.upsert(meta, [{META_KEY_FIELD: key, META_VALUE_FIELD: value, META_VECTOR_FIELD: [0.0, 0.0]}])

    def get_metadata(self, collection: str, key: str) -> dict[str, Any] | None:
        key = check_metadata_key(key)
        meta = self._collection_of(collection) + META_SUFFIX
        if not self.exists(meta):
            if not self.exists(collection):
                raise CollectionNotFoundError(f"{self.target}: collection {collection!r} does not exist")
            return None
        self._ensure_loaded(meta)
        with self._engine_errors(f"read metadata {key!r} of {collection!r}"):
            # Strong: a checkpoint must be read as the last run left it, whichever process wrote it
            rows = self._client.get(meta, ids=[key], output_fields=[META_VALUE_FIELD],
                                    consistency_level=BARRIER_CONSISTENCY)
        return dict(rows[0][META_VALUE_FIELD]) if rows else None

    def create_alias(self, alias: str, collection: str) -> None:
        if not self.exists(collection):
            raise CollectionNotFoundError(f"{self.target}: collection {collection!r} does not exist")
        current = self.resolve_alias(alias)
        with self._engine_errors(f"point alias {alias!r} at {collection!r}"):
            if current is None:
                self._client.create_alias(collection, alias)
            elif current != collection:
                self._client.alter_alias(collection, alias)
        self._layouts.pop(alias, None)
        self._loaded.discard(alias)

    def _collection_of(self, name: str) -> str:
        """The collection ``name`` designates: an alias's target, else ``name`` itself (metadata follows aliases)."""
        return self.resolve_alias(name) or name

    def resolve_alias(self, alias: str) -> str | None:
        with self._engine_errors(f"resolve alias {alias!r}"):
            if alias not in self._client.list_aliases().get("aliases", []):
                return None
            return self._client.describe_alias(alias)["collection_name"]

    def aliases(self, collection: str) -> list[str]:
        with self._engine_errors(f"list the aliases of {collection!r}"):
            return sorted(self._client.list_aliases(collection).get("aliases", []))

    def delete_alias(self, alias: str) -> None:
        """Remove ``alias`` (a no-op if it does not exist); the collection stays."""
        if self.resolve_alias(alias) is None:
            return
        with self._engine_errors(f"delete alias {alias!r}"):
            self._client.drop_alias(alias)
        self._layouts.pop(alias, None)
        self._loaded.discard(alias)

    def close(self) -> None:
        """Flush what this client wrote (so a reopened Milvus Lite store searches fast) and disconnect;
        the last client of a Milvus Lite path also stops its in-process server, freeing the path
        for other processes. Closing twice is a no-op."""
        if self._closed:
            return
        self._closed = True
        try:
            with self._engine_errors("close the client"):
                for collection in sorted(self._unflushed):
                    if self._client.has_collection(collection):
                        self._client.flush(collection)
                self._unflushed.clear()
                self._client.close()
        finally:
            if self.target == "milvus-lite":
                self._release_lite_server()

    def _release_lite_server(self) -> None:
        with _LITE_USERS_LOCK:
            left = _LITE_USERS.get(self._lite_path, 1) - 1
            if left > 0:
                _LITE_USERS[self._lite_path] = left
                return
            _LITE_USERS.pop(self._lite_path, None)
            from milvus_lite.server_manager import server_manager_instance

            server_manager_instance.release_server(self._lite_path)

    # -- internals ----------------------------------------------------------------------------
    def _check_layout(self, collection: str, schema: CollectionSchema) -> None:
        if collection.endswith(META_SUFFIX):
            raise ConfigError(f"collection names ending in {META_SUFFIX!r} are reserved, found {collection!r}")
        if schema.id_type == "any":
            raise ConfigError(
                f"{self.target}: a Milvus primary key has one type (INT64 or VARCHAR), but the schema asks for "
                "integer and string ids in one collection"
            )
        fields = [r.name for r in schema.resolutions] + list(schema.sparse)
        if len(fields) > 1 and not self.capabilities.multi_vector:
            raise UnsupportedServerError(
                f"{self.target}: the server is {self.capabilities.describe()}, which holds one vector field per "
                f"collection, but the schema has {len(fields)} ({', '.join(fields)}): multi-resolution collections "
                "need Milvus >= 2.4; store one resolution (e.g. one dim without the full vector), or write the "
                "target to a Milvus >= 2.4 server or another engine"
            )
        if len(fields) > self.max_vector_fields:
            raise ConfigError(
                f"Milvus allows {self.max_vector_fields} vector fields per collection by default "
                f"(proxy.maxVectorFieldNum), the schema has {len(schema.resolutions)} resolutions; store fewer "
                "resolutions, or raise proxy.maxVectorFieldNum in the server's milvus.yaml and pass "
                "MilvusBackend(..., max_vector_fields=N)"
            )
        odd = [r.describe() for r in schema.resolutions if not r.plain]
        if odd:
            raise ConfigError(f"{self.target}: smec-vdb writes FLOAT_VECTOR fields only (one float32 vector per row), "
                              f"not {', '.join(odd)}")
        if any(r.distance == "manhattan" for r in schema.resolutions) or schema.distance == "manhattan":
            raise ConfigError(f"{self.target}: Milvus has no Manhattan (L1) metric for dense vectors")
        for name in [*(r.name for r in schema.resolutions), *schema.sparse]:
            if (not IDENTIFIER.fullmatch(name) or name in (ID_FIELD, PAYLOAD_FIELD)
                    or name.startswith(PAYLOAD_FIELD + "_")):
                raise ConfigError(
                    f"Milvus vector field names must start with a letter or '_', differ from {ID_FIELD!r} and "
                    f"not start with {PAYLOAD_FIELD!r} (reserved for payload columns), found {name!r}"
                )

    def _layout(self, collection: str) -> _Layout:
        layout = self._layouts.get(collection)
        if layout is None:
            with self._engine_errors(f"describe collection {collection!r}", collection):
                if not self._client.has_collection(collection):
                    raise CollectionNotFoundError(f"{self.target}: collection {collection!r} does not exist")
                described = self._client.describe_collection(collection)
                metrics = {
                    f["name"]: self._client.describe_index(collection, f["name"]).get("metric_type", "COSINE")
                    for f in described["fields"] if f["type"] == _pymilvus().DataType.FLOAT_VECTOR
                }
            layout = _layout_from_engine(described, metrics)
            self._layouts[collection] = layout
        return layout

    def _ensure_loaded(self, collection: str) -> None:
        """Load once per client: Milvus refuses search/get/query on a released (e.g. reopened) collection."""
        if collection in self._loaded:
            return
        with self._engine_errors(f"load collection {collection!r}", collection):
            self._client.load_collection(collection)
        self._loaded.add(collection)

    def _create_all_or_nothing(self, collection: str, fields: Any, index_params: Any,
                               properties: dict[str, str] | None) -> None:
        """Create ``collection``, its indexes and load it, or leave nothing behind: on any failure the
        half-made collection is dropped and the engine's error re-raised, mapped.

        The indexes are created without pymilvus's polling wait (>= 0.5 s per index, and Milvus Lite
        lacks the AllocTimestamp call it makes); a server builds them in the background.
        """
        try:
            with self._engine_errors(f"create collection {collection!r}"):
                self._client.create_collection(collection, schema=fields, consistency_level=READ_CONSISTENCY,
                                               **({"properties": properties} if properties else {}))
                self._client.create_index(collection, index_params, sync=False)
                self._client.load_collection(collection)
        except SmecError:
            try:
                if self._client.has_collection(collection):
                    self._client.drop_collection(collection)
            except Exception:  # noqa: BLE001 - the original error is the one to report
                pass
            raise
        self._loaded.add(collection)

    def _ready_to_read(self, collection: str) -> None:
        """Load, and on Milvus Lite flush this client's pending writes first.

        Milvus Lite searches unflushed rows (its MemTable) by a slow path: 20k rows took 1.6 s per
        query against 45 ms once flushed, while a flush costs about 20 ms + 0.15 ms per row (measured).
        So the first read after writes pays one flush; a server manages its segments itself.
        """
        self._ensure_loaded(collection)
        if collection in self._unflushed:
            with self._engine_errors(f"flush {collection!r}", collection):
                self._client.flush(collection)
            self._unflushed.discard(collection)

    def _session_timestamp(self, collection: str) -> int:
        """This client's last write timestamp on ``collection`` (0: none, read what is visible)."""
        from pymilvus.client import ts_utils

        if self.capabilities.release is None:  # Milvus Lite reads its writes at once
            return 0
        address = getattr(self._client._get_connection(), "server_address", "")
        return int(ts_utils.get_collection_ts(collection, address, "") or 0)

    def _ensure_meta(self, meta: str) -> None:
        if self.exists(meta):
            self._ensure_loaded(meta)
            return
        pymilvus = _pymilvus()
        DataType = pymilvus.DataType
        fields = pymilvus.MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        fields.add_field(META_KEY_FIELD, DataType.VARCHAR, is_primary=True, max_length=MAX_VARCHAR)
        fields.add_field(META_VALUE_FIELD, DataType.JSON)
        fields.add_field(META_VECTOR_FIELD, DataType.FLOAT_VECTOR, dim=2)
        index_params = self._client.prepare_index_params()
        index_params.add_index(META_VECTOR_FIELD, index_type="FLAT", metric_type="L2")
        self._create_all_or_nothing(meta, fields, index_params, None)


def _check_id_range(schema: CollectionSchema, ids: Sequence[PointId]) -> None:
    if schema.id_type == "int":
        too_big = next((i for i in ids if isinstance(i, int) and i > INT64_MAX), None)
        if too_big is not None:
            raise DataError(f"Milvus ids are signed 64-bit integers, found {too_big}")


def _schema_extras(schema: CollectionSchema) -> dict[str, Any]:
    """What Milvus cannot report back itself, kept in the ``smec.schema`` collection property."""
    return {
        "distance": schema.distance,
        "payload_indexes": dict(schema.payload_indexes),
        "index": {"kind": schema.index.kind, "m": schema.index.m, "ef_construct": schema.index.ef_construct,
                  "ef_search": schema.index.ef_search},
        **({"layout": schema.layout.to_json()} if schema.layout is not None else {}),
    }


def _layout_from_engine(described: Mapping[str, Any], metrics: Mapping[str, str]) -> _Layout:
    """The collection's layout: fields and key from Milvus, what Milvus cannot report from ``smec.schema``.

    A collection without ``smec.schema`` is foreign: any primary key (INT64 or VARCHAR, auto_id or
    not), its dense vector fields with their metrics, sparse vector fields, scalar fields and
    dynamic fields are read as they are.
    """
    DataType = _pymilvus().DataType
    name = described["collection_name"]
    fields = described["fields"]
    primary = next(f for f in fields if f.get("is_primary"))
    dense = [f for f in fields if f["type"] == DataType.FLOAT_VECTOR]
    sparse = tuple(f["name"] for f in fields if f["type"] == DataType.SPARSE_FLOAT_VECTOR)
    other_vectors = [f["name"] for f in fields if f["type"] in (DataType.BINARY_VECTOR, DataType.FLOAT16_VECTOR,
                                                                DataType.BFLOAT16_VECTOR, DataType.INT8_VECTOR)]
    if not dense:
        raise ConfigError(f"collection {name!r} has no FLOAT_VECTOR field to compress")
    if other_vectors:
        raise ConfigError(f"collection {name!r} has vector fields of types smec-vdb does not carry: {other_vectors}")
    id_type = "str" if primary["type"] == DataType.VARCHAR else "int"
    properties = described.get("properties") or {}
    if SCHEMA_PROPERTY not in properties:
        resolutions = tuple(Resolution(f["name"], int(f["params"]["dim"]), DISTANCES.get(metrics[f["name"]], "cosine"))
                            for f in dense)
        scalars = tuple(f["name"] for f in fields if f is not primary and f["name"] not in metrics
                        and f["name"] not in sparse)
        schema = CollectionSchema(resolutions=resolutions, distance=resolutions[0].distance or "cosine",
                                  id_type=id_type, sparse=sparse)  # type: ignore[arg-type]
        return _Layout(schema, pk=primary["name"], foreign=True, scalars=scalars,
                       dynamic=bool(described.get("enable_dynamic_field")))
    extras = json.loads(properties[SCHEMA_PROPERTY])
    index = extras.get("index", {})
    distance = extras.get("distance", "cosine")
    payload_indexes = dict(extras.get("payload_indexes", {}))
    field_names = {f["name"] for f in fields}
    typed_columns = all(column in field_names for column, _ in indexed_columns(payload_indexes).values())
    return _Layout(CollectionSchema(
        resolutions=tuple(Resolution(f["name"], int(f["params"]["dim"]),
                                     None if DISTANCES.get(metrics[f["name"]]) == distance else DISTANCES.get(metrics[f["name"]]))
                          for f in dense),
        distance=distance,
        id_type=id_type,  # type: ignore[arg-type]
        payload_indexes=payload_indexes,
        index=IndexParams(**index) if index else IndexParams(),
        layout=Layout.from_json(extras["layout"]) if extras.get("layout") else None,
        sparse=sparse,
    ), typed_columns=typed_columns)
