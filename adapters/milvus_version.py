"""What the connected Milvus can hold, from the version it reports at connect (issue 11).

Measured on the PyPI ``milvus==2.3.5`` server (``get_server_version()`` → ``v2.3.5-lite``): one
vector field per collection ("multiple vector fields is not supported"), no nullable fields
(``nullable`` is silently ignored) and no INVERTED scalar index ("index type not match
[expected=Trie]"). Multiple vector fields came with Milvus 2.4, nullable fields with 2.5 (their
INVERTED index on a VARCHAR/INT column is what a typed payload column needs).

Milvus Lite (a local ``x.db`` path, or ``milvus-lite server`` over TCP, which reports
``milvus_lite-3.2.2``) is the current engine: everything is available.

Example::

    caps = capabilities("v2.3.5-lite")
    caps.multi_vector, caps.nullable_columns     # (False, False)
    capabilities("milvus_lite-3.2.2").multi_vector  # True
"""

from __future__ import annotations

from dataclasses import dataclass

from smec_vdb.adapters.server_version import leading_version

MULTI_VECTOR_SINCE = (2, 4)
INVERTED_SINCE = (2, 4)
NULLABLE_SINCE = (2, 5)


@dataclass(frozen=True)
class MilvusCapabilities:
    """The connected engine's version as reported, and what this adapter may ask of it."""

    version: str
    #: (major, minor, patch) of a Milvus server; None for Milvus Lite (treated as current)
    release: tuple[int, int, int] | None = None

    @property
    def multi_vector(self) -> bool:
        """Several vector fields per collection (Milvus >= 2.4): multi-resolution collections."""
        return self.release is None or self.release[:2] >= MULTI_VECTOR_SINCE

    @property
    def nullable_columns(self) -> bool:
        """Nullable scalar fields with an INVERTED index (Milvus >= 2.5): typed payload columns."""
        return self.release is None or self.release[:2] >= NULLABLE_SINCE

    @property
    def inverted_index(self) -> bool:
        """The INVERTED (and BITMAP) scalar index (Milvus >= 2.4; 2.3.5 has Trie and STL_SORT only)."""
        return self.release is None or self.release[:2] >= INVERTED_SINCE

    def describe(self) -> str:
        return f"Milvus {self.version}" if self.release is not None else f"Milvus Lite ({self.version})"


def capabilities(reported: str) -> MilvusCapabilities:
    """Read what ``get_server_version()`` returned; a string that starts with no version is Milvus Lite."""
    version = leading_version(reported)
    if version is None:
        return MilvusCapabilities(reported)
    major, minor, patch = (*version.release, 0, 0)[:3]
    return MilvusCapabilities(reported, (major, minor, patch))


LITE = MilvusCapabilities("embedded")
