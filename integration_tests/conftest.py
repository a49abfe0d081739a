"""Fixtures for the backend contract suite: one ``target`` per registered engine target, real engines only.

The targets are the engine registry's (:mod:`smec_vdb.engines`): embedded ones (qdrant-local,
qdrant-edge, milvus-lite) run in fresh temporary directories under their ``test_store`` name;
server ones (qdrant-server, milvus-server, milvus-lite-server) use the url in their
``test_url_env`` variable (``QDRANT_URL``, ``MILVUS_URI``, ``MILVUS_LITE_URI``; ``.ci/run`` starts
the two Milvus servers and sets them, ``python .ci/servers.py start`` prints them) when set, else a
testcontainers container when one is known for the target and a Docker daemon is reachable
(:mod:`containers`), else they skip with the reason. A suite may run on other registered targets
(e.g. a toy engine registered by a test module) by parametrising ``target`` with their names.
"""

from __future__ import annotations

import os
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Callable, Iterator

import pytest
from containers import CONTAINERS
from targets import Target, make_target, target_params

from smec_vdb import engines
from smec_vdb.backend import Backend


@pytest.fixture(scope="session")
def server_url() -> Iterator[Callable[[str], str]]:
    """``server_url(target)``: the url of a registered server target (its variable, else a container
    started once per session), or a skip with the reason."""
    started: dict[str, str] = {}
    skipped: dict[str, str] = {}  # asked once per session, like a session fixture's skip
    with ExitStack() as stack:
        def url_of(name: str) -> str:
            spec = engines.target(name)
            if spec.test_url_env and os.environ.get(spec.test_url_env):
                return os.environ[spec.test_url_env]
            if name in skipped:
                pytest.skip(skipped[name])
            if name not in started:
                container = CONTAINERS.get(name)
                if container is None:
                    skipped[name] = (f"{name}: {spec.test_url_env} is not set (`python .ci/servers.py start` prints "
                                     "it) and no container is known for it")
                    pytest.skip(skipped[name])
                try:
                    started[name] = stack.enter_context(container())  # skips with the reason when none can run
                except pytest.skip.Exception as e:
                    skipped[name] = str(e.msg)
                    raise
            return started[name]

        yield url_of


@pytest.fixture(scope="session")
def qdrant_server_url(server_url: Callable[[str], str]) -> str:
    return server_url("qdrant-server")


@pytest.fixture(scope="session")
def milvus_server_uri(server_url: Callable[[str], str]) -> str:
    return server_url("milvus-server")


@pytest.fixture(scope="session")
def milvus_lite_server_uri(server_url: Callable[[str], str]) -> str:
    """Milvus Lite over TCP (``milvus-lite server``); no container serves it, so the variable or a skip."""
    return server_url("milvus-lite-server")


@pytest.fixture(params=target_params(engines.target_names()))
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    """One engine target; servers are shared, so tests name their collections with ``new_name()``."""
    made = make_target(request.param, tmp_path, None if engines.target(request.param).embedded
                       else request.getfixturevalue("server_url"))
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
    made = [make_target(name, tmp_path) for name in engines.target_names(embedded=True)]
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
