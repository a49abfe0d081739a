"""``smec_vdb.connect(location)``: one engine opened from one string, with its collections, creation and
migration in reach; a context manager that closes it.

The location grammar belongs to the engine records (:mod:`smec_vdb.connection`): ``qdrant-edge:///./smec_data``,
``qdrant:///path/to/dir``, ``qdrant://host:6333``, ``qdrant+https://host:6333``, ``milvus:///x.db``,
``milvus://host:19530``. A bare ``http://host:port`` could be Qdrant or Milvus: it is an error unless
``backend=`` says which. Without a location, ``connect()`` opens the embedded default store
(qdrant-edge at ``./smec_data``), or ``backend=``'s default (its url variable such as ``MILVUS_URI``).

Example::

    import smec_vdb
    with smec_vdb.connect("qdrant-edge:///./smec_data") as client:
        col = client.create("corpus", "models/corpus", dims=[64])   # a compressor or its directory
        col.upsert([1, 2], vectors, [{"lang": "en"}, {"lang": "de"}])
        hits = client.collection("corpus").search(vectors[0], k=10)
        report = client.migrate(source="docs", dim=64)              # MigrationOptions fields
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smec_vdb.backend import ClosingContext
from smec_vdb.connection import Connection
from smec_vdb.engines import DEFAULT_ENGINE
from smec_vdb.errors import ConfigError

if TYPE_CHECKING:
    from smec_vdb.backend import Backend
    from smec_vdb.collection import SmecCollection
    from smec_vdb.compress.base import Compressor
    from smec_vdb.migrate.options import MigrationOptions, ProgressCallback, StopCheck


def connect(location: str | None = None, *, backend: str | None = None, **options: Any) -> "Client":
    """Open the engine ``location`` names (grammar above); ``backend`` names the engine where the location
    does not (a bare ``http://`` url, or a path). ``options``: the engine's credential and server
    settings by keyword (e.g. ``api_key=``, ``timeout=`` for Qdrant, ``token=`` for Milvus), else read
    from the environment. ConfigError for an unknown or ambiguous location, conflicting arguments or an
    unknown engine (listing the known ones)."""
    if location is None:
        return Client(Connection.resolve(backend or DEFAULT_ENGINE, **options))
    return Client(Connection.parse(location, backend=backend, **options))


class Client(ClosingContext):
    """An open engine (``backend``, the Backend Protocol) and the library's entry points on it."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.backend: Backend = connection.open()

    def collection(self, name: str, compressor: "Compressor | str | Path | None" = None) -> "SmecCollection":
        """Open collection ``name`` with ``compressor`` (an object, or a saved compressor's directory), or,
        when None, with the compressor the collection records (which then follows alias swaps)."""
        from smec_vdb.collection import SmecCollection

        return SmecCollection.open(self.backend, name, compressor)

    def create(self, name: str, compressor: "Compressor | str | Path", **options: Any) -> "SmecCollection":
        """Create collection ``name`` for ``compressor`` (an object, or a saved compressor's directory, which
        the collection then records); ``options`` as :meth:`smec_vdb.collection.SmecCollection.create`
        (``dims``, ``keep_full``, ``payload_indexes``, ``index``, ``layout``, ``compressor_path`` …)."""
        from smec_vdb.collection import SmecCollection
        from smec_vdb.compress.artifact import load as load_compressor

        if isinstance(compressor, (str, Path)):
            if options.get("compressor_path") not in (None, compressor):
                raise ConfigError(f"compressor {str(compressor)!r} and compressor_path "
                                  f"{str(options['compressor_path'])!r} disagree: give one")
            options["compressor_path"] = compressor
            compressor = load_compressor(compressor)
        return SmecCollection.create(self.backend, name, compressor, **options)

    def migrate(self, options: "MigrationOptions | None" = None, /, *, into: "Client | str | None" = None,
                dry_run: bool = False, progress: "ProgressCallback | None" = None,
                should_stop: "StopCheck | None" = None, **fields: Any) -> dict[str, Any]:
        """Migrate a collection of this engine (:func:`smec_vdb.migrate.migrate`, or with ``dry_run`` the plan
        only) and return the report. ``options`` is a :class:`~smec_vdb.migrate.MigrationOptions`, or its
        fields are given as keywords (``source="docs", dim=64``), not both. ``into``: another engine for the
        target, a Client or a location (opened and closed here); by default this one."""
        from smec_vdb.migrate import MigrationOptions, migrate
        from smec_vdb.migrate.simulate import dry_run as simulate

        if options is not None and fields:
            raise ConfigError(f"give MigrationOptions or its fields as keywords, not both (found {sorted(fields)})")
        if into is not None and not isinstance(into, (Client, str)):
            raise ConfigError(f"into must be a Client or a location string, found {type(into).__name__}")
        opts = options if options is not None else MigrationOptions(**fields)
        with (connect(into) if isinstance(into, str) else nullcontext(into)) as target:
            target_backend = None if target is None else target.backend
            if dry_run:
                return simulate(self.backend, opts, target_backend=target_backend, progress=progress)
            return migrate(self.backend, opts, target_backend=target_backend, progress=progress,
                           should_stop=should_stop)

    def close(self) -> None:
        self.backend.close()

    def __repr__(self) -> str:
        return f"Client({self.connection!r})"

