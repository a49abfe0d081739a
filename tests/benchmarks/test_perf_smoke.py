"""Smoke test of benchmarks/perf.py: the report's structure and the helpers its figures rest on.

No timing is asserted (the machine is shared); only that a quick encode run writes well-formed
JSON/markdown and that exact top-k, recall, layouts and the candidates ladder are right.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from benchmark_scripts import load_benchmark


@pytest.fixture(scope="module")
def perf():
    return load_benchmark("perf")


def test_quick_encode_run_writes_json_and_markdown(perf, tmp_path):
    assert perf.main(["--quick", "--threads", "1", "--sections", "encode", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "perf-quick.json").read_text())
    rows = results["encode"]["rows"]
    expected = {(f"{d_in}->{d}", b) for d_in, dims in perf.ENCODE_SHAPES for d in dims for b in perf.ENCODE_BATCHES}
    assert {(r["shape"], r["batch"]) for r in rows} == expected
    for r in rows:
        assert r["smec_vps"] > 0 and r["torch_gemm_vps"] > 0 and r["numpy_gemm_vps"] > 0
        assert r["meets_target"] == (r["ratio_vs_torch"] >= perf.ENCODE_TARGET)
    assert set(results["encode"]["batch1_profile"]) == {"3584->128 batch 1", "384->96 batch 1"}
    assert results["torch_threads"] == 1 and len(results["load_average_start"]) == 3
    assert "## 1. Encode" in (tmp_path / "perf-quick.md").read_text()


def test_unknown_section_is_refused(perf, tmp_path):
    with pytest.raises(SystemExit):
        perf.main(["--quick", "--sections", "encode,nope", "--out", str(tmp_path)])


def test_exact_topk_and_recall(perf):
    rng = np.random.default_rng(0)
    corpus = perf.unit(rng.standard_normal((500, 16)).astype(np.float32))
    queries = perf.unit(rng.standard_normal((7, 16)).astype(np.float32))
    top = perf.exact_topk(corpus, queries, 10)
    brute = np.argsort(-(queries @ corpus.T), axis=1, kind="stable")[:, :10]
    np.testing.assert_array_equal(top, brute)
    assert perf.recall(brute.tolist(), top) == 1.0
    half = [row[:5].tolist() + [-1] * 5 for row in brute]
    assert perf.recall(half, top) == 0.5


def test_layout_bytes_counts_float32_per_resolution(perf):
    rows = perf.layout_bytes(3584, (512, 128))
    assert [(r["layout"], r["vector_bytes_per_point"]) for r in rows] == [
        ("full + 512 + 128", 4 * (3584 + 512 + 128)), ("512 + 128", 4 * 640), ("128", 512)]


def test_candidate_ladder_starts_at_first_value_reaching_target(perf):
    assert perf.candidate_ladder({100: 0.95, 200: 0.991, 400: 1.0}) == [200, 400]
    assert perf.candidate_ladder({100: 0.9, 200: 0.95}) == [200]


def test_clustered_vectors_are_unit_rows(perf):
    x = perf.clustered(300, 64, seed=0, latent=16, clusters=5)
    assert x.shape == (300, 64) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-5)
