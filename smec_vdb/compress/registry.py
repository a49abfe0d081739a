"""The one registry of compression methods: name → class path, imported on first use.

Everything that lists or builds methods reads this table: :func:`smec_vdb.load` (a manifest's
``method``), :func:`smec_vdb.train.train`, the ``train``/``eval``/``extend`` commands and
:mod:`smec_vdb.eval.experiment`. Classes are imported lazily by path, so the compress package
never imports the baselines or the trainer at import time (no import cycles).

Example::

    known_methods()                          # ['linear-adaptor', 'matryoshka-adaptor', …]
    cls = method_class("pca")
    comp = cls.fit(corpus_vectors, [128, 64, 32])
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from smec_vdb.errors import ConfigError

if TYPE_CHECKING:
    from smec_vdb.compress.base import Compressor

METHODS: dict[str, str] = {
    "truncate": "smec_vdb.baselines.truncation:TruncationCompressor",
    "pca": "smec_vdb.baselines.pca:PCACompressor",
    "select": "smec_vdb.compress.selection:SelectionCompressor",
    "smec": "smec_vdb.compress.smec:SMECCompressor",
    "matryoshka-adaptor": "smec_vdb.baselines.matryoshka_adaptor:MatryoshkaAdaptorCompressor",
    "search-adaptor": "smec_vdb.baselines.search_adaptor:SearchAdaptorCompressor",
    "linear-adaptor": "smec_vdb.baselines.linear_adaptor:LinearAdaptorCompressor",
}


def known_methods() -> list[str]:
    """Registered method names, sorted."""
    return sorted(METHODS)


def method_class(name: str) -> type["Compressor"]:
    """The compressor class registered as ``name``; ConfigError naming the known ones otherwise."""
    path = METHODS.get(name)
    if path is None:
        raise ConfigError(f"unknown method {name!r}; known: {', '.join(known_methods())}")
    module, _, attr = path.partition(":")
    cls = getattr(importlib.import_module(module), attr)
    if cls.method != name:
        raise ConfigError(f"registry entry {name!r} points at {path}, whose method is {cls.method!r}")
    return cls
