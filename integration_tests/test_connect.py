"""``smec_vdb.connect()`` on every embedded engine and the Milvus servers (issue 20): a location string
opens the engine, ``create`` / ``collection`` write and search through a saved compressor, ``migrate``
runs on the same or another engine, and the client closes the engine when its ``with`` block ends.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import smec_vdb
from smec_vdb import engines
from smec_vdb.backend import Batch, CollectionSchema, Resolution
from smec_vdb.compress.smec import SMECCompressor
from smec_vdb.errors import ConfigError
from smec_vdb.migrate import MigrationOptions

WIDTH, DIM, N = 16, 8, 120
SERVERS = [pytest.param(name, marks=pytest.mark.server) for name in ("milvus-server", "milvus-lite-server")]


def corpus(n: int = N) -> np.ndarray:
    x = np.random.default_rng(3).normal(size=(n, WIDTH)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def compressor_dir(tmp_path_factory) -> Path:
    """A saved SMEC compressor (PCA-initialised: no training needed to test the plumbing)."""
    directory = tmp_path_factory.mktemp("compressor") / "smec"
    SMECCompressor.from_pca(torch.from_numpy(corpus()), (DIM,)).eval().save(directory)
    return directory


def location(name: str, tmp_path: Path) -> str:
    """The connect() string of a registered target: ``<engine>:////abs/store`` or ``<engine>+<url>``."""
    spec = engines.target(name)
    if spec.embedded:
        return f"{spec.engine}:///{tmp_path / str(spec.test_store)}"
    url = os.environ.get(str(spec.test_url_env))
    if not url:
        pytest.skip(f"{name}: {spec.test_url_env} is not set (`python .ci/servers.py start` prints it)")
    return f"{spec.engine}+{url}"


@pytest.mark.parametrize("name", [*engines.target_names(embedded=True), *SERVERS])
def test_connect_creates_writes_and_reopens_a_collection(name, tmp_path, compressor_dir, new_name):
    where, collection, x = location(name, tmp_path), new_name(), corpus()
    # a single vector per collection fits every server, the 2.3.5 one included
    with smec_vdb.connect(where) as client:
        assert client.backend.target == name and client.connection.engine == engines.target(name).engine
        col = client.create(collection, str(compressor_dir), dims=[DIM], keep_full=False)
        col.upsert(list(range(N)), x, [{"i": i} for i in range(N)])
    with smec_vdb.connect(where) as client:  # reopened: the collection names its compressor's directory
        col = client.collection(collection)
        hits = col.search(x[5], k=3)
        assert hits[0].id == 5 and hits[0].payload == {"i": 5}
        assert col.record["path"] == str(compressor_dir.resolve()) and col.count() == N
        client.backend.drop(collection)


def test_migrate_through_the_client_into_another_engine(tmp_path, compressor_dir):
    x = corpus()
    with smec_vdb.connect(f"qdrant-edge:///{tmp_path}/edge") as client:
        client.backend.create_collection("src", CollectionSchema((Resolution("emb", WIDTH),)))
        client.backend.upsert("src", Batch(list(range(N)), {"emb": x}, [{"i": i} for i in range(N)]))
        plan = client.migrate(source="src", compressor=str(compressor_dir), dry_run=True, min_recall=0.0,
                              compressor_store=str(tmp_path / "store"), into=f"milvus:///{tmp_path}/m.db")
        assert plan["dry_run"] and not (tmp_path / "store").exists()
        report = client.migrate(source="src", compressor=str(compressor_dir), min_recall=0.0,
                                compressor_store=str(tmp_path / "store"), into=f"milvus:///{tmp_path}/m.db")
        assert report["verification"]["passed"]
        with pytest.raises(ConfigError, match="not both"):
            client.migrate(MigrationOptions(source="src", dim=4), dim=4)
    from pymilvus import MilvusClient

    milvus = MilvusClient(str(tmp_path / "m.db"))  # read back with the engine's own client
    try:
        milvus.load_collection("src_smec")
        rows = milvus.query("src_smec", filter="id < 3", output_fields=["i"])  # a typed column (issue 21)
        assert sorted(r["i"] for r in rows) == [0, 1, 2]
    finally:
        milvus.close()


def test_the_with_block_closes_the_engine_and_keeps_the_blocks_error(tmp_path):
    path = tmp_path / "lite.db"
    with pytest.raises(KeyError, match="the block's own error"):
        with smec_vdb.connect(f"milvus:///{path}") as client:
            client.backend.create_collection("c", CollectionSchema((Resolution("v", 2),)))
            raise KeyError("the block's own error")
    # Milvus Lite allows one process per path: another process can open it only once it is closed
    script = "import sys, smec_vdb\nwith smec_vdb.connect(sys.argv[1]) as c: print(c.backend.list_collections())"
    done = subprocess.run([sys.executable, "-c", script, f"milvus:///{path}"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "['c']", done.stderr[-2000:]
