"""An ``hnsw`` collection on qdrant-edge is searched on its graph, whatever its size (issue 23).

The engine's default indexing threshold (10,000 KB per segment) left collections of a few MB graph-less,
so every search was a plain scan and ``ef`` changed nothing; the adapter builds the graph from 1 KB, and
``full_scan_threshold_kb=0`` makes the engine walk it. ``SmecCollection.search(ef=...)`` and
``search_many(ef=...)`` reach the coarse stage.
"""

from __future__ import annotations

import numpy as np
import torch

from smec_vdb.adapters.qdrant_edge import QdrantEdgeBackend
from smec_vdb.backend import IndexParams
from smec_vdb.collection import SmecCollection
from smec_vdb.compress.smec import SMECCompressor

N, D, QUERIES = 4000, 64, 40


def test_a_small_hnsw_collection_walks_its_graph_and_ef_reaches_it(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((N + QUERIES, D)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    docs, queries = x[:N], x[N:]
    backend = QdrantEdgeBackend(tmp_path / "store")
    comp = SMECCompressor.from_pca(torch.from_numpy(docs), [32]).eval()
    index = IndexParams(kind="hnsw", m=16, ef_construct=100, ef_search=10, full_scan_threshold_kb=0)
    col = SmecCollection.create(backend, "c", comp, dims=[32], index=index)
    col.upsert(list(range(N)), docs)
    backend.optimize("c")
    _, shard = backend._shard("c")
    assert shard.info().indexed_vectors_count >= N  # the coarse graph exists (1 MB of vectors per segment at most)
    narrow = [[h.id for h in col.search(q, 10, candidates=10, ef=10, with_payload=False)] for q in queries]
    wide = [[h.id for h in col.search(q, 10, candidates=10, ef=2000, with_payload=False)] for q in queries]
    default = [[h.id for h in col.search(q, 10, candidates=10, with_payload=False)] for q in queries]
    assert narrow == default  # the schema's ef_search is the default
    assert narrow != wide  # a graph walk: a scan would answer the same at every ef
    for ef, one_by_one in ((10, narrow), (2000, wide)):  # the batched path passes ef on too
        assert [[h.id for h in hits] for hits in col.search_many(queries, 10, candidates=10, ef=ef,
                                                                 with_payload=False)] == one_by_one
    backend.close()
