"""Compressors: map D-dim embeddings to a nested family of lower-dim embeddings.

The names below are imported on first use (torch is only loaded when a compressor is needed),
so ``smec_vdb.compress.registry`` can be read without importing torch.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "Compressor": "smec_vdb.compress.base",
    "load": "smec_vdb.compress.artifact",
    "known_methods": "smec_vdb.compress.registry",
    "method_class": "smec_vdb.compress.registry",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'smec_vdb.compress' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_EXPORTS[name]), name)
