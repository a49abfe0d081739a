"""The pure logic of .ci/servers.py (the script that starts the Milvus servers of the server suites)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / ".ci"))
import servers  # noqa: E402

sys.path.pop(0)


def test_servers_script_reads_the_real_proxy_port():
    """.ci/servers.py finds ``proxy.port`` under ``proxy:`` only (other sections have a ``port`` too)."""
    config = "etcd:\n  port: 2379\nproxy:\n  timeTickInterval: 200\n\n  http:\n    port: 8080\n  port: 19531\nqueryNode:\n  port: 21123\n"
    assert servers.proxy_port(config) == 19531
    assert servers.proxy_port(config.replace("  port: 19531\n", "")) is None  # no proxy port: not guessed


def test_the_servers_started_are_the_engine_registrys_ci_targets():
    from smec_vdb import engines

    assert [(t.name, t.test_url_env) for t in servers.ci_servers()] == [
        ("milvus-server", "MILVUS_URI"), ("milvus-lite-server", "MILVUS_LITE_URI")]
    extra = engines.Engine("ci-toy", "ci_toy:Backend", "?", (engines.Target("ci-toy-server", "url", "?", ci_server=True,
                                                                             test_url_env="CI_TOY_URL"),))
    engines.register(extra)
    try:
        with pytest.raises(SystemExit, match="no starter .* for the CI server target.* ci-toy-server"):
            servers.ci_servers()
    finally:
        engines.unregister(extra.name)
    assert [t.name for t in servers.ci_servers()] == ["milvus-server", "milvus-lite-server"]
