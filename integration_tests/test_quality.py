"""Coarse-to-fine quality on real embeddings: SciFact corpus (MiniLM 384-d) with a SMEC compressor.

Top-10 of the collection's coarse-to-fine search (coarse on d64, re-scored on full) must match
exact full-dim numpy top-10 with recall >= 0.99 at the default candidates, on every target.
"""

from __future__ import annotations

import numpy as np
import pytest

from capabilities import needs_multi_vector
from smec_vdb.collection import SmecCollection
from smec_vdb.eval.beir import load_beir, shared_data_dir
from smec_vdb.train import train
from smec_vdb.train.config import TrainConfig

pytestmark = pytest.mark.shared_data
N_QUERIES = 300


@pytest.fixture(scope="module")
def scifact():
    root = shared_data_dir() / "beir" / "scifact"
    if not root.is_dir():
        pytest.skip(f"SciFact embeddings absent: {root} not found (set SMEC_VDB_SHARED_DATA)")
    return load_beir(root, "minilm-l6-v2")


@pytest.fixture(scope="module")
def compressor(scifact):
    return train(scifact.corpus, [128, 64], config=TrainConfig(epochs=2, seed=0))


@needs_multi_vector
def test_coarse_to_fine_recall_vs_exact(target, scifact, compressor, new_name):
    backend = target.open(bulk=True)
    corpus = scifact.corpus
    col = SmecCollection.create(backend, new_name(), compressor, dims=[64], keep_full=True)
    ids = list(range(len(corpus)))
    for start in range(0, len(ids), 1000):
        col.upsert(ids[start : start + 1000], corpus[start : start + 1000],
                   [{"doc": scifact.corpus_ids[i]} for i in ids[start : start + 1000]])
    assert col.count() == len(corpus)
    queries = scifact.split_queries("test")[1][:N_QUERIES]
    unit = corpus / np.linalg.norm(corpus, axis=1, keepdims=True)
    exact = np.argsort(-(queries @ unit.T), axis=1, kind="stable")[:, :10]
    recalls = []
    for q, truth in zip(queries, exact):
        hits = col.search(q, k=10)
        assert len(hits) == 10 and hits[0].payload["doc"] == scifact.corpus_ids[hits[0].id]
        recalls.append(len(set(truth.tolist()) & {h.id for h in hits}) / 10)
    recall = float(np.mean(recalls))
    assert recall >= 0.99, f"coarse-to-fine recall@10 vs exact = {recall:.4f} on {target.name}"
