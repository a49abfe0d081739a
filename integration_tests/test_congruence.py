"""Cross-engine congruence (issue 3): the same data and queries give the same top-10 on every exact target."""

from __future__ import annotations

import numpy as np
import pytest

from smec_vdb.adapters import Batch, CollectionSchema, Resolution, SearchStage
from smec_vdb.engines import capabilities


@pytest.mark.parametrize("distance", ["cosine", "euclid"])
def test_same_top10_on_every_embedded_target(embedded_targets, distance):
    rng = np.random.default_rng(11)
    full = rng.normal(size=(500, 32)).astype(np.float32)
    vectors = {"full": full, "d8": np.ascontiguousarray(full[:, :8])}
    schema = CollectionSchema((Resolution("full", 32), Resolution("d8", 8)), distance=distance)
    payloads = [{"group": f"g{i % 3}"} for i in range(500)]
    queries = rng.normal(size=(5, 32)).astype(np.float32)

    results = {}
    for target in embedded_targets:
        backend = target.open()
        backend.create_collection("congruence", schema)
        backend.upsert("congruence", Batch(list(range(500)), vectors, payloads))
        results[target.name] = [
            (
                backend.search("congruence", "full", q, 10),
                backend.search_stages("congruence", [SearchStage("d8", q[:8], 50), SearchStage("full", q, 10)]),
                backend.search("congruence", "full", q, 10, filter={"group": "g1"}),
            )
            for q in queries
        ]

    reference_name, reference = next(iter(results.items()))
    for name, per_query in results.items():
        for expected, got in zip(reference, per_query):
            for want, have in zip(expected, got):
                assert [h.id for h in have] == [h.id for h in want], f"{name} differs from {reference_name}"
                np.testing.assert_allclose([h.score for h in have], [h.score for h in want], rtol=1e-4, atol=1e-5)


# -- filters: one meaning on every engine (smec_vdb.filters) -------------------------------------
FILTER_PAYLOADS = [
    {"x": 1}, {"x": 1.0}, {"x": True}, {"x": [1, 2]}, {"x": "1"}, {"x": {"y": 1}}, {"x": 2}, {}, {"x": [True]},
    {"x": 1.5}, {"a": {"b": 1}}, {"a.b": 1}, {"x": False}, {"x": 0}, {"x": ["s", "t"]}, {"x": "s"},
    {"a": {"b": "en", "c": 3}}, {"x": -3, "k": "v"},
]
# (filter, needs boolean matching): the expected ids come from smec_vdb.filters.matches, the reference
FILTER_CASES = [
    ({"x": 1}, False), ({"x": 1.0}, False), ({"x": True}, True), ({"x": False}, True), ({"x": [1, 2]}, False),
    ({"x": "1"}, False), ({"x": "s"}, False), ({"x": ["s", 1.5]}, False), ({"x": {"$in": [0, "t"]}}, False),
    ({"x": {"$eq": 2}}, False), ({"x": {"$gt": 1}}, False), ({"x": {"$gte": 0, "$lt": 1.5}}, False),
    ({"x": {"$lte": -3}}, False), ({"a.b": 1}, False), ({"a.b": "en", "a.c": {"$gte": 3}}, False),
    ({"$or": [{"x": "s"}, {"x": 2}]}, False), ({"$and": [{"x": {"$gte": 1}}, {"x": {"$lt": 2}}]}, False),
    ({"$not": {"x": 1}}, False), ({"$not": {"$or": [{"x": "s"}, {"a.b": 1}]}}, False),
    ({"x": {"$gte": -5}, "k": "v"}, False), ({"$or": [{"$not": {"x": 1}}, {"x": 1}]}, False),
]


def _filter_ids(backend, flt):
    query = np.ones(4, dtype=np.float32)
    hits = backend.search("filters", "full", query, len(FILTER_PAYLOADS), filter=flt)
    staged = backend.search_stages(
        "filters", [SearchStage("d2", query[:2], len(FILTER_PAYLOADS)), SearchStage("full", query, len(FILTER_PAYLOADS))],
        filter=flt,
    )
    assert sorted(h.id for h in staged) == sorted(h.id for h in hits)
    return sorted(h.id for h in hits)


def test_every_filter_means_the_same_on_every_embedded_target(embedded_targets):
    from smec_vdb.errors import ConfigError
    from smec_vdb.filters import matches, parse

    rng = np.random.default_rng(5)
    full = rng.normal(size=(len(FILTER_PAYLOADS), 4)).astype(np.float32)
    schema = CollectionSchema((Resolution("full", 4), Resolution("d2", 2)))
    batch = Batch(list(range(len(FILTER_PAYLOADS))), {"full": full, "d2": np.ascontiguousarray(full[:, :2])}, FILTER_PAYLOADS)
    backends = []
    for target in embedded_targets:
        backend = target.open()
        backend.create_collection("filters", schema)
        backend.upsert("filters", batch)
        backends.append(backend)
    for flt, needs_booleans in FILTER_CASES:
        expected = [i for i, p in enumerate(FILTER_PAYLOADS) if matches(parse(flt), p)]
        assert expected, f"case {flt} selects nothing: it would not test the engines"
        for backend in backends:
            if needs_booleans and not capabilities(backend.target).bool_filters:  # ENGINES.md: edge reads a bool match as 1
                with pytest.raises(ConfigError, match="boolean"):
                    _filter_ids(backend, flt)
                continue
            assert _filter_ids(backend, flt) == expected, f"{backend.target}: filter {flt}"


def test_a_filter_keeps_its_limit_when_the_engine_conflates_booleans(embedded_targets):
    """Milvus compares true == 1: the adapter must drop those rows and still return ``limit`` hits."""
    n = 60
    payloads = [{"x": True} if i < 40 else {"x": 1} for i in range(n)]  # the nearest 40 are the impostors
    full = np.tile(np.array([1.0, 0.0, 0.0, 0.0], dtype=np.float32), (n, 1))
    full[:, 1] = np.linspace(0.0, 1.0, n, dtype=np.float32)
    schema = CollectionSchema((Resolution("full", 4), Resolution("d2", 2)))
    for target in embedded_targets:
        backend = target.open()
        backend.create_collection("limit", schema)
        backend.upsert("limit", Batch(list(range(n)), {"full": full, "d2": np.ascontiguousarray(full[:, :2])}, payloads))
        hits = backend.search("limit", "full", full[0], 5, filter={"x": 1})
        assert [h.id for h in hits] == [40, 41, 42, 43, 44], target.name
