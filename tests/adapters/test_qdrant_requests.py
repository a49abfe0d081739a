"""Qdrant server request shaping: byte-sized upserts, retries, timeout, version check, HNSW threshold.

Pure planning logic is tested directly; the adapter is driven through the real qdrant-client 1.20
against the HTTP fake of ``conftest.py`` (what is measured is what the client really sent). This
proves request shaping only; no Qdrant server semantics are claimed (see README, "Qdrant server").
"""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest
from packaging.version import Version

from smec_vdb.adapters.qdrant import INDEXING_THRESHOLD_KB, QdrantBackend, parse_version
from smec_vdb.adapters.qdrant_requests import (
    RequestShape,
    grpc_shape,
    plan_requests,
    request_bytes,
    rest_shape,
)
from smec_vdb.backend import Batch, CollectionSchema, IndexParams, Resolution
from smec_vdb.errors import BackendError, ConfigError, RequestTooLargeError, RetriesExhaustedError, ServerVersionError
from smec_vdb.retry import RetryPolicy, retrying

MIB = 2**20
WIDE = CollectionSchema((Resolution("full", 3584), Resolution("d512", 512), Resolution("d128", 128)))


def wide_batch(n: int, start: int = 0, payload_chars: int = 10) -> Batch:
    rng = np.random.default_rng(start)
    return Batch(ids=list(range(start, start + n)),
                 vectors={r.name: rng.normal(size=(n, r.dim)).astype(np.float32) for r in WIDE.resolutions},
                 payloads=[{"text": "é" * payload_chars, "i": i} for i in range(n)])


def server(fake, **kwargs) -> QdrantBackend:
    return QdrantBackend(url=fake.url, **kwargs)


# -- pure planning ------------------------------------------------------------------------
def test_plan_packs_greedily_under_the_budget_and_the_point_cap():
    shape = RequestShape("REST JSON", 12, (400, 400, 400, 100, 100, 900))
    chunks = plan_requests(list("abcdef"), shape, budget=1024, max_points=4)
    assert chunks == [range(0, 2), range(2, 5), range(5, 6)]
    assert all(request_bytes(shape, c) <= 1024 for c in chunks)
    assert plan_requests(list("abcdef"), shape, budget=10_000, max_points=4) == [range(0, 4), range(4, 6)]
    assert plan_requests([], RequestShape("REST JSON", 12, ()), budget=1024) == []


def test_a_point_exactly_at_the_budget_fits_and_one_byte_more_is_refused():
    shape = RequestShape("REST JSON", 12, (1012, 5))
    assert plan_requests(["a", "b"], shape, budget=1024) == [range(0, 1), range(1, 2)]
    with pytest.raises(RequestTooLargeError, match=r"point 'a' alone makes a 1025-byte REST JSON"):
        plan_requests(["a", "b"], RequestShape("REST JSON", 12, (1013, 5)), budget=1024)


@pytest.mark.parametrize("budget", [0, 512, 2.5, True, "16MiB"])
def test_bad_budgets_are_config_errors(budget):
    with pytest.raises(ConfigError, match="request_budget"):
        plan_requests(["a"], RequestShape("REST JSON", 12, (10,)), budget=budget)


def test_grpc_sizes_match_the_message_the_client_builds():
    from qdrant_client import grpc, models
    from qdrant_client.conversions.conversion import RestToGrpc

    batch = wide_batch(7)
    points = [RestToGrpc.convert_point_struct(models.PointStruct(
        id=i, vector={n: m[i].tolist() for n, m in batch.vectors.items()}, payload=batch.payloads[i]))
        for i in range(7)]
    shape = grpc_shape("docs", points)
    for chunk in (range(0, 7), range(2, 5), range(6, 7)):
        sent = grpc.UpsertPoints(collection_name="docs", wait=True, points=points[chunk.start:chunk.stop])
        assert request_bytes(shape, chunk) == sent.ByteSize()


def test_version_strings():
    assert parse_version("1.16.2", "qdrant") == Version("1.16.2")
    assert parse_version("v1.20.0-dev", "qdrant").release == (1, 20, 0)
    with pytest.raises(ServerVersionError, match="major.minor"):
        parse_version("nightly", "qdrant")


# -- through qdrant-client against the fake ------------------------------------------------
def test_upserts_are_split_by_bytes_and_measured_exactly(fake_qdrant):
    backend = server(fake_qdrant, request_budget=4 * MIB)
    backend.create_collection("docs", WIDE)
    backend.upsert("docs", wide_batch(120))
    sent = fake_qdrant.points_requests()
    assert len(sent) >= 2 and all(r.body_bytes <= 4 * MIB for r in sent)
    assert [p["id"] for r in sent for p in r.body["points"]] == list(range(120))
    # the planned size of each request is the body the client sent, to the byte
    from qdrant_client import models
    points = [models.PointStruct(**p) for r in sent for p in r.body["points"]]
    shape = rest_shape(points)
    starts = np.cumsum([0] + [len(r.body["points"]) for r in sent])
    assert [request_bytes(shape, range(a, b)) for a, b in zip(starts, starts[1:])] == [r.body_bytes for r in sent]


def test_the_old_fixed_count_chunk_would_overflow_the_server_limit(fake_qdrant):
    """Corrupting check: a budget above the server's limit sends a body the server refuses (413)."""
    fake_qdrant.max_body = 4 * MIB
    backend = server(fake_qdrant, request_budget=16 * MIB)
    backend.create_collection("docs", WIDE)
    with pytest.raises(BackendError, match="413") as caught:
        backend.upsert("docs", wide_batch(120))
    assert not caught.value.retriable
    within = server(fake_qdrant, request_budget=4 * MIB)
    within.upsert("docs", wide_batch(120))  # the same points fit when the budget respects the limit


def test_a_point_over_the_budget_is_refused_before_anything_is_sent(fake_qdrant):
    backend = server(fake_qdrant, request_budget=256 * 1024)  # a wide point is ~83 KB
    backend.create_collection("docs", WIDE)
    batch = wide_batch(5)
    batch.payloads[3] = {"text": "x" * 200_000}
    with pytest.raises(RequestTooLargeError, match=r"point 3 alone makes a \d+-byte REST JSON upsert request"):
        backend.upsert("docs", batch)
    assert fake_qdrant.points_requests() == []


def test_503_is_retried_and_400_is_not(fake_qdrant):
    sleeps: list[float] = []
    policy = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05, sleep=sleeps.append)
    backend = server(fake_qdrant)
    backend.create_collection("docs", CollectionSchema((Resolution("v", 8),)))
    batch = Batch(ids=[1, 2], vectors={"v": np.ones((2, 8), dtype=np.float32)})
    fake_qdrant.fail_next = [503, 503]
    retrying(backend, policy).upsert("docs", batch)
    assert len(fake_qdrant.points_requests()) == 3 and len(sleeps) == 2

    fake_qdrant.fail_next = [503] * 10
    with pytest.raises(RetriesExhaustedError, match="after 4 attempts"):
        retrying(backend, policy).upsert("docs", batch)
    assert len(fake_qdrant.points_requests()) == 3 + 4

    fake_qdrant.fail_next = [400]
    with pytest.raises(BackendError, match="400") as caught:
        retrying(backend, policy).upsert("docs", batch)
    assert not caught.value.retriable and len(fake_qdrant.points_requests()) == 3 + 4 + 1


def test_the_timeout_is_honoured_and_retriable(fake_qdrant):
    backend = server(fake_qdrant, timeout=1)
    backend.create_collection("docs", CollectionSchema((Resolution("v", 8),)))
    fake_qdrant.delay = 3.0
    with pytest.raises(BackendError, match="[Tt]imeout|timed out") as caught:
        backend.upsert("docs", Batch(ids=[1], vectors={"v": np.ones((1, 8), dtype=np.float32)}))
    assert caught.value.retriable
    assert fake_qdrant.replies_done < len(fake_qdrant.requests)  # the client gave up before the reply


def test_an_old_server_is_refused_at_connect_before_any_write(fake_qdrant):
    fake_qdrant.version = "1.15.3"
    with pytest.raises(ServerVersionError, match=r"1\.15\.3 is too old.*>= 1\.16"):
        server(fake_qdrant)
    assert [(r.method, r.path) for r in fake_qdrant.requests] == [("GET", "/")]
    fake_qdrant.version = "1.16.0"
    assert server(fake_qdrant).server_version == Version("1.16")
    fake_qdrant.version = "v1.16.0-rc.1"  # a pre-release of the first version with collection metadata
    assert server(fake_qdrant).server_version.release == (1, 16, 0)


def test_an_unreachable_server_is_a_retriable_error_with_the_url_masked():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nothing listens there
    with pytest.raises(BackendError) as caught:
        QdrantBackend(url=f"http://admin:s3cret@127.0.0.1:{port}", timeout=2)
    assert caught.value.retriable
    assert "s3cret" not in str(caught.value) and "***@127.0.0.1" in str(caught.value)


def test_hnsw_collections_lower_the_indexing_threshold_and_flat_ones_do_not(fake_qdrant):
    backend = server(fake_qdrant)
    backend.create_collection("graph", CollectionSchema((Resolution("full", 64), Resolution("d16", 16)),
                                                        index=IndexParams(kind="hnsw")))
    backend.create_collection("exact", CollectionSchema((Resolution("full", 64),)))
    created = fake_qdrant.collections
    assert created["graph"]["optimizers_config"] == {"indexing_threshold": INDEXING_THRESHOLD_KB}
    assert created["graph"]["hnsw_config"]["m"] == 16
    assert "optimizers_config" not in created["exact"] and created["exact"]["hnsw_config"]["m"] == 0
    # the schema comes back from the collection metadata on a fresh connection
    reopened = server(fake_qdrant)
    assert reopened.schema("graph") == backend.schema("graph")


def test_local_mode_rejects_server_options_and_keeps_count_chunks(tmp_path):
    with pytest.raises(ConfigError, match="server url"):
        QdrantBackend(path=str(tmp_path / "q"), timeout=5)
    with pytest.raises(ConfigError, match="server url"):
        QdrantBackend(path=":memory:", prefer_grpc=True)
    local = QdrantBackend(path=":memory:")
    local.create_collection("docs", WIDE)
    local.upsert("docs", wide_batch(600))  # no byte planning in local mode: nothing is sent
    assert local.count("docs") == 600 and local.server_version is None
    local.close()


def test_request_json_is_what_the_body_holds(fake_qdrant):
    """The fake's body sizes are bytes of UTF-8 JSON (non-ASCII payloads count double)."""
    backend = server(fake_qdrant)
    backend.create_collection("docs", CollectionSchema((Resolution("v", 2),)))
    backend.upsert("docs", Batch(ids=[1], vectors={"v": np.ones((1, 2), dtype=np.float32)}, payloads=[{"t": "éé"}]))
    (sent,) = fake_qdrant.points_requests()
    assert sent.body_bytes == len(json.dumps(sent.body, separators=(",", ":"), ensure_ascii=False).encode())


def test_open_backend_reads_the_timeout_and_grpc_options_from_env(fake_qdrant, monkeypatch):
    from smec_vdb.adapters import open_backend

    monkeypatch.delenv("QDRANT_API_KEY", raising=False)
    monkeypatch.setenv("QDRANT_TIMEOUT", "1")
    backend = open_backend("qdrant", url=fake_qdrant.url)
    backend.create_collection("docs", CollectionSchema((Resolution("v", 8),)))
    fake_qdrant.delay = 2.5
    with pytest.raises(BackendError, match="[Tt]imeout|timed out"):
        backend.upsert("docs", Batch(ids=[1], vectors={"v": np.ones((1, 8), dtype=np.float32)}))
    monkeypatch.setenv("QDRANT_TIMEOUT", "soon")
    with pytest.raises(ConfigError, match="QDRANT_TIMEOUT"):
        open_backend("qdrant", url=fake_qdrant.url)
    monkeypatch.delenv("QDRANT_TIMEOUT")
    monkeypatch.setenv("QDRANT_PREFER_GRPC", "maybe")
    with pytest.raises(ConfigError, match="QDRANT_PREFER_GRPC"):
        open_backend("qdrant", url=fake_qdrant.url)
    with pytest.raises(ConfigError, match="options of backend 'qdrant'"):
        open_backend("qdrant-edge", path="x", prefer_grpc=True)
    with pytest.raises(ConfigError, match="options of backend 'qdrant'"):
        open_backend("milvus", path="x.db", timeout=5)
