"""What a Milvus read sees: consistency levels, load-before-read, and Milvus Lite's flush-before-read.

- Reads are ``Session`` (:data:`READ_CONSISTENCY`: this client sees its own writes, and otherwise
  they are as cheap as Bounded: 7 ms per search against 201 ms Strong on the 2.3.5 server,
  measured). :meth:`~smec_vdb.adapters.milvus.MilvusBackend.count` (the barrier before verification)
  and metadata reads (a checkpoint another process wrote) are ``Strong``
  (:data:`BARRIER_CONSISTENCY`, ~0.3 s a call on the 2.3.5 server). A foreign collection's scroll
  follows its own default (quick setup: Bounded, a few seconds stale).
- After (re)opening, a collection must be loaded before search/get/query ("collection ... is in
  state 'released'"): :meth:`Reads.ensure_loaded`, once per client.
- Milvus Lite searches rows not yet flushed by a slow path (20k rows: 1.6 s per query against
  45 ms once flushed; a flush costs about 20 ms + 0.15 ms per row, measured): the first read after
  this client's writes flushes the collection (:meth:`Reads.ready`), and so does closing
  (:meth:`Reads.flush_pending`). A server manages its segments itself.

Example::

    reads = Reads(conn)
    reads.written("docs")        # after an upsert
    reads.ready("docs")          # load once; on Milvus Lite flush first
"""

from __future__ import annotations

from smec_vdb.adapters.milvus_connection import MilvusConnection

#: reads see this client's own writes (pymilvus keeps each collection's last write timestamp)
READ_CONSISTENCY = "Session"
#: count() and get_metadata() wait for every write acknowledged before them, whoever made it
BARRIER_CONSISTENCY = "Strong"


class Reads:
    """The collections this client has loaded and has written without flushing, and its consistency levels."""

    def __init__(self, conn: MilvusConnection) -> None:
        self._conn = conn
        self._loaded: set[str] = set()
        self._unflushed: set[str] = set()
        #: the levels of this client's reads and barriers (module defaults when it connected)
        self.read_level, self.barrier_level = READ_CONSISTENCY, BARRIER_CONSISTENCY

    def ensure_loaded(self, collection: str) -> None:
        """Load once per client: Milvus refuses search/get/query on a released (e.g. reopened) collection."""
        if collection in self._loaded:
            return
        with self._conn.errors(f"load collection {collection!r}", collection):
            self._conn.client.load_collection(collection)
        self._loaded.add(collection)

    def loaded(self, collection: str) -> None:
        """Record that ``collection`` was loaded (a create loads it)."""
        self._loaded.add(collection)

    def ready(self, collection: str) -> None:
        """Load, and on Milvus Lite flush this client's pending writes first."""
        self.ensure_loaded(collection)
        if collection in self._unflushed:
            with self._conn.errors(f"flush {collection!r}", collection):
                self._conn.client.flush(collection)
            self._unflushed.discard(collection)

    def written(self, collection: str) -> None:
        """Record a write: Milvus Lite (in-process or over TCP) then flushes before the next read."""
        if self._conn.capabilities.release is None:
            self._unflushed.add(collection)

    def forget(self, name: str) -> None:
        """``name`` was dropped."""
        self._loaded.discard(name)
        self._unflushed.discard(name)

    def unload(self, alias: str) -> None:
        """``alias`` now points elsewhere: load it again before the next read."""
        self._loaded.discard(alias)

    def flush_pending(self) -> None:
        """Flush every collection this client wrote and has not flushed (so a reopened Lite store searches fast)."""
        with self._conn.errors("flush before closing"):
            for collection in sorted(self._unflushed):
                if self._conn.client.has_collection(collection):
                    self._conn.client.flush(collection)
        self._unflushed.clear()

    def session_timestamp(self, collection: str) -> int:
        """This client's last write timestamp on ``collection`` (0: none, read what is visible)."""
        from pymilvus.client import ts_utils

        if self._conn.capabilities.release is None:  # Milvus Lite reads its writes at once
            return 0
        address = getattr(self._conn.client._get_connection(), "server_address", "")
        return int(ts_utils.get_collection_ts(collection, address, "") or 0)
