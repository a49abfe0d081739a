"""integration_tests/containers.py: Docker detection, skip reasons, API-key and Ryuk settings (no daemon needed)."""

from __future__ import annotations

import importlib.util
import socket
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "integration_tests" / "containers.py"
_spec = importlib.util.spec_from_file_location("smec_integration_containers", _PATH)
assert _spec is not None and _spec.loader is not None
containers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(containers)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_docker_host_is_a_reason_naming_it(monkeypatch):
    port = closed_port()
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{port}")
    monkeypatch.setenv("TESTCONTAINERS_HOST_OVERRIDE", "10.1.2.3")
    reason = containers.docker_unavailable()
    assert reason is not None and f"tcp://127.0.0.1:{port}" in reason and "10.1.2.3" in reason


def test_a_missing_socket_is_a_reason(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'no-docker.sock'}")
    monkeypatch.delenv("TESTCONTAINERS_HOST_OVERRIDE", raising=False)
    reason = containers.docker_unavailable()
    assert reason is not None and "no-docker.sock" in reason


def test_credentials_in_docker_host_are_masked(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"tcp://ci:t0ken@127.0.0.1:{closed_port()}")
    reason = containers.docker_unavailable()
    assert reason is not None and "t0ken" not in reason and "***@127.0.0.1" in reason


def test_without_testcontainers_the_reason_gives_the_install_line(monkeypatch):
    for name in [m for m in sys.modules if m == "testcontainers" or m.startswith("testcontainers.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "testcontainers", None)  # import fails as if not installed
    reason = containers.docker_unavailable()
    assert reason is not None and "testcontainers is not installed" in reason and "pip install" in reason


def test_server_fixtures_skip_with_the_reason_when_no_daemon(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{closed_port()}")
    for opener, target in ((containers.qdrant_container, "qdrant-server"), (containers.milvus_container, "milvus-server")):
        with pytest.raises(pytest.skip.Exception, match=f"{target}: no server url in the environment and no Docker"):
            with opener():
                pass


def test_one_api_key_variable():
    assert containers.api_key_conflict({}) is None
    assert containers.api_key_conflict({"QDRANT_API_KEY": "k"}) is None
    assert containers.api_key_conflict({"QDRANT_API_KEY": "k", "QDRANT_CONTAINER_API_KEY": "k"}) is None
    assert "set only QDRANT_API_KEY" in containers.api_key_conflict({"QDRANT_CONTAINER_API_KEY": "other"})
    assert containers.api_key_conflict({"QDRANT_API_KEY": "k", "QDRANT_CONTAINER_API_KEY": "j"}) is not None


@pytest.mark.parametrize(("value", "disabled"), [("true", True), ("false", False)])
def test_ryuk_follows_testcontainers_env_setting(monkeypatch, value, disabled):
    from testcontainers.core.config import testcontainers_config

    monkeypatch.setenv("TESTCONTAINERS_RYUK_DISABLED", value)
    monkeypatch.setattr(testcontainers_config, "_ryuk_disabled", None)  # testcontainers caches its first read
    assert ("Ryuk disabled" in containers.ryuk_setting()) is disabled


def test_pinned_images_fit_the_client_and_the_features():
    from importlib.metadata import version

    from qdrant_client.common.version_check import is_compatible

    qdrant_tag = containers.QDRANT_IMAGE.split(":v")[1]
    assert is_compatible(version("qdrant-client"), qdrant_tag), (containers.QDRANT_IMAGE, version("qdrant-client"))
    assert tuple(int(p) for p in qdrant_tag.split(".")[:2]) >= (1, 16)
    milvus_tag = containers.MILVUS_IMAGE.split(":v")[1]
    assert tuple(int(p) for p in milvus_tag.split(".")[:2]) >= (2, 5)
