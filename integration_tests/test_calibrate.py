"""Candidates calibrated per collection (smec_vdb.calibrate) on a real engine (qdrant-edge).

The collection's own search is measured against exact full-dim search over its ``full`` vectors:
the chosen count reaches the target on the queries it was chosen on, the count below it does not,
and the second, held-out query set reaches the target too; the count becomes the search default.
A target no count can reach is a CalibrationError and records nothing.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from smec_vdb.adapters import open_backend
from smec_vdb.baselines.truncation import TruncationCompressor
from smec_vdb.calibrate import Reference, calibrate, exact_neighbours, smallest_passing, store
from smec_vdb.collection import COMPRESSOR_KEY, SmecCollection
from smec_vdb.compress.smec import SMECCompressor
from smec_vdb.errors import CalibrationError

D, N = 32, 3000


def corpus() -> np.ndarray:
    rng = np.random.default_rng(5)
    basis, _ = np.linalg.qr(rng.normal(size=(D, D)))
    spectrum = np.geomspace(3.0, 0.02, D)
    centres = rng.normal(size=(60, D)) * spectrum
    x = (centres[rng.integers(0, 60, N)] + 0.6 * rng.normal(size=(N, D)) * spectrum) @ basis.T
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def store_with(tmp_path_factory):
    """A qdrant-edge store holding ``smec`` (full + SMEC d8) and ``trunc`` (full + truncation d2)."""
    root = tmp_path_factory.mktemp("calibrate")
    docs = corpus()
    backend = open_backend("qdrant-edge", path=str(root / "edge"))
    comps = {"smec": (SMECCompressor.from_pca(torch.from_numpy(docs), [8]).eval(), 8, True),
             "trunc": (TruncationCompressor(D, [2]), 2, True),
             "coarse_only": (SMECCompressor.from_pca(torch.from_numpy(docs), [8]).eval(), 8, False)}
    for name, (comp, dim, keep_full) in comps.items():
        comp.save(root / name)
        SmecCollection.create(backend, name, comp, dims=[dim], keep_full=keep_full,
                              compressor_path=root / name).upsert(list(range(N)), docs)
    yield backend, docs
    backend.close()


def test_smallest_passing_bisects_from_the_start_either_way():
    for threshold in (1, 7, 40, 41, 100, 300):
        calls: list[int] = []
        assert smallest_passing(lambda c, t=threshold, seen=calls: seen.append(c) or c >= t, 40, 1, 300) == threshold
        assert len(calls) <= 12
    assert smallest_passing(lambda c: False, 40, 1, 300) is None


def test_exact_neighbours_exclude_the_query_and_match_brute_force(store_with):
    backend, docs = store_with
    ids = [3, 77, 1500]
    got = exact_neighbours(Reference(backend, "smec"), ids, docs[ids], 10)
    scores = docs[ids] @ docs.T
    for row, qid, truth in zip(scores, ids, got):
        row[qid] = -np.inf
        assert truth == np.argsort(-row, kind="stable")[:10].tolist()


def test_calibration_picks_the_smallest_count_that_meets_the_target_on_held_out_queries(store_with):
    backend, _ = store_with
    col = SmecCollection.open(backend, "smec")
    result = calibrate(col, Reference(backend, "smec"), target=0.99, queries=150)
    c = result.candidates
    assert c is not None and result.tried[c] >= 0.99 and c > result.k + 1
    assert c - 1 in result.tried  # the count below was tried and missed (less the margin)
    assert result.held_out["queries"] == 150 and result.held_out["recall"] >= 0.99
    assert result.held_out["p50_ms"] > 0
    store(col, result)
    assert backend.get_metadata("smec", COMPRESSOR_KEY)["search"]["candidates"] == c
    reopened = SmecCollection.open(backend, "smec")
    assert reopened.default_candidates(10) == c and reopened.default_candidates(20) == max(20, -(-c * 20 // 10))
    q = corpus()[11]
    assert [h.id for h in reopened.search(q, 10)] == [h.id for h in reopened.search(q, 10, candidates=c)]


def test_an_unreachable_target_is_a_typed_error_and_records_nothing(store_with):
    backend, _ = store_with
    col = SmecCollection.open(backend, "trunc")
    before = backend.get_metadata("trunc", COMPRESSOR_KEY)
    with pytest.raises(CalibrationError, match=r"recall@10 reaches 0\.\d+ \(less 3 standard errors: 0\.\d+\) at 299 coarse candidates .* below the target 0.99"):
        calibrate(col, Reference(backend, "trunc"), target=0.99, queries=100)
    assert backend.get_metadata("trunc", COMPRESSOR_KEY) == before and "search" not in before
    with pytest.raises(CalibrationError, match="within"):
        calibrate(col, Reference(backend, "trunc"), target=1.5)


def test_one_resolution_has_no_count_to_choose_and_the_cli_asks_for_the_source(store_with, tmp_path):
    backend, _ = store_with
    col = SmecCollection.open(backend, "coarse_only")
    result = calibrate(col, Reference(backend, "smec"), queries=50)  # the truth from another copy of the vectors
    assert result.candidates is None and result.record() is None and 0 < result.held_out["recall"] < 1
    store = str(backend.store)
    backend.close()  # one process per qdrant-edge shard
    proc = subprocess.run([sys.executable, "-m", "smec_vdb.cli.app", "calibrate", "-c", "coarse_only", "--path", store],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and proc.stderr.startswith("error: 'coarse_only' stores no full vector") \
        and "give --source" in proc.stderr and proc.stderr.count("\n") == 1
