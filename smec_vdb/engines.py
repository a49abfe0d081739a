"""The one registry of vector engines: each ``--backend`` name, its adapter class, its client and extra.

:func:`smec_vdb.adapters.open_backend`, the CLI's ``--backend`` help and every test suite's list of
targets read this module, so adding an engine is one entry here plus its adapter module. Nothing
here imports an engine client: :func:`adapter_class` checks that the client is installed and
raises :class:`~smec_vdb.errors.MissingDependencyError` with the ``pip install`` line otherwise.

An *engine* is what ``--backend`` names (``qdrant``, ``qdrant-edge``, ``milvus``); a *target* is
one concrete way to run it (``Backend.target``): ``qdrant`` is ``qdrant-local`` with a path and
``qdrant-server`` with a url; ``milvus`` is ``milvus-lite`` with a path, and with a url
``milvus-server`` or ``milvus-lite-server`` (told apart by the version the server reports).

Example::

    from smec_vdb.engines import ENGINES, adapter_class
    print(sorted(ENGINES))                       # ['milvus', 'qdrant', 'qdrant-edge']
    QdrantEdgeBackend = adapter_class("qdrant-edge")
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import Any

from smec_vdb.errors import ConfigError, MissingDependencyError


@dataclass(frozen=True)
class Engine:
    """One ``--backend`` choice: the adapter (``module:Class``), the client modules it needs, the extra that installs them."""

    name: str
    adapter: str
    client_modules: tuple[str, ...]
    extra: str
    summary: str

    @property
    def install_hint(self) -> str:
        return f"pip install 'smec-vdb[{self.extra}]'"


@dataclass(frozen=True)
class Target:
    """One way to run an engine: embedded ones open ``store`` (a name under a directory), servers the
    url in environment variable ``url_env`` (``.ci/servers.py start`` prints the ``export`` lines)."""

    name: str
    engine: str
    embedded: bool
    store: str | None = None
    url_env: str | None = None


ENGINES: dict[str, Engine] = {
    engine.name: engine
    for engine in (
        Engine("qdrant-edge", "smec_vdb.adapters.qdrant_edge:QdrantEdgeBackend", ("qdrant_edge",), "qdrant",
               "Qdrant's Rust engine in-process (the embedded default)"),
        Engine("qdrant", "smec_vdb.adapters.qdrant:QdrantBackend", ("qdrant_client",), "qdrant",
               "a Qdrant server, or qdrant-client's embedded local mode"),
        Engine("milvus", "smec_vdb.adapters.milvus:MilvusBackend", ("pymilvus", "milvus_lite"), "milvus",
               "a Milvus server (multi-resolution needs >= 2.4), or Milvus Lite"),
    )
}
DEFAULT_ENGINE = "qdrant-edge"

TARGETS: dict[str, Target] = {
    target.name: target
    for target in (
        Target("qdrant-local", "qdrant", embedded=True, store="qdrant-local"),
        Target("qdrant-edge", "qdrant-edge", embedded=True, store="qdrant-edge"),
        Target("milvus-lite", "milvus", embedded=True, store="milvus-lite.db"),
        Target("qdrant-server", "qdrant", embedded=False, url_env="QDRANT_URL"),
        # in CI the Milvus 2.3.5 standalone server of PyPI ``milvus`` (one vector field per collection)
        Target("milvus-server", "milvus", embedded=False, url_env="MILVUS_URI"),
        # Milvus Lite served over TCP (``milvus-lite server``): the adapter's network path, current engine
        Target("milvus-lite-server", "milvus", embedded=False, url_env="MILVUS_LITE_URI"),
    )
}
EMBEDDED_TARGETS: tuple[str, ...] = tuple(t.name for t in TARGETS.values() if t.embedded)
SERVER_TARGETS: tuple[str, ...] = tuple(t.name for t in TARGETS.values() if not t.embedded)


def engine(name: str) -> Engine:
    """The registered engine called ``name``; ConfigError listing the known ones otherwise."""
    try:
        return ENGINES[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown backend {name!r}; known backends: {', '.join(ENGINES)}") from None


def missing_clients(name: str) -> list[str]:
    """The client modules of engine ``name`` that are not installed (without importing any)."""
    return [module for module in engine(name).client_modules if importlib.util.find_spec(module) is None]


def adapter_class(name: str) -> Any:
    """The adapter class of engine ``name``, imported now; MissingDependencyError if its client is absent."""
    spec = engine(name)
    missing = missing_clients(name)
    if missing:
        raise MissingDependencyError(
            f"backend {name!r} needs the Python package(s) {', '.join(missing)}, which are not installed: "
            f"{spec.install_hint}"
        )
    module, _, cls = spec.adapter.partition(":")
    return getattr(importlib.import_module(module), cls)
