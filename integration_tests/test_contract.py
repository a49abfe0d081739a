"""The Backend contract (smec_vdb/backend.py), run against every engine target (issue 3).

Each test takes the ``backend`` (or ``target``) fixture, parametrised over qdrant-local,
qdrant-edge, milvus-lite and, when reachable, qdrant-server, milvus-server and milvus-lite-server.
Scenarios with several vector fields are, on a single-vector server (Milvus < 2.4), an assertion
that they are refused ("capabilities.needs_multi_vector"); test_servers.py covers that server's
single-vector paths.
"""

from __future__ import annotations

import json
import uuid

import numpy as np
import pytest

from capabilities import needs_multi_vector
from smec_vdb.adapters import Batch, CollectionSchema, Resolution, SearchStage, iterate_points
from smec_vdb.engines import capabilities
from smec_vdb.search import similarity
from smec_vdb.errors import (
    CollectionExistsError,
    CollectionNotFoundError,
    ConfigError,
    DimensionError,
    InvalidVectorError,
)

WIDTHS = {"full": 16, "d8": 8, "d4": 4}


def make_schema(distance: str = "cosine", id_type: str = "int") -> CollectionSchema:
    return CollectionSchema(
        resolutions=tuple(Resolution(n, d) for n, d in WIDTHS.items()), distance=distance, id_type=id_type
    )


def make_vectors(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Nested-prefix vectors, like a Matryoshka compressor's outputs."""
    full = np.random.default_rng(seed).normal(size=(n, WIDTHS["full"])).astype(np.float32)
    return {name: np.ascontiguousarray(full[:, :dim]) for name, dim in WIDTHS.items()}


def make_payloads(n: int) -> list[dict]:
    return [{"group": f"g{i % 5}", "rank": i % 7, "weight": float(i % 3) / 2, "flag": i % 2 == 0} for i in range(n)]


def fill(backend, name: str, n: int = 200, distance: str = "cosine", seed: int = 0, batch: int = 1000):
    backend.create_collection(name, make_schema(distance))
    vectors, payloads = make_vectors(n, seed), make_payloads(n)
    for start in range(0, n, batch):
        rows = slice(start, start + batch)
        backend.upsert(
            name, Batch(list(range(start, min(n, start + batch))), {k: v[rows] for k, v in vectors.items()}, payloads[rows])
        )
    return vectors, payloads


def direction(vector: np.ndarray, distance: str) -> np.ndarray:
    """What a round trip must preserve: the vector, or for cosine its direction (Qdrant stores v/|v|, Milvus v)."""
    return vector / np.linalg.norm(vector) if distance == "cosine" else vector


@needs_multi_vector
def test_create_schema_exists_and_list(backend, new_name):
    name = new_name()
    assert not backend.exists(name)
    schema = CollectionSchema(
        (Resolution("full", 16), Resolution("d4", 4)), distance="dot", payload_indexes={"group": "keyword"}
    )
    backend.create_collection(name, schema)
    assert backend.exists(name) and name in backend.list_collections()
    stored = backend.schema(name)
    assert [(r.name, r.dim) for r in stored.resolutions] == [("full", 16), ("d4", 4)]
    assert stored.distance == "dot" and stored.id_type == "int"
    with pytest.raises(CollectionExistsError):
        backend.create_collection(name, schema)
    assert backend.count(name) == 0


@pytest.mark.parametrize("distance", ["cosine", "dot", "euclid"])
@needs_multi_vector
def test_round_trip_scroll(backend, new_name, distance):
    name = new_name()
    vectors, payloads = fill(backend, name, n=50, distance=distance)
    points = [p for batch, _ in iterate_points(backend, name, batch_size=16) for p in batch]
    assert [p.id for p in points] == list(range(50))  # stable order by id
    for p in points:
        assert p.payload == payloads[p.id]
        assert set(p.vectors) == set(WIDTHS)
        for vector_name, matrix in vectors.items():
            np.testing.assert_allclose(
                direction(p.vectors[vector_name], distance), direction(matrix[p.id], distance), rtol=1e-5, atol=1e-6
            )


@needs_multi_vector
def test_scroll_selected_vectors_and_none(backend, new_name):
    name = new_name()
    fill(backend, name, n=10)
    points, _ = backend.scroll(name, limit=10, with_vectors=["d4"])
    assert all(set(p.vectors) == {"d4"} for p in points)
    points, _ = backend.scroll(name, limit=10, with_vectors=False)
    assert all(p.vectors == {} for p in points) and len(points) == 10


@needs_multi_vector
def test_ten_thousand_points_with_payloads(target, new_name):
    backend = target.open(bulk=True)
    name = new_name()
    fill(backend, name, n=10_000, batch=2_000)
    assert backend.count(name) == 10_000
    seen = [p.id for batch, _ in iterate_points(backend, name, batch_size=2_500, with_vectors=False) for p in batch]
    assert len(seen) == 10_000 and set(seen) == set(range(10_000))


@needs_multi_vector
def test_resumable_scroll(backend, new_name):
    name = new_name()
    fill(backend, name, n=60)
    first, cursor = [], None
    for _ in range(3):  # stop mid-way, checkpoint the cursor as JSON
        points, cursor = backend.scroll(name, cursor=cursor, limit=7, with_vectors=False)
        first += [p.id for p in points]
    saved = json.loads(json.dumps({"cursor": cursor}))["cursor"]
    rest = [p.id for batch, _ in iterate_points(backend, name, batch_size=7, with_vectors=False, cursor=saved) for p in batch]
    assert len(first) + len(rest) == 60 and set(first) | set(rest) == set(range(60))
    assert not set(first) & set(rest)


def test_missing_collection(backend, new_name):
    name = new_name()
    vectors = make_vectors(1)
    for call in (
        lambda: backend.count(name),
        lambda: backend.schema(name),
        lambda: backend.scroll(name),
        lambda: backend.search(name, "d4", vectors["d4"][0], 3),
        lambda: backend.upsert(name, Batch([1], vectors)),
        lambda: backend.get_metadata(name, "manifest"),
    ):
        with pytest.raises(CollectionNotFoundError):
            call()
    backend.drop(name)  # a no-op
    assert not backend.exists(name)


@needs_multi_vector
def test_dimension_mismatch_writes_nothing(backend, new_name):
    name = new_name()
    backend.create_collection(name, make_schema())
    vectors = make_vectors(5)
    wrong = {**vectors, "d8": np.zeros((5, 7), dtype=np.float32)}
    with pytest.raises(DimensionError, match="d8"):
        backend.upsert(name, Batch(list(range(5)), wrong))
    missing = {k: v for k, v in vectors.items() if k != "full"}
    with pytest.raises(DimensionError, match="full"):
        backend.upsert(name, Batch(list(range(5)), missing))
    with pytest.raises(DimensionError):
        backend.search(name, "d4", np.zeros(5, dtype=np.float32), 3)
    assert backend.count(name) == 0


@needs_multi_vector
def test_nan_vectors_write_nothing(backend, new_name):
    name = new_name()
    backend.create_collection(name, make_schema())
    vectors = make_vectors(5)
    vectors["d8"][3, 2] = np.nan
    with pytest.raises(InvalidVectorError, match="3"):
        backend.upsert(name, Batch(list(range(5)), vectors))
    assert backend.count(name) == 0


@needs_multi_vector
def test_duplicate_ids_upsert_overwrites(backend, new_name):
    name = new_name()
    backend.create_collection(name, make_schema("dot"))
    a, b = make_vectors(3, seed=1), make_vectors(3, seed=2)
    backend.upsert(name, Batch([1, 2, 3], a, [{"v": "old"}] * 3))
    backend.upsert(name, Batch([3, 4, 4], b, [{"v": "new"}, {"v": "first"}, {"v": "last"}]))  # last wins in a batch
    assert backend.count(name) == 4
    by_id = {p.id: p for p in backend.retrieve(name, [1, 3, 4])}
    assert by_id[1].payload == {"v": "old"} and by_id[3].payload == {"v": "new"} and by_id[4].payload == {"v": "last"}
    np.testing.assert_allclose(by_id[3].vectors["full"], b["full"][0], rtol=1e-5)
    np.testing.assert_allclose(by_id[4].vectors["full"], b["full"][2], rtol=1e-5)


@needs_multi_vector
def test_retrieve_by_ids_in_order(backend, new_name):
    name = new_name()
    vectors, payloads = fill(backend, name, n=30, distance="euclid")
    points = backend.retrieve(name, [17, 999, 3, 25], with_vectors=["d8"])
    assert [p.id for p in points] == [17, 3, 25]
    for p in points:
        assert set(p.vectors) == {"d8"} and p.payload == payloads[p.id]
        np.testing.assert_allclose(p.vectors["d8"], vectors["d8"][p.id], rtol=1e-5)


@pytest.mark.parametrize("id_type, ids", [
    ("str", ["doc-1", str(uuid.UUID(int=7)), "Ünïcode id", "123", "A1B2C3D4-0000-0000-0000-000000000000"]),
    ("int", [0, 5, 2**40, 123456789]),
])
@needs_multi_vector
def test_ids_round_trip(backend, new_name, id_type, ids):
    name = new_name()
    backend.create_collection(name, make_schema("dot", id_type=id_type))
    vectors = make_vectors(len(ids))
    backend.upsert(name, Batch(ids, vectors, [{"n": i} for i in range(len(ids))]))
    scrolled = {p.id: p.payload for batch, _ in iterate_points(backend, name, batch_size=2) for p in batch}
    assert scrolled == {pid: {"n": i} for i, pid in enumerate(ids)}
    assert [p.id for p in backend.retrieve(name, ids[::-1])] == ids[::-1]
    hits = backend.search(name, "full", vectors["full"][2], 1)
    assert hits[0].id == ids[2] and hits[0].payload == {"n": 2}


def brute_force(vectors, payloads, query, name, k, distance, keep=None):
    rows = np.arange(len(payloads)) if keep is None else np.array([i for i in range(len(payloads)) if keep(payloads[i])])
    scores = similarity(distance, query, vectors[name][rows])
    order = np.argsort(-scores, kind="stable")[:k]
    return rows[order].tolist(), scores[order]


@pytest.mark.parametrize("distance", ["cosine", "euclid", "dot"])
@needs_multi_vector
def test_search_matches_numpy(backend, new_name, distance):
    name = new_name()
    vectors, payloads = fill(backend, name, n=300, distance=distance)
    query = make_vectors(1, seed=99)
    hits = backend.search(name, "full", query["full"][0], 10)
    ids, scores = brute_force(vectors, payloads, query["full"][0], "full", 10, distance)
    assert [h.id for h in hits] == ids
    np.testing.assert_allclose([h.score for h in hits], scores, rtol=1e-4, atol=1e-5)
    assert hits[0].payload == payloads[ids[0]]
    assert backend.search(name, "full", query["full"][0], 3, with_payload=False)[0].payload is None


@pytest.mark.parametrize("distance", ["cosine", "euclid"])
@needs_multi_vector
def test_search_stages_matches_numpy(backend, new_name, distance):
    name = new_name()
    vectors, payloads = fill(backend, name, n=400, distance=distance)
    q = make_vectors(1, seed=7)
    query = {k: v[0] for k, v in q.items()}

    # 2 stages: d4 top 60 → full top 10
    hits = backend.search_stages(name, [SearchStage("d4", query["d4"], 60), SearchStage("full", query["full"], 10)])
    cand, _ = brute_force(vectors, payloads, query["d4"], "d4", 60, distance)
    scores = similarity(distance, query["full"], vectors["full"][cand])
    order = np.argsort(-scores, kind="stable")[:10]
    assert [h.id for h in hits] == [cand[i] for i in order]
    np.testing.assert_allclose([h.score for h in hits], scores[order], rtol=1e-4, atol=1e-5)

    # 3 stages: d4 top 80 → d8 top 30 → full top 5
    stages = [SearchStage("d4", query["d4"], 80), SearchStage("d8", query["d8"], 30), SearchStage("full", query["full"], 5)]
    hits = backend.search_stages(name, stages)
    cand, _ = brute_force(vectors, payloads, query["d4"], "d4", 80, distance)
    s8 = similarity(distance, query["d8"], vectors["d8"][cand])
    cand = [cand[i] for i in np.argsort(-s8, kind="stable")[:30]]
    s16 = similarity(distance, query["full"], vectors["full"][cand])
    expected = [cand[i] for i in np.argsort(-s16, kind="stable")[:5]]
    assert [h.id for h in hits] == expected
    assert all(h.payload == payloads[h.id] for h in hits)


@needs_multi_vector
def test_search_stages_with_filter(backend, new_name):
    name = new_name()
    vectors, payloads = fill(backend, name, n=300)
    query = {k: v[0] for k, v in make_vectors(1, seed=5).items()}
    hits = backend.search_stages(
        name, [SearchStage("d4", query["d4"], 40), SearchStage("full", query["full"], 5)], filter={"group": "g2"}
    )
    cand, _ = brute_force(vectors, payloads, query["d4"], "d4", 40, "cosine", keep=lambda p: p["group"] == "g2")
    scores = similarity("cosine", query["full"], vectors["full"][cand])
    assert [h.id for h in hits] == [cand[i] for i in np.argsort(-scores, kind="stable")[:5]]
    assert all(h.payload["group"] == "g2" for h in hits)


@pytest.mark.parametrize("filter, keep", [
    ({"group": "g3"}, lambda p: p["group"] == "g3"),
    ({"rank": 4}, lambda p: p["rank"] == 4),
    ({"group": ["g1", "g4"]}, lambda p: p["group"] in ("g1", "g4")),
    ({"rank": [0, 6]}, lambda p: p["rank"] in (0, 6)),
    ({"weight": 0.5}, lambda p: p["weight"] == 0.5),
    ({"group": "g2", "rank": [1, 2, 3]}, lambda p: p["group"] == "g2" and p["rank"] in (1, 2, 3)),
], ids=["str-eq", "int-eq", "str-any", "int-any", "float-eq", "and"])
@needs_multi_vector
def test_filters(backend, new_name, filter, keep):
    name = new_name()
    vectors, payloads = fill(backend, name, n=200)
    query = make_vectors(1, seed=3)["full"][0]
    hits = backend.search(name, "full", query, 15, filter=filter)
    expected, _ = brute_force(vectors, payloads, query, "full", 15, "cosine", keep=keep)
    assert [h.id for h in hits] == expected and all(keep(h.payload) for h in hits)


@needs_multi_vector
def test_bool_filter(backend, new_name):
    name = new_name()
    vectors, payloads = fill(backend, name, n=100)
    query = make_vectors(1, seed=3)["full"][0]
    if not capabilities(backend.target).bool_filters:  # qdrant-edge-py 0.9.0: a typed error, not wrong hits
        with pytest.raises(ConfigError, match="boolean"):
            backend.search(name, "full", query, 5, filter={"flag": True})
        return
    hits = backend.search(name, "full", query, 5, filter={"flag": True})
    expected, _ = brute_force(vectors, payloads, query, "full", 5, "cosine", keep=lambda p: p["flag"])
    assert [h.id for h in hits] == expected


@needs_multi_vector
def test_metadata_lifecycle(target, new_name):
    backend = target.open()
    name = new_name()
    backend.create_collection(name, make_schema())
    manifest = {"hash": "abc123", "dims": [8, 4], "nested": {"x": 1.5}}
    assert backend.get_metadata(name, "manifest") is None
    backend.set_metadata(name, "manifest", manifest)
    backend.set_metadata(name, "checkpoint", {"cursor": 17})
    backend.set_metadata(name, "checkpoint", {"cursor": 42})  # replaced as a whole
    assert backend.get_metadata(name, "manifest") == manifest
    assert backend.get_metadata(name, "checkpoint") == {"cursor": 42}
    backend.set_metadata(name, "checkpoint", None)
    assert backend.get_metadata(name, "checkpoint") is None
    backend.close()
    reopened = target.open()
    assert reopened.get_metadata(name, "manifest") == manifest
    assert reopened.count(name) == 0  # metadata is never a visible point
    reopened.drop(name)
    reopened.create_collection(name, make_schema())
    assert reopened.get_metadata(name, "manifest") is None


@needs_multi_vector
def test_reopen_persistence(target, new_name):
    backend = target.open()
    name = new_name()
    vectors, payloads = fill(backend, name, n=120, distance="euclid")
    backend.close()
    reopened = target.open()
    assert name in reopened.list_collections() and reopened.count(name) == 120
    assert reopened.schema(name).distance == "euclid"
    hits = reopened.search(name, "full", vectors["full"][11], 1)
    assert hits[0].id == 11 and hits[0].payload == payloads[11]


@needs_multi_vector
def test_aliases_create_switch_resolve(backend, new_name):
    if not capabilities(backend.target).aliases:
        pytest.skip(f"{backend.target} does not support aliases")
    old, new, alias = new_name(), new_name(), new_name()
    fill(backend, old, n=20, seed=1)
    fill(backend, new, n=30, seed=2)
    assert backend.resolve_alias(alias) is None
    backend.create_alias(alias, old)
    assert backend.resolve_alias(alias) == old and backend.count(alias) == 20
    assert backend.aliases(old) == [alias] and backend.aliases(new) == []
    backend.create_alias(alias, new)  # switch
    assert backend.resolve_alias(alias) == new and backend.count(alias) == 30
    assert backend.aliases(old) == [] and backend.aliases(new) == [alias]
    assert len(backend.search(alias, "d4", make_vectors(1)["d4"][0], 3)) == 3
    backend.delete_alias(alias)
    assert backend.resolve_alias(alias) is None and backend.aliases(new) == []
    with pytest.raises(CollectionNotFoundError):
        backend.create_alias(alias, new_name())
