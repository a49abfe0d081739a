"""The engine registry (smec_vdb/engines.py): one record per engine, read by every caller; unknown names are errors."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from smec_vdb import engines
from smec_vdb.adapters import open_backend
from smec_vdb.connection import Connection
from smec_vdb.errors import ConfigError
from smec_vdb.layout import check_engine_support, default_layout

KNOWN = "known backends: qdrant-edge, qdrant, milvus"


def test_built_in_engines_and_their_targets():
    assert list(engines.engines()) == ["qdrant-edge", "qdrant", "milvus"]
    assert engines.target_names(embedded=False) == ("qdrant-server", "milvus-server", "milvus-lite-server")
    assert engines.target("milvus-lite").engine == "milvus" and engines.target("qdrant-local").embedded
    assert engines.engine("milvus").caps.partitions and not engines.engine("qdrant").caps.partitions
    assert not engines.capabilities("qdrant-edge").bool_filters and engines.capabilities("qdrant-local").bool_filters
    assert [t.name for t in engines.targets().values() if t.ci_server] == ["milvus-server", "milvus-lite-server"]


@pytest.mark.parametrize("call", [
    lambda: engines.engine("nope"),
    lambda: engines.adapter_class("nope"),
    lambda: open_backend("nope", path="x"),
    lambda: Connection("nope", path="x"),
    lambda: Connection.resolve("nope"),
    lambda: Connection.parse("nope+http://h:1"),
    lambda: Connection.parse("./x", backend="nope"),
], ids=["engine", "adapter_class", "open_backend", "Connection", "resolve", "parse", "parse-backend"])
def test_an_unknown_engine_is_an_error_listing_the_known_ones(call):
    with pytest.raises(ConfigError, match=f"unknown backend 'nope'.*; {KNOWN}"):
        call()


def test_an_unknown_target_is_an_error_listing_the_known_ones():
    for call in (lambda: engines.target("milvus-cloud"), lambda: default_layout("milvus-cloud"),
                 lambda: check_engine_support("milvus-cloud", None, "flat")):
        with pytest.raises(ConfigError, match="unknown target 'milvus-cloud'; known targets: qdrant-edge, qdrant-local"):
            call()


def test_the_cli_names_the_known_engines_for_an_unknown_one(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "smec_vdb.cli.app", "inspect", "--backend", "nope", "--path",
                           str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and f"unknown backend 'nope'; {KNOWN}" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_registration_refuses_what_would_make_the_registry_ambiguous():
    milvus = engines.engine("milvus")
    with pytest.raises(ConfigError, match="'milvus' is registered already"):
        engines.register(milvus)
    with pytest.raises(ConfigError, match="target 'milvus-lite' belongs to engine 'milvus'"):
        engines.register(dataclasses.replace(milvus, name="other"))
    odd = engines.Target("odd", "socket", "?")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="opened_by must be 'path' or 'url'"):
        engines.register(dataclasses.replace(milvus, name="other", targets=(odd,)))
    with pytest.raises(ConfigError, match="'module:Class'"):
        engines.register(dataclasses.replace(milvus, name="other", adapter="other.Backend"))
    with pytest.raises(ConfigError, match="at least one target"):
        engines.register(dataclasses.replace(milvus, name="other", targets=()))
    assert "other" not in engines.engines() and engines.engine("milvus") is milvus  # nothing half-registered


def test_an_adapter_that_cannot_be_imported_is_a_config_error():
    broken = engines.Engine("broken", "no_such_module_xyz:Backend", "?", (engines.Target("broken", "path", "?"),))
    engines.register(broken)
    try:
        with pytest.raises(ConfigError, match="backend 'broken': cannot import its adapter 'no_such_module_xyz:Backend'"):
            open_backend("broken", path="x")
    finally:
        engines.unregister("broken")
    assert "broken" not in engines.targets()
