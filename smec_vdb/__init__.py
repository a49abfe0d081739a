"""smec-vdb: Sequential Matryoshka Embedding Compression (arXiv 2510.12474) for vector databases.

``Compressor`` and ``load`` are imported on first use (they need torch), and so is ``connect``
(:mod:`smec_vdb.client`), so that importing the package, ``smec_vdb.errors`` or ``smec_vdb.engines``
— and so ``smec-vdb --help`` — stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from smec_vdb.errors import SmecError

if TYPE_CHECKING:
    from smec_vdb.client import connect
    from smec_vdb.compress import Compressor, load

__all__ = ["Compressor", "SmecError", "__version__", "connect", "load"]
__version__ = "0.1.0"

_LAZY = {"Compressor": "smec_vdb.compress", "load": "smec_vdb.compress", "connect": "smec_vdb.client"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'smec_vdb' has no attribute {name!r}")
