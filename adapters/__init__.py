"""Vector-engine backends behind one Protocol, picked by :func:`open_backend`.

Every engine is a record in :mod:`smec_vdb.engines` (built-in: ``qdrant-edge``, the embedded
default; ``qdrant``, a server or qdrant-client's local mode; ``milvus``, a server or Milvus Lite);
:func:`open_backend` reads it through :class:`smec_vdb.connection.Connection` and imports the
engine's package only then.

Example::

    from smec_vdb.adapters import open_backend
    with open_backend("qdrant-edge", path="./smec_data") as backend:
        print(backend.list_collections())
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from smec_vdb.backend import (
    Backend,
    Batch,
    CollectionSchema,
    Hit,
    IndexParams,
    Point,
    Resolution,
    SearchStage,
    iterate_points,
)
from smec_vdb.connection import Connection
from smec_vdb.engines import DEFAULT_ENGINE, DEFAULT_STORE

if TYPE_CHECKING:  # mypy checks every built-in adapter against the Backend Protocol here
    from smec_vdb.adapters.milvus import MilvusBackend
    from smec_vdb.adapters.qdrant import QdrantBackend
    from smec_vdb.adapters.qdrant_edge import QdrantEdgeBackend

    _ADAPTERS: tuple[type[Backend], ...] = (QdrantEdgeBackend, QdrantBackend, MilvusBackend)

__all__ = [
    "DEFAULT_STORE", "Backend", "Batch", "CollectionSchema", "Hit", "IndexParams", "Point", "Resolution",
    "SearchStage", "iterate_points", "open_backend",
]


def open_backend(backend: str = DEFAULT_ENGINE, *, url: str | None = None, path: str | None = None,
                 **options: Any) -> Backend:
    """Connect to the registered engine ``backend`` (:func:`smec_vdb.engines.engines`) at ``url`` or ``path``.

    Without either, the engine's url variable (``QDRANT_URL``, ``MILVUS_URI``) or its default path
    (qdrant-edge: ``./smec_data``). ``options`` are the engine's credential and server settings by
    keyword, read from the environment when not given: ``qdrant``: ``api_key`` (``QDRANT_API_KEY``),
    ``timeout`` seconds per request (``QDRANT_TIMEOUT``, default 60), ``prefer_grpc``
    (``QDRANT_PREFER_GRPC``); ``milvus``: ``token`` (``MILVUS_TOKEN``).

    ConfigError for an unknown backend (listing the known ones), both url and path, a url for an
    embedded engine or an option it does not take; MissingDependencyError naming the extra to install
    when the engine's client package is missing. The backend is a context manager that closes it.
    """
    return Connection.resolve(backend, url, path, **options).open()
