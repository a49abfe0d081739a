"""Fixtures for the backend contract suite: one ``target`` per engine, real engines only.

Embedded targets (qdrant-local, qdrant-edge, milvus-lite) run in fresh temporary directories.
Server targets (qdrant-server, milvus-server, milvus-lite-server) use their environment variable
(``QDRANT_URL``, ``MILVUS_URI``, ``MILVUS_LITE_URI``; ``.ci/run`` starts the two Milvus servers and
sets them, ``python .ci/servers.py start`` prints them) when set, else a testcontainers container
when a Docker daemon is reachable (Qdrant, Milvus), else skip with the reason.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import pytest
from containers import milvus_container, qdrant_container

from smec_vdb.adapters import open_backend
from smec_vdb.backend import Backend
from smec_vdb.engines import EMBEDDED_TARGETS, SERVER_TARGETS, TARGETS



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


@pytest.fixture(scope="session")
def qdrant_server_url() -> Iterator[str]:
    if os.environ.get("QDRANT_URL"):
        yield os.environ["QDRANT_URL"]
        return
    with qdrant_container() as url:  # skips with the reason when no container can run
        yield url


@pytest.fixture(scope="session")
def milvus_server_uri() -> Iterator[str]:
    if os.environ.get("MILVUS_URI"):
        yield os.environ["MILVUS_URI"]
        return
    with milvus_container() as uri:  # skips with the reason when no container can run
        yield uri


@pytest.fixture(scope="session")
def milvus_lite_server_uri() -> str:
    """Milvus Lite over TCP (``milvus-lite server``); no container serves it, so the variable or a skip."""
    uri = os.environ.get("MILVUS_LITE_URI")
    if not uri:
        pytest.skip("milvus-lite-server: MILVUS_LITE_URI is not set (`python .ci/servers.py start` prints it)")
    return uri


SERVER_URL_FIXTURES = {"qdrant-server": "qdrant_server_url", "milvus-server": "milvus_server_uri",
                       "milvus-lite-server": "milvus_lite_server_uri"}


def _make_target(name: str, request: pytest.FixtureRequest | None, tmp_path: Path) -> Target:
    """A registered target (smec_vdb.engines.TARGETS): embedded ones in ``tmp_path``, servers from their fixture."""
    spec = TARGETS[name]
    if spec.embedded:
        assert spec.store is not None
        path = str(tmp_path / spec.store)
        # on a path, qdrant local mode commits one SQLite transaction per point (~60 points/s here): bulk runs in memory
        bulk = (lambda: open_backend(spec.engine, path=":memory:")) if name == "qdrant-local" else None
        return Target(name, True, lambda: open_backend(spec.engine, path=path), bulk_opener=bulk)
    assert request is not None
    url = request.getfixturevalue(SERVER_URL_FIXTURES[name])
    if spec.engine == "qdrant":
        return Target(name, False, lambda: open_backend("qdrant", url=url, api_key=os.environ.get("QDRANT_API_KEY")))
    return Target(name, False, lambda: open_backend("milvus", url=url, token=os.environ.get("MILVUS_TOKEN")))


@pytest.fixture(
    params=[
        *EMBEDDED_TARGETS,
        *(pytest.param(name, marks=pytest.mark.server) for name in SERVER_TARGETS),
    ]
)
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    """One engine target; servers are shared, so tests name their collections with ``new_name()``."""
    made = _make_target(request.param, request, tmp_path)
    yield made
    for backend in made.opened:
        try:
            if not made.embedded:
                for name in backend.list_collections():
                    if name.startswith("smectest_"):
                        backend.drop(name)
            backend.close()
        except Exception:  # a backend a test closed already, or a dead server
            pass


@pytest.fixture
def backend(target: Target) -> Backend:
    return target.open()


@pytest.fixture
def embedded_targets(tmp_path: Path) -> Iterator[list[Target]]:
    """Every embedded target at once (for the congruence test)."""
    made = [_make_target(name, None, tmp_path) for name in EMBEDDED_TARGETS]
    yield made
    for one in made:
        for backend in one.opened:
            try:
                backend.close()
            except Exception:
                pass


@pytest.fixture
def new_name() -> Callable[[], str]:
    """Collection names no other test (or earlier run against a shared server) uses."""
    return lambda: f"smectest_{uuid.uuid4().hex[:12]}"
