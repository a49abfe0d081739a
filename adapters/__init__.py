"""Vector-engine backends behind one Protocol, picked by :func:`open_backend`.

Targets (``Backend.target``): ``qdrant-server`` and ``qdrant-local`` (qdrant-client with a url or
a path), ``qdrant-edge`` (qdrant-edge-py, the embedded default), ``milvus-server`` and
``milvus-lite`` (pymilvus with an http(s) url or a ``.db`` path). Engine packages are imported
only when their backend is opened.

Example::

    from smec_vdb.adapters import open_backend
    backend = open_backend("qdrant-edge", path="./smec_data")
    print(backend.list_collections())
"""

from __future__ import annotations

import os

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
from smec_vdb.errors import ConfigError

DEFAULT_STORE = "./smec_data"
BACKENDS = ("qdrant", "qdrant-edge", "milvus")
TARGETS = ("qdrant-server", "qdrant-local", "qdrant-edge", "milvus-lite", "milvus-server")

__all__ = [
    "BACKENDS", "DEFAULT_STORE", "TARGETS", "Backend", "Batch", "CollectionSchema", "Hit", "IndexParams", "Point",
    "Resolution", "SearchStage", "iterate_points", "open_backend",
]


def open_backend(
    backend: str = "qdrant-edge",
    *,
    url: str | None = None,
    path: str | None = None,
    api_key: str | None = None,
    token: str | None = None,
) -> Backend:
    """Connect to an engine: ``backend`` is "qdrant", "qdrant-edge" or "milvus".

    - ``qdrant``: ``url`` (server; env ``QDRANT_URL``, key ``api_key`` / ``QDRANT_API_KEY``) or ``path``
      (embedded directory, or ":memory:"); one of them is required.
    - ``qdrant-edge``: ``path`` of the store directory (default ``./smec_data``); no url.
    - ``milvus``: ``url`` (server; env ``MILVUS_URI``, ``token`` / ``MILVUS_TOKEN``) or ``path`` (Milvus Lite, ``x.db``).

    Giving both ``url`` and ``path`` is a ConfigError, as is an unknown backend.
    """
    if url is not None and path is not None:
        raise ConfigError(f"give either url or path for backend {backend!r}, not both (url={url!r}, path={path!r})")
    if backend == "qdrant-edge":
        if url is not None:
            raise ConfigError("backend 'qdrant-edge' is embedded: give a store path, not a url")
        from smec_vdb.adapters.qdrant_edge import QdrantEdgeBackend

        return QdrantEdgeBackend(path or DEFAULT_STORE)
    if backend == "qdrant":
        if path is None:
            url = url or os.environ.get("QDRANT_URL") or None
        if url is None and path is None:
            raise ConfigError("backend 'qdrant' needs a url (server, or env QDRANT_URL) or a path (embedded or ':memory:')")
        from smec_vdb.adapters.qdrant import QdrantBackend

        if url is not None:
            return QdrantBackend(url=url, api_key=api_key or os.environ.get("QDRANT_API_KEY") or None)
        return QdrantBackend(path=path)
    if backend == "milvus":
        uri = path if path is not None else (url or os.environ.get("MILVUS_URI") or None)
        if uri is None:
            raise ConfigError("backend 'milvus' needs a url (server, or env MILVUS_URI) or a path (Milvus Lite, x.db)")
        from smec_vdb.adapters.milvus import MilvusBackend

        return MilvusBackend(uri, token or os.environ.get("MILVUS_TOKEN") or None)
    raise ConfigError(f"unknown backend {backend!r}; known backends: {', '.join(BACKENDS)}")
