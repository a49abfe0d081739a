"""Cross-engine congruence (issue 3): the same data and queries give the same top-10 on every exact target."""

from __future__ import annotations

import numpy as np
import pytest

from smec_vdb.adapters import Batch, CollectionSchema, Resolution, SearchStage


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
