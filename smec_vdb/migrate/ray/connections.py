"""One open engine per worker process and connection: Ray reuses worker processes across tasks, so a
read or write task opens its source or target once per process, not once per task."""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING

from smec_vdb.backend import Backend
from smec_vdb.retry import retrying

if TYPE_CHECKING:
    from smec_vdb.migrate.distributed import Connection

_OPEN: dict[str, Backend] = {}
_LOCK = threading.Lock()


def opened(connection: Connection) -> Backend:
    """This process's backend for ``connection`` (retrying reads and idempotent writes)."""
    key = json.dumps([connection.engine, connection.url, connection.path, connection.credential,
                      dict(connection.settings)], sort_keys=True, default=str)  # settings: a dict, not hashable
    with _LOCK:
        if key not in _OPEN:
            _OPEN[key] = retrying(connection.open())
        return _OPEN[key]
