"""A new engine is one module plus one registration (issue 20): the toy engine of ``toy_engine.py``,
registered here, runs the contract suite's scenarios and is reached by every caller of the registry
(open_backend, connect, the layout check, the distributed refusal, the CLI through an entry point),
with no project file naming it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
from targets import Target, make_target

# The contract suite's scenarios, collected here again with ``target`` below (the toy engine's targets).
from test_contract import (  # noqa: F401
    test_aliases_create_switch_resolve,
    test_create_schema_exists_and_list,
    test_dimension_mismatch_writes_nothing,
    test_duplicate_ids_upsert_overwrites,
    test_filters,
    test_ids_round_trip,
    test_metadata_lifecycle,
    test_missing_collection,
    test_reopen_persistence,
    test_resumable_scroll,
    test_retrieve_by_ids_in_order,
    test_round_trip_scroll,
    test_scroll_selected_vectors_and_none,
    test_search_matches_numpy,
    test_search_stages_matches_numpy,
    test_search_stages_with_filter,
)
from toy_engine import TOY

import smec_vdb
from smec_vdb import engines
from smec_vdb.adapters import open_backend
from smec_vdb.backend import Batch, CollectionSchema, Resolution
from smec_vdb.errors import ConfigError, SingleWriterError
from smec_vdb.layout import check_engine_support, default_layout, parse_layout
from smec_vdb.migrate.distributed import Connection, check_distributable

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module", autouse=True)
def toy_registered() -> Iterator[None]:
    """The one registration: in-process, for this module's tests."""
    engines.register(TOY)
    yield
    engines.unregister(TOY.name)


@pytest.fixture(params=[t.name for t in TOY.targets])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    """The toy engine's targets, made by the suites' own target factory from the registry's record."""
    yield make_target(request.param, tmp_path)


def test_the_toy_is_opened_through_the_registry_and_connect(tmp_path):
    assert "toy" in engines.target_names(embedded=True)
    with open_backend("toy", path=str(tmp_path / "a")) as backend:
        backend.create_collection("c", CollectionSchema((Resolution("v", 2),)))
        backend.upsert("c", Batch([1], {"v": np.ones((1, 2), dtype=np.float32)}))
    with smec_vdb.connect(f"toy:///{tmp_path}/a") as client:  # the same store, reopened by its location
        assert client.backend.target == "toy" and client.backend.count("c") == 1
    with pytest.raises(ConfigError, match="'toy' is embedded"):
        Connection.parse("toy://host:1")


def test_layouts_and_workers_follow_the_toys_record():
    assert default_layout("toy", "hnsw") == parse_layout("tiered")  # no int8 codes: plain tiered
    with pytest.raises(ConfigError, match="toy: .*no index over int8 codes; use quantization none"):
        check_engine_support("toy", parse_layout("tiered", quantize="int8"), "hnsw")
    with pytest.raises(SingleWriterError, match="the source is toy, an embedded engine"):
        check_distributable(Connection("toy", path="x"), "source")


def _plugin_env(tmp_path: Path, entry: str) -> dict[str, str]:
    """An installed package (a dist-info folder on the path) whose entry point registers ``entry``."""
    info = tmp_path / "site" / "toy_plugin-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{engines.ENTRY_POINT_GROUP}]\n{entry}\n")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), str(HERE)])}


def test_an_installed_package_registers_through_the_entry_point_group(tmp_path):
    env = _plugin_env(tmp_path, "toy = toy_engine:TOY")
    cli = [sys.executable, "-m", "smec_vdb.cli.app"]
    shown = subprocess.run([*cli, "inspect", "--help"], env=env, capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0 and "toy (an in-memory toy engine" in " ".join(shown.stdout.split()), shown.stderr
    store = tmp_path / "store"
    store.mkdir()
    listed = subprocess.run([*cli, "inspect", "--backend", "toy", "--path", str(store), "--json"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0 and listed.stdout.strip() == "[]", listed.stderr  # a fresh toy store: empty
    unknown = subprocess.run([*cli, "inspect", "--backend", "toyy", "--path", str(store)], env=env,
                             capture_output=True, text=True, timeout=120)
    assert unknown.returncode == 1 and "unknown backend 'toyy'; known backends: qdrant-edge, qdrant, milvus, toy" \
        in unknown.stderr, unknown.stderr


def test_a_broken_entry_point_names_itself_and_leaves_the_others_working(tmp_path):
    env = _plugin_env(tmp_path, "toy = toy_engine:NO_SUCH_RECORD")
    code = ("import warnings; warnings.simplefilter('ignore')\n"
            "from smec_vdb import engines\n"
            "assert 'milvus' in engines.engines()\n"
            "try:\n    engines.engine('toy')\nexcept Exception as e:\n    print(type(e).__name__, e)\n")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ConfigError backend 'toy' is not available: entry point toy = toy_engine:NO_SUCH_RECORD")
