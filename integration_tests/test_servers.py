"""The Milvus server targets that ``.ci/run`` starts (issue 11): the 2.3.5 standalone server
(``MILVUS_URI``, one vector field per collection) and Milvus Lite over TCP (``MILVUS_LITE_URI``).

- single-vector paths on both: round trip, read-your-writes, search against numpy, filters,
  metadata (the hidden companion collection), aliases, reopen;
- the 2.3.5 server refuses several vector fields with its version stated, writing nothing, and a
  create whose index fails leaves no collection behind;
- bad inputs and faults on a server: wrong widths and NaN write nothing, an unreachable server is a
  retriable BackendError, a migration SIGKILLed mid-copy resumes and holds every point once;
- the issue's migration: SciFact vectors put on the 2.3.5 server with pymilvus' quick setup, migrated
  by the CLI into a multi-resolution collection on the Lite server (verification passes) and into a
  single-resolution one on the 2.3.5 server, while a multi-resolution target there is refused
  before the source is sampled or anything trained.

Collections are named ``smectest_*`` and dropped at teardown.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
from targets import milvus_client

from capabilities import REFUSAL, single_vector
from smec_vdb.adapters import open_backend
from smec_vdb.backend import Backend, Batch, CollectionSchema, IndexParams, Resolution
from smec_vdb.errors import BackendError, DimensionError, InvalidVectorError, UnsupportedServerError
from smec_vdb.layout import parse_layout

pytestmark = pytest.mark.server
SERVERS = {"milvus-server": "milvus_server_uri", "milvus-lite-server": "milvus_lite_server_uri"}
N_SCIFACT = 1200  # a small SciFact subset keeps the CI run short
BOUNDED_STALENESS_S = 6  # a quick-setup collection reads Bounded: Milvus' gracefulTime is 5 s


def _drop_test_collections(backend: Backend) -> None:
    for name in backend.list_collections():
        if name.startswith("smectest_"):
            backend.drop(name)


@pytest.fixture(params=sorted(SERVERS))
def server(request) -> Iterator[tuple[str, str]]:
    """(target name, uri) of each Milvus server target; its ``smectest_*`` collections are dropped after."""
    uri = request.getfixturevalue(SERVERS[request.param])
    yield request.param, uri
    cleanup = open_backend("milvus", url=uri)
    try:
        _drop_test_collections(cleanup)
    finally:
        cleanup.close()


def name() -> str:
    return f"smectest_{uuid.uuid4().hex[:12]}"


def unit_rows(n: int, width: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, width)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_connect_reports_the_target_and_what_it_holds(server):
    target, uri = server
    backend = open_backend("milvus", url=uri)
    try:
        assert backend.target == target
        if target == "milvus-server":
            assert backend.capabilities.release is not None and backend.capabilities.release[:2] == (2, 3)
            assert backend.max_vector_fields == 1 and not backend.capabilities.nullable_columns
        else:
            assert backend.capabilities.release is None and backend.max_vector_fields > 1
    finally:
        backend.close()


def test_single_vector_collection_round_trip(server):
    """Everything a migration source and a single-resolution target need, read right after the writes."""
    _, uri = server
    backend = open_backend("milvus", url=uri)
    coll, n = name(), 300
    x = unit_rows(n, 16)
    payloads = [{"g": f"g{i % 4}", "rank": i % 7} for i in range(n)]
    try:
        backend.create_collection(coll, CollectionSchema((Resolution("full", 16),), payload_indexes={"g": "keyword"}))
        backend.upsert(coll, Batch(list(range(n)), {"full": x}, payloads))
        points, cursor, seen = [], None, 0
        while True:  # the first read after the writes: a Session scroll sees this client's writes at once
            page, cursor = backend.scroll(coll, cursor=cursor, limit=128)
            points += page
            seen += 1
            if cursor is None:
                break
        assert [p.id for p in points] == list(range(n)) and seen == 3
        assert backend.count(coll) == n  # Strong: the barrier
        np.testing.assert_allclose(np.stack([p.vectors["full"] for p in points]), x, rtol=1e-5)
        assert [p.payload for p in points] == payloads
        assert [p.id for p in backend.retrieve(coll, [17, 999, 3])] == [17, 3]
        query = x[5]
        hits = backend.search(coll, "full", query, 10)
        assert [h.id for h in hits] == np.argsort(-(x @ query), kind="stable")[:10].tolist()
        hits = backend.search(coll, "full", query, 5, filter={"g": "g1"})
        assert len(hits) == 5 and all(payloads[h.id]["g"] == "g1" for h in hits)
        backend.set_metadata(coll, "smec.test", {"a": [1, 2]})  # the hidden companion (2-d dummy vector)
        assert backend.get_metadata(coll, "smec.test") == {"a": [1, 2]}
        assert backend.list_collections().count(coll) == 1 and not any("__smec" in c for c in backend.list_collections())
        alias = name()
        backend.create_alias(alias, coll)
        assert backend.resolve_alias(alias) == coll and backend.count(alias) == n
        backend.delete_alias(alias)
        backend.upsert(coll, Batch([0], {"full": x[1:2]}, [{"g": "changed"}]))
        assert backend.retrieve(coll, [0])[0].payload == {"g": "changed"}  # read-your-writes on get
        backend.delete(coll, [1, 2])
        assert backend.count(coll) == n - 2
    finally:
        backend.close()
    reopened = open_backend("milvus", url=uri)
    try:
        schema = reopened.schema(coll)
        assert [(r.name, r.dim) for r in schema.resolutions] == [("full", 16)]
        assert dict(schema.payload_indexes) == {"g": "keyword"}
        assert reopened.count(coll) == n - 2 and reopened.get_metadata(coll, "smec.test") == {"a": [1, 2]}
        reopened.drop(coll)
        assert not reopened.exists(coll) and not reopened.exists(coll + "__smec_meta")
    finally:
        reopened.close()


def test_several_vector_fields_are_refused_by_version_on_the_old_server(server):
    target, uri = server
    backend = open_backend("milvus", url=uri)
    coll = name()
    multi = CollectionSchema((Resolution("full", 16), Resolution("d4", 4)))
    try:
        if target == "milvus-server":
            for attempt in (lambda: backend.check_schema(multi), lambda: backend.create_collection(coll, multi)):
                with pytest.raises(UnsupportedServerError, match=REFUSAL):
                    attempt()
            assert not backend.exists(coll)
        else:  # the same schema is fine where the engine holds several vector fields: the check can fail
            backend.check_schema(multi)
            backend.create_collection(coll, multi)
            assert [r.name for r in backend.schema(coll).resolutions] == ["full", "d4"]
    finally:
        backend.close()


def test_a_failed_index_leaves_no_collection_behind(milvus_server_uri):
    """Create + index + load is all-or-nothing: 2.3.5 has no HNSW_SQ (int8 codes), so the index fails."""
    backend = open_backend("milvus", url=milvus_server_uri)
    coll = name()
    schema = CollectionSchema((Resolution("d16", 16),), index=IndexParams(kind="hnsw"),
                              layout=parse_layout("tiered", quantize="int8"))
    try:
        with pytest.raises(BackendError, match="HNSW_SQ|index"):
            backend.create_collection(coll, schema)
        assert not backend.exists(coll)
        backend.create_collection(coll, CollectionSchema((Resolution("d16", 16),), index=IndexParams(kind="hnsw")))
        assert backend.exists(coll)  # without the quantization the same create succeeds
    finally:
        backend.close()


def test_bad_inputs_write_nothing_on_a_server(server):
    _, uri = server
    backend = open_backend("milvus", url=uri)
    coll = name()
    try:
        backend.create_collection(coll, CollectionSchema((Resolution("full", 8),)))
        x = unit_rows(4, 8)
        with pytest.raises(DimensionError, match="full"):
            backend.upsert(coll, Batch([1, 2], {"full": unit_rows(2, 7)}))
        bad = x.copy()
        bad[2, 3] = np.nan
        with pytest.raises(InvalidVectorError):
            backend.upsert(coll, Batch([1, 2, 3, 4], {"full": bad}))
        assert backend.count(coll) == 0
        backend.upsert(coll, Batch([1, 2, 3, 4], {"full": x}))  # the same batch, repaired, goes in
        assert backend.count(coll) == 4
    finally:
        backend.close()


def test_an_unreachable_server_is_a_retriable_backend_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    from smec_vdb.adapters.milvus import MilvusBackend

    with pytest.raises(BackendError) as caught:
        MilvusBackend(f"http://127.0.0.1:{port}", timeout=3)
    assert caught.value.retriable and str(port) in str(caught.value)


# -- the migration ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def scifact_subset() -> tuple[np.ndarray, list[str]]:
    from smec_vdb.eval.beir import load_beir, shared_data_dir

    root = shared_data_dir() / "beir" / "scifact"
    if not root.is_dir():
        pytest.skip(f"SciFact embeddings absent: {root} not found (set SMEC_VDB_SHARED_DATA)")
    data = load_beir(root, "minilm-l6-v2")
    return np.ascontiguousarray(data.corpus[:N_SCIFACT], dtype=np.float32), list(data.corpus_ids[:N_SCIFACT])


@pytest.fixture(scope="module")
def quick_setup_source(milvus_server_uri, scifact_subset) -> Iterator[str]:
    """SciFact vectors in a collection made as a user would: ``create_collection(name, dimension=...)``;
    one per module (a migration never writes to its source, and each test names its own target)."""

    vectors, doc_ids = scifact_subset
    coll = name()
    client = milvus_client(milvus_server_uri)
    client.create_collection(coll, dimension=vectors.shape[1], metric_type="COSINE")
    for start in range(0, len(vectors), 500):
        client.insert(coll, [{"id": i, "vector": vectors[i].tolist(), "doc": doc_ids[i]}
                             for i in range(start, min(start + 500, len(vectors)))])
    time.sleep(BOUNDED_STALENESS_S)  # its reads are Bounded (the quick-setup default)
    client.close()
    yield coll
    cleanup = open_backend("milvus", url=milvus_server_uri)
    try:
        _drop_test_collections(cleanup)
    finally:
        cleanup.close()


def run_migrate(*args: str, expect: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    proc = subprocess.run([sys.executable, "-m", "smec_vdb.cli.app", "migrate", *args], capture_output=True,
                          text=True, env=env, timeout=900)
    assert proc.returncode == expect, f"exit {proc.returncode}\nstdout:{proc.stdout}\nstderr:{proc.stderr}"
    return proc


def test_scifact_from_the_old_server_into_a_multi_resolution_lite_server_target(
        quick_setup_source, scifact_subset, milvus_server_uri, milvus_lite_server_uri, tmp_path):
    target = name()
    run_migrate("--collection", quick_setup_source, "--target", target, "--dim", "64", "--epochs", "2",
                "--verify-queries", "50", "--min-recall", "0.5", "--backend", "milvus", "--url", milvus_server_uri,
                "--target-backend", "milvus", "--target-url", milvus_lite_server_uri,
                "--compressor-store", str(tmp_path / "compressors"), "--report", str(tmp_path / "r.json"), expect=0)
    report = json.loads((tmp_path / "r.json").read_text())
    v = report["verification"]
    assert v["passed"] and v["count_target"] == N_SCIFACT and v["points_checked"] == N_SCIFACT
    assert report["target"]["resolutions"] == {"full": 384, "d64": 64}
    lite = open_backend("milvus", url=milvus_lite_server_uri)
    try:
        point = lite.retrieve(target, [7])[0]
        assert point.payload == {"doc": scifact_subset[1][7]} and set(point.vectors) == {"full", "d64"}
        np.testing.assert_allclose(point.vectors["full"], scifact_subset[0][7], rtol=1e-5, atol=1e-6)
    finally:
        _drop_test_collections(lite)
        lite.close()


def test_multi_resolution_target_on_the_old_server_is_refused_before_training(
        quick_setup_source, milvus_server_uri, tmp_path):
    proc = run_migrate("--collection", quick_setup_source, "--target", name(), "--dim", "64", "--epochs", "2",
                       "--backend", "milvus", "--url", milvus_server_uri,
                       "--compressor-store", str(tmp_path / "compressors"), expect=1)
    assert "v2.3.5" in proc.stderr + proc.stdout and ">= 2.4" in proc.stderr + proc.stdout
    assert not (tmp_path / "compressors").exists()
    dry = run_migrate("--collection", quick_setup_source, "--dim", "64", "--dry-run", "--backend", "milvus",
                      "--url", milvus_server_uri, expect=1)
    assert "v2.3.5" in dry.stderr + dry.stdout and "one vector field" in dry.stderr + dry.stdout
    # the library refuses before the source is read: no survey, no training event
    from smec_vdb.migrate import MigrationOptions, migrate

    phases: list[str] = []
    target = name()
    backend = open_backend("milvus", url=milvus_server_uri)
    try:
        with pytest.raises(UnsupportedServerError, match=REFUSAL):
            migrate(backend, MigrationOptions(source=quick_setup_source, target=target, dim=64,
                                              compressor_store=str(tmp_path / "c2")),
                    progress=lambda ev: phases.append(ev.phase))
        # nothing written (other tests may create collections on the shared server meanwhile)
        assert phases == [] and not backend.exists(target) and not backend.exists(target + "__smec_meta")
    finally:
        backend.close()


@pytest.mark.slow  # 26 s; benchmarks/milvus_server.py runs the same migration on all 5,183 points
def test_single_resolution_target_on_the_old_server_migrates(quick_setup_source, milvus_server_uri, tmp_path):
    target = name()
    run_migrate("--collection", quick_setup_source, "--target", target, "--dim", "64", "--drop-full", "--epochs", "2",
                "--verify-queries", "50", "--min-recall", "0.3", "--backend", "milvus", "--url", milvus_server_uri,
                "--compressor-store", str(tmp_path / "compressors"), "--report", str(tmp_path / "r.json"), expect=0)
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["verification"]["passed"] and report["verification"]["count_target"] == N_SCIFACT
    assert report["target"]["resolutions"] == {"d64": 64}



# -- faults ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_compressor(tmp_path_factory) -> Path:
    from faults import clustered_vectors, train_compressor

    return train_compressor(clustered_vectors(400, 32, seed=1), (16,), tmp_path_factory.mktemp("comp") / "smec")


def test_a_migration_killed_mid_copy_resumes_exactly_once(server, small_compressor, tmp_path):
    """SIGKILL ``migrate`` once its checkpoint shows a copied batch, run it again: every point once, verified."""
    from faults import clustered_vectors
    from smec_vdb.migrate import CHECKPOINT_KEY, COMPLETE_KEY

    target_name, uri = server
    source, target, n = name(), name(), 1500
    x = clustered_vectors(n, 32)
    backend = open_backend("milvus", url=uri)
    backend.create_collection(source, CollectionSchema((Resolution("emb", 32),)))
    backend.upsert(source, Batch(list(range(n)), {"emb": x}, [{"i": i} for i in range(n)]))
    # the 2.3.5 server holds one vector field: a single-resolution target there, full + d16 on the Lite server
    keep = ["--drop-full"] if single_vector(backend) else []
    args = [sys.executable, "-m", "smec_vdb.cli.app", "migrate", "--collection", source, "--target", target,
            "--compressor", str(small_compressor), *keep, "--batch-size", "20", "--verify-queries", "20",
            "--min-recall", "0.3", "--backend", "milvus", "--url", uri, "--report", str(tmp_path / "r.json")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    try:
        proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        written, deadline = 0, time.monotonic() + 300
        while proc.poll() is None and time.monotonic() < deadline:
            if backend.exists(target) and (checkpoint := backend.get_metadata(target, CHECKPOINT_KEY)):
                written = checkpoint["written"]
                if written > 0:
                    proc.kill()
                    break
            time.sleep(0.05)
        proc.wait(timeout=60)
        assert proc.returncode == -9, f"migrate was not killed mid-copy (exit {proc.returncode}) on {target_name}"
        assert 0 < written < n and backend.get_metadata(target, COMPLETE_KEY) is None
        resumed = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        report = json.loads((tmp_path / "r.json").read_text())
        assert report["resumed"] and report["verification"]["passed"]
        assert report["verification"]["count_target"] == n and backend.count(target) == n
        ids = [p.id for batch_ in _pages(backend, target) for p in batch_]
        assert sorted(ids) == list(range(n))
        assert backend.get_metadata(target, CHECKPOINT_KEY) is None
    finally:
        backend.close()


def _pages(backend: Backend, collection: str):
    from smec_vdb.backend import iterate_points

    return (points for points, _ in iterate_points(backend, collection, batch_size=500, with_vectors=False))
