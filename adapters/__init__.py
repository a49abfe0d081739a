"""Vector-engine backends behind one Protocol, picked by :func:`open_backend`.

Targets (``Backend.target``): ``qdrant-server`` and ``qdrant-local`` (qdrant-client with a url or
a path), ``qdrant-edge`` (qdrant-edge-py, the embedded default), ``milvus-server`` and
``milvus-lite`` (pymilvus with an http(s) url or a ``.db`` path), as registered in
:mod:`smec_vdb.engines`. Engine packages are imported only when their backend is opened.

Example::

    from smec_vdb.adapters import open_backend
    backend = open_backend("qdrant-edge", path="./smec_data")
    print(backend.list_collections())
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

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
from smec_vdb.engines import DEFAULT_ENGINE, adapter_class, engine
from smec_vdb.errors import ConfigError

DEFAULT_STORE = "./smec_data"

if TYPE_CHECKING:  # mypy checks every registered adapter against the Backend Protocol here
    from smec_vdb.adapters.milvus import MilvusBackend
    from smec_vdb.adapters.qdrant import QdrantBackend
    from smec_vdb.adapters.qdrant_edge import QdrantEdgeBackend

    _ADAPTERS: tuple[type[Backend], ...] = (QdrantEdgeBackend, QdrantBackend, MilvusBackend)

__all__ = [
    "DEFAULT_STORE", "Backend", "Batch", "CollectionSchema", "Hit", "IndexParams", "Point", "Resolution",
    "SearchStage", "iterate_points", "open_backend",
]


def open_backend(
    backend: str = DEFAULT_ENGINE,
    *,
    url: str | None = None,
    path: str | None = None,
    api_key: str | None = None,
    token: str | None = None,
    timeout: float | None = None,
    prefer_grpc: bool = False,
) -> Backend:
    """Connect to an engine named in :data:`smec_vdb.engines.ENGINES`: "qdrant", "qdrant-edge" or "milvus".

    - ``qdrant``: ``url`` (server; env ``QDRANT_URL``, key ``api_key`` / ``QDRANT_API_KEY``) or ``path``
      (embedded directory, or ":memory:"); one of them is required. On a server, ``timeout`` is the
      per-request limit in seconds (env ``QDRANT_TIMEOUT``, default 60) and ``prefer_grpc`` talks gRPC
      (port 6334) instead of REST (env ``QDRANT_PREFER_GRPC=true``).
    - ``qdrant-edge``: ``path`` of the store directory (default ``./smec_data``); no url.
    - ``milvus``: ``url`` (server; env ``MILVUS_URI``, ``token`` / ``MILVUS_TOKEN``) or ``path`` (Milvus Lite, ``x.db``).

    Giving both ``url`` and ``path`` is a ConfigError, as is an unknown backend; a backend whose client
    package is not installed is a MissingDependencyError naming the extra to install.
    """
    engine(backend)  # unknown names fail before the connection arguments are judged
    if backend != "qdrant" and (timeout is not None or prefer_grpc):
        raise ConfigError(f"timeout and prefer_grpc are options of backend 'qdrant' (a server), not {backend!r}")
    if url is not None and path is not None:
        raise ConfigError(f"give either url or path for backend {backend!r}, not both (url={url!r}, path={path!r})")
    if backend == "qdrant-edge":
        if url is not None:
            raise ConfigError("backend 'qdrant-edge' is embedded: give a store path, not a url")
        return adapter_class(backend)(path or DEFAULT_STORE)
    if backend == "qdrant":
        if path is None:
            url = url or os.environ.get("QDRANT_URL") or None
        if url is None and path is None:
            raise ConfigError("backend 'qdrant' needs a url (server, or env QDRANT_URL) or a path (embedded or ':memory:')")
        if url is not None:
            return adapter_class(backend)(url=url, api_key=api_key or os.environ.get("QDRANT_API_KEY") or None,
                                          timeout=timeout if timeout is not None else _env_timeout(),
                                          prefer_grpc=prefer_grpc or _env_flag("QDRANT_PREFER_GRPC"))
        return adapter_class(backend)(path=path, timeout=timeout, prefer_grpc=prefer_grpc)
    uri = path if path is not None else (url or os.environ.get("MILVUS_URI") or None)
    if uri is None:
        raise ConfigError("backend 'milvus' needs a url (server, or env MILVUS_URI) or a path (Milvus Lite, x.db)")
    return adapter_class(backend)(uri, token or os.environ.get("MILVUS_TOKEN") or None)


def _env_timeout() -> float | None:
    raw = os.environ.get("QDRANT_TIMEOUT")
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"env QDRANT_TIMEOUT must be a number of seconds, found {raw!r}") from None


def _env_flag(name: str) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if raw not in ("", "0", "false", "no", "1", "true", "yes"):
        raise ConfigError(f"env {name} must be true or false, found {raw!r}")
    return raw in ("1", "true", "yes")
