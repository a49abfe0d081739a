"""Server targets from containers (testcontainers), for machines with a Docker daemon.

Used by ``conftest.py`` (:data:`CONTAINERS`, by target name) when a server target's url variable
(``QDRANT_URL`` / ``MILVUS_URI``) is not set. Images are pinned:

- Qdrant :data:`QDRANT_IMAGE`: qdrant-client 1.20 accepts a server whose major version is equal and
  whose minor differs by at most 1 (1.19 – 1.21); smec-vdb needs >= 1.16 for collection metadata.
- Milvus :data:`MILVUS_IMAGE`: >= 2.5 (several vector fields, nullable columns, INVERTED indexes).

One API-key variable, ``QDRANT_API_KEY``, serves the container and the client (testcontainers'
own ``QDRANT_CONTAINER_API_KEY`` would let them disagree, so a different value of it is refused).
Docker is found the way testcontainers finds it (``DOCKER_HOST``, ``tc.host`` in
``~/.testcontainers.properties``, the docker context; ``TESTCONTAINERS_HOST_OVERRIDE`` for where
mapped ports are reached); without testcontainers or a daemon the server targets skip with the
reason. Ryuk (the reaper container) follows ``TESTCONTAINERS_RYUK_DISABLED`` / ``RYUK_CONTAINER_IMAGE``;
a container that does not start fails with the setting in the message.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator, Mapping

import pytest

from smec_vdb.errors import mask_credentials

QDRANT_IMAGE = "qdrant/qdrant:v1.19.1"
MILVUS_IMAGE = "milvusdb/milvus:v2.5.15"
#: Milvus standalone with embedded etcd can take minutes on a cold, small machine
MILVUS_STARTUP_TIMEOUT_S = 300
QDRANT_STARTUP_TIMEOUT_S = 120
INSTALL_HINT = "pip install 'testcontainers[qdrant]>=4.15,<5'"


def docker_unavailable() -> str | None:
    """None when testcontainers is installed and its own Docker client answers a ping, else why not."""
    try:
        from testcontainers.core.docker_client import DockerClient, get_docker_host
    except ImportError as exc:
        return f"testcontainers is not installed ({exc.name or exc}): {INSTALL_HINT}"
    host = get_docker_host() or "the default Docker socket"
    override = os.environ.get("TESTCONTAINERS_HOST_OVERRIDE") or os.environ.get("TC_HOST")
    where = host + (f", ports reached on {override}" if override else "")
    try:
        DockerClient().client.ping()
    except Exception as exc:  # no daemon, no socket, no permission, an unreachable DOCKER_HOST
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return mask_credentials(f"no Docker daemon answers at {where} ({type(exc).__name__}: {first})")
    return None


def api_key_conflict(env: Mapping[str, str] = os.environ) -> str | None:
    """Why the container and the client would use different Qdrant API keys (None: they agree)."""
    legacy, key = env.get("QDRANT_CONTAINER_API_KEY"), env.get("QDRANT_API_KEY")
    if legacy and legacy != key:
        return ("QDRANT_CONTAINER_API_KEY is set and differs from QDRANT_API_KEY: the container would require "
                "a key the client does not send; set only QDRANT_API_KEY (it serves both)")
    return None


def ryuk_setting() -> str:
    """How testcontainers will reap containers, as a user can change it."""
    from testcontainers.core.config import testcontainers_config as config

    if config.ryuk_disabled:
        return "Ryuk disabled (TESTCONTAINERS_RYUK_DISABLED=true): containers are stopped by these fixtures only"
    return (f"Ryuk on (image {config.ryuk_image}, RYUK_CONTAINER_IMAGE to change it; set "
            "TESTCONTAINERS_RYUK_DISABLED=true where it cannot be pulled or run privileged)")


def _skip_without_docker(target: str) -> None:
    reason = docker_unavailable()
    if reason is not None:
        pytest.skip(f"{target}: no server url in the environment and {reason}")


@contextmanager
def _started(container: object, target: str) -> Iterator[None]:
    try:
        container.start()  # type: ignore[attr-defined]
    except Exception as exc:
        pytest.fail(mask_credentials(f"{target}: the container did not start ({type(exc).__name__}: {exc}); "
                                     f"{ryuk_setting()}"), pytrace=False)
    try:
        yield
    finally:
        container.stop()  # type: ignore[attr-defined]


@contextmanager
def qdrant_container() -> Iterator[str]:
    """The REST url of a fresh :data:`QDRANT_IMAGE` container, keyed with ``QDRANT_API_KEY`` if set."""
    _skip_without_docker("qdrant-server")
    if (conflict := api_key_conflict()) is not None:
        pytest.fail(f"qdrant-server: {conflict}", pytrace=False)
    from testcontainers.community.qdrant import QdrantContainer
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy

    container = QdrantContainer(QDRANT_IMAGE, api_key=os.environ.get("QDRANT_API_KEY") or None)
    container.waiting_for(LogMessageWaitStrategy(".*Actix runtime found; starting in Actix runtime.*")
                          .with_startup_timeout(QDRANT_STARTUP_TIMEOUT_S))
    with _started(container, "qdrant-server"):
        yield f"http://{container.get_container_host_ip()}:{container.exposed_rest_port}"


@contextmanager
def milvus_container() -> Iterator[str]:
    """The url of a fresh :data:`MILVUS_IMAGE` standalone container, ready once its log and /healthz say so."""
    _skip_without_docker("milvus-server")
    from testcontainers.community.milvus import MilvusContainer
    from testcontainers.core.wait_strategies import CompositeWaitStrategy, HttpWaitStrategy, LogMessageWaitStrategy

    container = MilvusContainer(MILVUS_IMAGE)
    container.waiting_for(CompositeWaitStrategy(
        LogMessageWaitStrategy("Welcome to use Milvus!"), HttpWaitStrategy(container.healthcheck_port, "/healthz"),
    ).with_startup_timeout(MILVUS_STARTUP_TIMEOUT_S).with_poll_interval(2))
    with _started(container, "milvus-server"):
        yield container.get_connection_url()


#: the container that serves each server target of the engine registry when its url variable is unset
CONTAINERS = {"qdrant-server": qdrant_container, "milvus-server": milvus_container}
