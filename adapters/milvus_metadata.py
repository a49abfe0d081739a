"""Collection metadata in Milvus (compressor record, migration checkpoints): a hidden companion collection.

Milvus has no per-collection key-value store that can be rewritten, so each collection's metadata
lives in ``<name>__smec_meta``: a VARCHAR key, a JSON value, and a 2-d dummy vector because Milvus
requires one. The companion is made on the first write, left out of
:meth:`~smec_vdb.adapters.milvus.MilvusBackend.list_collections` and dropped with its collection.
Metadata follows aliases (an alias's metadata is its collection's). Reads are ``Strong``
(:data:`~smec_vdb.adapters.milvus_consistency.BARRIER_CONSISTENCY`): a checkpoint must be read as
the last run left it, whichever process wrote it.

Example::

    store = MetadataStore(conn, reads, resolve_alias=backend.resolve_alias)
    store.set("docs", "checkpoint", {"cursor": 17})
    store.get("docs", "checkpoint")            # {"cursor": 17}
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from smec_vdb.adapters.milvus_connection import MilvusConnection
from smec_vdb.adapters.milvus_consistency import Reads
from smec_vdb.adapters.milvus_errors import pymilvus
from smec_vdb.adapters.milvus_schema import MAX_VARCHAR, create_all_or_nothing
from smec_vdb.adapters.validation import check_metadata_key, check_metadata_value
from smec_vdb.errors import CollectionNotFoundError, ConfigError

META_SUFFIX = "__smec_meta"
META_KEY_FIELD, META_VALUE_FIELD, META_VECTOR_FIELD = "key", "value", "dummy"


def is_companion(name: str) -> bool:
    """Whether ``name`` is a metadata companion (a name no user collection may take)."""
    return name.endswith(META_SUFFIX)


class MetadataStore:
    """Get and set JSON objects kept with a collection, in its companion collection."""

    def __init__(self, conn: MilvusConnection, reads: Reads, resolve_alias: Callable[[str], str | None]) -> None:
        self._conn = conn
        self._reads = reads
        self._resolve_alias = resolve_alias

    def companion(self, collection: str) -> str:
        """The companion of ``collection``, or of the collection it is an alias of."""
        return (self._resolve_alias(collection) or collection) + META_SUFFIX

    def set(self, collection: str, key: str, value: Mapping[str, Any] | None) -> None:
        key = check_metadata_key(key)
        value = check_metadata_value(value)
        if len(key.encode()) > MAX_VARCHAR:
            raise ConfigError(f"metadata key is longer than {MAX_VARCHAR} bytes")
        if not self._exists(collection):
            raise CollectionNotFoundError(f"{self._conn.target}: collection {collection!r} does not exist")
        meta = self.companion(collection)
        if value is None and not self._exists(meta):
            return
        self._ensure(meta)
        with self._conn.errors(f"write metadata {key!r} of {collection!r}"):
            if value is None:
                self._conn.client.delete(meta, ids=[key])
            else:
                self._conn.client.upsert(meta, [{META_KEY_FIELD: key, META_VALUE_FIELD: value,
                                                 META_VECTOR_FIELD: [0.0, 0.0]}])

    def get(self, collection: str, key: str) -> dict[str, Any] | None:
        key = check_metadata_key(key)
        meta = self.companion(collection)
        if not self._exists(meta):
            if not self._exists(collection):
                raise CollectionNotFoundError(f"{self._conn.target}: collection {collection!r} does not exist")
            return None
        self._reads.ensure_loaded(meta)
        with self._conn.errors(f"read metadata {key!r} of {collection!r}"):
            rows = self._conn.client.get(meta, ids=[key], output_fields=[META_VALUE_FIELD],
                                         consistency_level=self._reads.barrier_level)
        return dict(rows[0][META_VALUE_FIELD]) if rows else None

    def _exists(self, name: str) -> bool:
        with self._conn.errors(f"check collection {name!r}"):
            return bool(self._conn.client.has_collection(name))

    def _ensure(self, meta: str) -> None:
        if self._exists(meta):
            self._reads.ensure_loaded(meta)
            return
        DataType = pymilvus().DataType
        fields = pymilvus().MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        fields.add_field(META_KEY_FIELD, DataType.VARCHAR, is_primary=True, max_length=MAX_VARCHAR)
        fields.add_field(META_VALUE_FIELD, DataType.JSON)
        fields.add_field(META_VECTOR_FIELD, DataType.FLOAT_VECTOR, dim=2)
        index_params = self._conn.client.prepare_index_params()
        index_params.add_index(META_VECTOR_FIELD, index_type="FLAT", metric_type="L2")
        create_all_or_nothing(self._conn, self._reads, meta, fields, index_params, None)
