"""Fixtures for the backend contract suite: one ``target`` per engine, real engines only.

Embedded targets (qdrant-local, qdrant-edge, milvus-lite) run in fresh temporary directories.
Server targets (qdrant-server, milvus-server) use ``QDRANT_URL`` / ``MILVUS_URI`` when set, else a
testcontainers container when a Docker daemon is reachable, else skip with the reason.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import pytest

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


def _docker_reachable() -> str | None:
    """None if a Docker daemon answers, else why not."""
    try:
        import docker

        docker.from_env().ping()
        return None
    except Exception as exc:  # no daemon, no socket, no permission
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


@pytest.fixture(scope="session")
def qdrant_server_url() -> Iterator[str]:
    if os.environ.get("QDRANT_URL"):
        yield os.environ["QDRANT_URL"]
        return
    reason = _docker_reachable()
    if reason is not None:
        pytest.skip(f"qdrant-server: QDRANT_URL is not set and no Docker daemon is reachable ({reason})")
    from testcontainers.community.qdrant import QdrantContainer

    with QdrantContainer() as container:
        yield f"http://{container.rest_host_address}"


@pytest.fixture(scope="session")
def milvus_server_uri() -> Iterator[str]:
    if os.environ.get("MILVUS_URI"):
        yield os.environ["MILVUS_URI"]
        return
    reason = _docker_reachable()
    if reason is not None:
        pytest.skip(f"milvus-server: MILVUS_URI is not set and no Docker daemon is reachable ({reason})")
    from testcontainers.community.milvus import MilvusContainer

    with MilvusContainer() as container:
        yield container.get_connection_url()


@pytest.fixture(scope="session")
def milvus_lite_server_uri() -> str:
    """A ``milvus-lite server`` over TCP (several vector fields per collection), from env MILVUS_LITE_URI."""
    if not os.environ.get("MILVUS_LITE_URI"):
        pytest.skip("milvus-lite server: MILVUS_LITE_URI is not set")
    return os.environ["MILVUS_LITE_URI"]


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
    if spec.engine == "qdrant":
        url = request.getfixturevalue("qdrant_server_url")
        return Target(name, False, lambda: open_backend("qdrant", url=url, api_key=os.environ.get("QDRANT_API_KEY")))
    uri = request.getfixturevalue("milvus_server_uri")
    return Target(name, False, lambda: open_backend("milvus", url=uri, token=os.environ.get("MILVUS_TOKEN")))


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
