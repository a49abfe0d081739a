"""``alias_version()`` for adapters whose aliases live in the engine (Qdrant, Milvus).

A reader bound through an alias (:class:`smec_vdb.collection.SmecCollection`) asks for this token
before each search and looks the alias up again only when it changed. The token counts this
client's own alias changes; where other clients can change the aliases too (a server), it adds the
current period of :data:`ALIAS_RECHECK_S`, so the alias is looked up at most once per period and
another client's swap is followed within it (until then the reader searches the collection it
resolved, whose compressor encoded its queries: the answers stay in one space).

Example::

    version = AliasVersion(shared=not embedded)
    version.changed()          # in create_alias / delete_alias / drop
    token = version()
"""

from __future__ import annotations

import time
from typing import Any

ALIAS_RECHECK_S = 1.0


class AliasVersion:
    """A counter of this client's alias changes, with the clock's period when other clients share the engine."""

    def __init__(self, shared: bool) -> None:
        self.shared = shared
        self.changes = 0

    def changed(self) -> None:
        self.changes += 1

    def __call__(self) -> Any:
        return (self.changes, int(time.monotonic() / ALIAS_RECHECK_S)) if self.shared else self.changes
