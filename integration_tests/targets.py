"""The suites' engine targets, made from the engine registry's records (:mod:`smec_vdb.engines`).

:func:`make_target` opens an embedded target in a temporary directory under its ``test_store``
name, and a server target at its url; :func:`target_params` turns target names into pytest params
(servers marked ``server``). ``conftest.py`` parametrises the ``target`` fixture with every
registered target; a test module may do so with others (``test_toy_engine.py``: an engine it
registers itself).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest

from smec_vdb import engines
from smec_vdb.adapters import open_backend
from smec_vdb.backend import Backend


@dataclass
class Target:
    """How to (re)open one engine target; every backend opened is closed at teardown."""

    name: str
    embedded: bool
    opener: Callable[[], Backend]
    #: for large scenarios where the persistent opener is impractically slow (else ``opener``)
    bulk_opener: Callable[[], Backend] | None = None
    opened: list[Backend] = field(default_factory=list)

    def open(self, *, bulk: bool = False) -> Backend:
        backend = (self.bulk_opener if bulk and self.bulk_opener else self.opener)()
        self.opened.append(backend)
        return backend


def make_target(name: str, tmp_path: Path, server_url: Callable[[str], str] | None = None) -> Target:
    """A registered target: embedded ones under ``tmp_path``, servers at ``server_url(name)``."""
    spec = engines.target(name)
    record = engines.engine(spec.engine)
    if spec.embedded:
        path = str(tmp_path / (spec.test_store or spec.name))
        # e.g. qdrant local mode on a path commits one SQLite transaction per point (~60 points/s here): bulk in memory
        bulk = (lambda: open_backend(record.name, path=record.in_memory)) if record.in_memory else None
        return Target(name, True, lambda: open_backend(record.name, path=path), bulk_opener=bulk)
    assert server_url is not None, f"{name} is a server target: give server_url"
    url = server_url(name)
    return Target(name, False, lambda: open_backend(record.name, url=url))


def target_params(names: tuple[str, ...]) -> list[Any]:
    """pytest params for ``target``: server targets marked ``server``."""
    return [name if engines.target(name).embedded else pytest.param(name, marks=pytest.mark.server) for name in names]
