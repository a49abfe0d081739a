"""Layouts on real engines: the settings each engine reports back, and searches that stay exact.

qdrant-edge persists a shard's vector settings in ``edge_config.json`` and each optimised
segment's index and quantization in ``segment.json`` (both written by the engine itself);
qdrant-client reports them through ``get_collection``; Milvus Lite through ``describe_index``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from smec_vdb.adapters.milvus import MilvusBackend
from smec_vdb.adapters.qdrant import QdrantBackend
from smec_vdb.adapters.qdrant_edge import QdrantEdgeBackend
from smec_vdb.backend import CollectionSchema, IndexParams, Resolution, SearchStage
from smec_vdb.collection import SmecCollection
from smec_vdb.errors import ConfigError
from smec_vdb.layout import Layout, Quantization, VectorLayout, parse_layout
from smec_vdb.train import TrainConfig, train

N, D, COARSE = 6000, 512, 32  # 6,000 x 512-d floats pass qdrant-edge's indexing threshold
HNSW = IndexParams(kind="hnsw", m=16, ef_construct=64, ef_search=64)


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    basis = rng.standard_normal((24, D)).astype(np.float32)  # 24 latent dims: a 32-d PCA code keeps them
    corpus = unit(rng.standard_normal((N, 24)).astype(np.float32) @ basis + 0.1 * rng.standard_normal((N, D)).astype(np.float32))
    queries = unit(corpus[:20] + 0.05 * rng.standard_normal((20, D)).astype(np.float32))
    return corpus, queries


@pytest.fixture(scope="module")
def compressor(data):
    return train(data[0][:2000], [COARSE], method="pca", config=TrainConfig(seed=0))


def exact_top(corpus: np.ndarray, q: np.ndarray, k: int = 10) -> list[int]:
    return np.argsort(-(corpus @ q), kind="stable")[:k].tolist()


def optimised_segment(store: Path, name: str) -> dict:
    """The engine's own record of the (one) optimised segment: index type and quantization per vector."""
    indexed = []
    for path in (store / name / "shard" / "segments").glob("*/segment.json"):
        record = json.loads(path.read_text())["config"]["vector_data"]
        if any(v["index"]["type"] == "hnsw" for v in record.values()):
            indexed.append(record)
    assert len(indexed) == 1, f"expected one optimised segment, found {len(indexed)}"
    return indexed[0]


def edge_collection(tmp_path: Path, compressor, corpus: np.ndarray, layout: Layout) -> QdrantEdgeBackend:
    backend = QdrantEdgeBackend(tmp_path / "edge")
    col = SmecCollection.create(backend, "docs", compressor, index=HNSW, layout=layout)
    col.upsert(list(range(N)), corpus)
    assert backend.optimize("docs")
    return backend


def test_edge_tiered_binary_layout_is_what_the_engine_stores(tmp_path, data, compressor):
    corpus, queries = data
    layout = parse_layout("tiered", quantize="binary2:q8")
    backend = edge_collection(tmp_path, compressor, corpus, layout)
    config = json.loads((tmp_path / "edge" / "docs" / "shard" / "edge_config.json").read_text())["vectors"]
    assert config["full"]["memory"] == "cold" and config["full"]["hnsw_config"]["m"] == 0
    assert config[f"d{COARSE}"]["memory"] == "cold"  # quantized: its floats are not needed in RAM
    assert config[f"d{COARSE}"]["quantization_config"]["binary"] == {
        "memory": "pinned", "encoding": "two_bits", "query_encoding": "scalar8bits"}
    segment = optimised_segment(tmp_path / "edge", "docs")
    assert segment["full"]["index"]["options"]["m"] == 0 and segment["full"]["quantization_config"] is None
    assert segment[f"d{COARSE}"]["index"]["options"]["m"] == 16
    backend.close()
    reopened = QdrantEdgeBackend(tmp_path / "edge")
    assert reopened.schema("docs").layout == layout  # recorded with the collection, read back
    col = SmecCollection.open(reopened, "docs", compressor)
    # binary codes pick 400 candidates, the full vector re-scores them exactly
    overlap = []
    for q in queries:
        hits = col.search(q, k=10, candidates=400)
        overlap.append(len({h.id for h in hits} & set(exact_top(corpus, q))))
        for h in hits:
            assert h.score == pytest.approx(float(corpus[h.id] @ q), abs=1e-4)
    assert np.mean(overlap) >= 9.5, overlap
    reopened.close()


def test_edge_all_ram_layout_keeps_every_graph(tmp_path, data, compressor):
    """The check above has teeth: the pre-issue layout reports a graph and RAM for ``full``."""
    backend = edge_collection(tmp_path, compressor, data[0], parse_layout("all-ram"))
    config = json.loads((tmp_path / "edge" / "docs" / "shard" / "edge_config.json").read_text())["vectors"]
    assert config["full"]["memory"] == "cached" and "hnsw_config" not in config["full"]
    assert optimised_segment(tmp_path / "edge", "docs")["full"]["index"]["options"]["m"] == 16
    backend.close()


@pytest.mark.parametrize("rescore", [True, False])
def test_edge_native_int8_oversampling_rescore(tmp_path, data, rescore):
    """Native int8 with rescoring returns exact scores; without, quantized ones (so the check can fail)."""
    corpus, queries = data
    q8 = Quantization("int8", rescore=rescore, oversampling=2.0 if rescore else 1.0)
    layout = Layout(coarse=VectorLayout(graph=True, tier="disk", quantization=q8), name="native-int8")
    backend = QdrantEdgeBackend(tmp_path / "edge")
    backend.create_collection("nat", CollectionSchema((Resolution("full", D),), index=HNSW, layout=layout))
    from smec_vdb.backend import Batch

    backend.upsert("nat", Batch(ids=list(range(N)), vectors={"full": corpus}))
    assert backend.optimize("nat")
    errors, overlap = [], []
    for q in queries:
        hits = backend.search_stages("nat", [SearchStage("full", q, 10, ef=128, oversampling=4.0 if rescore else None)])
        errors += [abs(h.score - float(corpus[h.id] @ q)) for h in hits]
        overlap.append(len({h.id for h in hits} & set(exact_top(corpus, q))))
    if rescore:
        assert max(errors) < 1e-4 and min(overlap) >= 9
    else:
        assert max(errors) > 1e-3
    backend.close()


def test_qdrant_local_reports_layout_settings(tmp_path, compressor):
    backend = QdrantBackend(path=str(tmp_path / "local"))
    layout = parse_layout("tiered", quantize="int8")
    SmecCollection.create(backend, "docs", compressor, index=HNSW, layout=layout)
    vectors = backend._client.get_collection("docs").config.params.vectors
    assert vectors["full"].on_disk is True and vectors["full"].hnsw_config.m == 0
    assert vectors["full"].quantization_config is None
    assert vectors[f"d{COARSE}"].quantization_config.scalar.type.value == "int8"
    assert vectors[f"d{COARSE}"].hnsw_config is None
    assert backend.schema("docs").layout == layout
    backend.close()


def test_milvus_lite_layout_indexes(tmp_path, data, compressor):
    backend = MilvusBackend(uri=str(tmp_path / "m.db"))
    layout = parse_layout("tiered", quantize="int8")
    col = SmecCollection.create(backend, "docs", compressor, index=HNSW, layout=layout)
    corpus, queries = data
    col.upsert(list(range(1000)), corpus[:1000])
    client = backend._client
    assert client.describe_index("docs", "full")["index_type"] == "FLAT"
    assert client.describe_index("docs", f"d{COARSE}")["index_type"] == "HNSW_SQ"
    assert backend.schema("docs").layout == layout
    hits = col.search(queries[0], k=10, candidates=200)
    assert len({h.id for h in hits} & set(exact_top(corpus[:1000], queries[0]))) >= 9
    with pytest.raises(ConfigError, match="binary2"):
        SmecCollection.create(backend, "bin", compressor, index=HNSW, layout=parse_layout("tiered", quantize="binary2"))
    assert not backend.exists("bin")
    backend.close()


# -- migrate: default layout and --layout/--quantize ----------------------------------------------
def _source(tmp_path: Path, data) -> tuple[QdrantEdgeBackend, np.ndarray]:
    from smec_vdb.backend import Batch

    backend = QdrantEdgeBackend(tmp_path / "store")
    x = data[0][:1500, :64] / np.linalg.norm(data[0][:1500, :64], axis=1, keepdims=True)
    backend.create_collection("src", CollectionSchema((Resolution("emb", 64),)))
    backend.upsert("src", Batch(ids=list(range(len(x))), vectors={"emb": x}))
    return backend, x


def test_migrate_default_layout_is_tiered_int8(tmp_path, data):
    from smec_vdb.layout import default_layout
    from smec_vdb.migrate import MigrationOptions, migrate

    backend, _ = _source(tmp_path, data)
    opts = MigrationOptions(source="src", dim=16, verify_queries=40, min_recall=0.5,
                            compressor_store=str(tmp_path / "comp"), train_options={"epochs": 2})
    migrate(backend, opts)
    assert backend.schema("src_smec").layout == default_layout("qdrant-edge") == parse_layout("tiered", quantize="int8")
    config = json.loads((tmp_path / "store" / "src_smec" / "shard" / "edge_config.json").read_text())["vectors"]
    assert config["d16"]["quantization_config"]["scalar"]["type"] == "int8"
    assert config["full"]["memory"] == "cold"
    backend.close()


def test_migrate_cli_layout_flags(tmp_path, data):
    import os
    import subprocess
    import sys

    backend, _ = _source(tmp_path, data)
    backend.close()
    base = [sys.executable, "-m", "smec_vdb.cli.app", "migrate", "-c", "src", "--dim", "16", "--epochs", "2",
            "--verify-queries", "40", "--min-recall", "0.5", "--backend", "qdrant-edge", "--path", str(tmp_path / "store"),
            "--compressor-store", str(tmp_path / "comp")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    bad = subprocess.run([*base, "--quantize", "binary3"], capture_output=True, text=True, env=env, timeout=600)
    assert bad.returncode == 1 and "bits must be one of [1.0, 1.5, 2.0], found 3.0" in bad.stderr
    assert not QdrantEdgeBackend(tmp_path / "store").exists("src_smec")  # refused before anything was written
    ok = subprocess.run([*base, "--layout", "all-ram", "--quantize", "binary2:q8"], capture_output=True, text=True,
                        env=env, timeout=600)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    reopened = QdrantEdgeBackend(tmp_path / "store")
    assert reopened.schema("src_smec").layout == parse_layout("all-ram", quantize="binary2:q8")
    shown = subprocess.run([sys.executable, "-m", "smec_vdb.cli.app", "inspect", "-c", "src_smec", "--json",
                            "--backend", "qdrant-edge", "--path", str(tmp_path / "store")],
                           capture_output=True, text=True, env=env, timeout=600)
    row = json.loads(shown.stdout)[0]
    # all-ram + binary2 codes on d16: floats 64*4 + 16*4, codes 4 bytes, no graph (flat index)
    assert row["layout"] == "all-ram+binary2q8"
    assert row["ram_bytes_per_point"] == 64 * 4 + 16 * 4 + 4 and row["disk_bytes_per_point"] == 64 * 4 + 16 * 4 + 4
    reopened.close()


def test_migrate_refuses_an_unsupported_layout_before_training(tmp_path, data):
    from smec_vdb.backend import Batch
    from smec_vdb.migrate import MigrationOptions, migrate

    backend = MilvusBackend(uri=str(tmp_path / "m.db"))
    x = data[0][:300, :64] / np.linalg.norm(data[0][:300, :64], axis=1, keepdims=True)
    backend.create_collection("src", CollectionSchema((Resolution("emb", 64),)))
    backend.upsert("src", Batch(ids=list(range(len(x))), vectors={"emb": x}))
    opts = MigrationOptions(source="src", dim=16, compressor_store=str(tmp_path / "comp"),
                            layout=parse_layout("tiered", quantize="binary2"), index=HNSW)
    with pytest.raises(ConfigError, match="no index over binary2 codes"):
        migrate(backend, opts)
    assert not backend.exists("src_smec") and not (tmp_path / "comp").exists()  # nothing trained or written
    backend.close()
