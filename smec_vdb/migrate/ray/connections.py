"""One open engine per worker process and connection: Ray reuses worker processes across tasks, so a
read or write task opens its source or target once per process, not once per task."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from smec_vdb.backend import Backend
from smec_vdb.retry import retrying

if TYPE_CHECKING:
    from smec_vdb.migrate.distributed import Connection

_OPEN: dict["Connection", Backend] = {}
_LOCK = threading.Lock()


def opened(connection: Connection) -> Backend:
    """This process's backend for ``connection`` (retrying reads and idempotent writes)."""
    with _LOCK:
        if connection not in _OPEN:
            _OPEN[connection] = retrying(connection.open())
        return _OPEN[connection]
