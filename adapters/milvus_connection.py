"""One pymilvus client on a Milvus Lite path or a Milvus server URL, and what the engine behind it can hold.

- The URI names the target (:func:`target_of`): a local path ending in ``.db`` is ``milvus-lite``,
  an http(s)/tcp URL a server. A server's version is read at connect
  (:mod:`smec_vdb.adapters.milvus_version`): one that reports no release number is Milvus Lite over
  TCP (``milvus-lite server``), target ``milvus-lite-server``.
- A server allows at most ``proxy.maxVectorFieldNum`` (default 4) vector fields per collection, and
  before Milvus 2.4 only one: :attr:`MilvusConnection.max_vector_fields`.
- One process per Milvus Lite path; its in-process server outlives ``MilvusClient.close()``, so the
  connections of a path are counted and the last :meth:`MilvusConnection.close` stops it, freeing
  the path for other processes.

Example::

    conn = MilvusConnection("./vectors.db")
    with conn.errors("list collections"):
        conn.client.list_collections()
    conn.close()
"""

from __future__ import annotations

import os
import threading
from contextlib import AbstractContextManager
from urllib.parse import urlparse

from tenacity import Retrying, retry_if_exception, stop_after_attempt

from smec_vdb.adapters.milvus_errors import engine_errors, pymilvus
from smec_vdb.adapters.milvus_version import LITE, MilvusCapabilities, capabilities
from smec_vdb.errors import ConfigError

DEFAULT_MAX_VECTOR_FIELDS = 4  # Milvus proxy.maxVectorFieldNum
# Milvus Lite serves each path from one in-process server that outlives MilvusClient.close(): the
# connections of a path are counted, and the last close stops it, releasing the path's lock.
_LITE_USERS: dict[str, int] = {}
_LITE_USERS_LOCK = threading.Lock()


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


def location(uri: str | None, url: str | None, path: str | None) -> str:
    """The one URI given as pymilvus ``uri`` (either kind), ``url`` (a server) or ``path`` (a Milvus Lite file)."""
    given = {k: v for k, v in (("uri", uri), ("url", url), ("path", path)) if v is not None}
    if len(given) != 1:
        raise ConfigError(f"give one of uri, url (a server) or path (a Milvus Lite file x.db), found {sorted(given) or 'none'}")
    (kind, value), = given.items()
    target = target_of(value)
    if kind == "path" and target != "milvus-lite":
        raise ConfigError(f"path is a Milvus Lite file such as x.db; a server goes in url, found {value!r}")
    if kind == "url" and target == "milvus-lite":
        raise ConfigError(f"url is a Milvus server (http(s)://host:port or tcp://host:port); a Milvus Lite file "
                          f"goes in path, found {value!r}")
    return value


def _closed_by_goaway(error: BaseException) -> bool:
    """The connect failed on a channel the server had closed for too many keepalive pings."""
    cause: BaseException | None = error
    seen: set[int] = set()
    while cause is not None and id(cause) not in seen:  # pymilvus raises ``e from e``: a chain can loop
        if "too many pings" in str(cause).lower():
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False


class MilvusConnection:
    """``client`` (a pymilvus ``MilvusClient``), the ``target`` it reached and that engine's ``capabilities``."""

    def __init__(self, uri: str, token: str | None = None, *, max_vector_fields: int = DEFAULT_MAX_VECTOR_FIELDS,
                 timeout: float | None = 30.0) -> None:
        self.target = target_of(uri)
        self.uri = uri
        self._lite_path: str | None = None
        module = pymilvus()
        if self.target == "milvus-lite":
            self._lite_path = os.path.abspath(uri.rstrip("/"))
            os.makedirs(os.path.dirname(self._lite_path), exist_ok=True)
        # pymilvus shares a channel per server and pings it every 10 s; the milvus-lite server answers with
        # GOAWAY "too many pings", and the next connect on that channel fails once: then a new one opens
        for attempt in Retrying(stop=stop_after_attempt(2), retry=retry_if_exception(_closed_by_goaway), reraise=True):
            with attempt, self.errors(f"connect to {self.target} at {uri!r}"):
                self.client = module.MilvusClient(uri=uri, token=token or "", timeout=timeout)
        if self._lite_path is not None:
            with _LITE_USERS_LOCK:
                _LITE_USERS[self._lite_path] = _LITE_USERS.get(self._lite_path, 0) + 1
        self.capabilities: MilvusCapabilities = LITE
        if self.target == "milvus-server":
            with self.errors(f"read the server version of {uri!r}"):
                self.capabilities = capabilities(str(self.client.get_server_version()))
            if self.capabilities.release is None:  # Milvus Lite behind a TCP server
                self.target = "milvus-lite-server"
        #: vector fields one collection may have: the server's proxy.maxVectorFieldNum, 1 before Milvus 2.4
        self.max_vector_fields = max_vector_fields if self.capabilities.multi_vector else 1

    @property
    def embedded_lite(self) -> bool:
        """Milvus Lite in this process (a ``.db`` path), not a server."""
        return self._lite_path is not None

    def errors(self, action: str, collection: str | None = None) -> AbstractContextManager[None]:
        """Map what the block raises into smec-vdb's errors (:mod:`smec_vdb.adapters.milvus_errors`)."""
        return engine_errors(self.target, action, collection)

    def close(self) -> None:
        """Disconnect; the last connection of a Milvus Lite path also stops its in-process server."""
        try:
            with self.errors("close the client"):
                self.client.close()
        finally:
            if self._lite_path is not None:
                self._release_lite_server(self._lite_path)

    @staticmethod
    def _release_lite_server(path: str) -> None:
        with _LITE_USERS_LOCK:
            left = _LITE_USERS.get(path, 1) - 1
            if left > 0:
                _LITE_USERS[path] = left
                return
            _LITE_USERS.pop(path, None)
            from milvus_lite.server_manager import server_manager_instance

            server_manager_instance.release_server(path)
