"""Batched search (``SmecCollection.search_many``) and the alias token, on every engine target.

``search_many`` encodes all queries at once and sends each batch as one engine request (qdrant-edge
``query_batch``, Qdrant ``query_batch_points``, one Milvus search of every vector); its answers must be
``search``'s, query by query — ids, scores and payloads, with and without a filter, across batches.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import smec_vdb.collection as collection_module
from capabilities import single_vector
from smec_vdb.backend import Batch, CollectionSchema, Resolution
from smec_vdb.collection import SmecCollection
from smec_vdb.compress.smec import SMECCompressor

D, N, QUERIES = 24, 240, 23


def corpus() -> np.ndarray:
    rng = np.random.default_rng(11)
    x = rng.normal(size=(N + QUERIES, D)) * np.geomspace(2.0, 0.1, D)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_search_many_answers_as_search_does_query_by_query(target, new_name, tmp_path, monkeypatch):
    backend = target.open()
    x = corpus()
    docs, queries = x[:N], x[N:]
    comp = SMECCompressor.from_pca(torch.from_numpy(docs), [12, 6]).eval()
    multi = not single_vector(backend)
    col = SmecCollection.create(backend, new_name(), comp, dims=[12, 6] if multi else [6], keep_full=multi,
                                payload_indexes={"g": "integer"})
    col.upsert(list(range(N)), docs, [{"g": i % 3, "name": f"doc {i}"} for i in range(N)])
    monkeypatch.setattr(collection_module, "SEARCH_BATCH", 10)  # three engine requests for 23 queries
    for flt, with_payload in ((None, True), ({"g": 1}, False), ({"g": [1, 2]}, True)):
        many = col.search_many(queries, 5, candidates=30, filter=flt, with_payload=with_payload)
        assert len(many) == QUERIES
        for q, got in zip(queries, many):
            one = col.search(q, 5, candidates=30, filter=flt, with_payload=with_payload)
            assert [h.id for h in got] == [h.id for h in one]
            np.testing.assert_allclose([h.score for h in got], [h.score for h in one], rtol=1e-5, atol=1e-6)
            assert [h.payload for h in got] == [h.payload for h in one]
            if flt is not None:
                assert all(h.id % 3 >= 1 for h in got)


def test_the_alias_token_moves_with_every_alias_change(target, new_name):
    backend = target.open()
    if not backend.supports_aliases:
        pytest.skip(f"{target.name} has no aliases")
    a, b, alias = new_name(), new_name(), new_name()
    for name in (a, b):
        backend.create_collection(name, CollectionSchema((Resolution("v", 4),)))
        backend.upsert(name, Batch([1, 2], {"v": np.eye(2, 4, dtype=np.float32) + 0.1}))
    seen = [backend.alias_version()]
    for change in (lambda: backend.create_alias(alias, a), lambda: backend.create_alias(alias, b),
                   lambda: backend.delete_alias(alias)):
        change()
        seen.append(backend.alias_version())
        assert seen[-1] != seen[-2]
