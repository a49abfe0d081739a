"""The pure logic of .ci/servers.py (the script that starts the Milvus servers of the server suites)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / ".ci"))
import servers  # noqa: E402

sys.path.pop(0)


def test_servers_script_reads_the_real_proxy_port():
    """.ci/servers.py finds ``proxy.port`` under ``proxy:`` only (other sections have a ``port`` too)."""
    config = "etcd:\n  port: 2379\nproxy:\n  timeTickInterval: 200\n\n  http:\n    port: 8080\n  port: 19531\nqueryNode:\n  port: 21123\n"
    assert servers.proxy_port(config) == 19531
    assert servers.proxy_port(config.replace("  port: 19531\n", "")) is None  # no proxy port: not guessed
