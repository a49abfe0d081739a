"""nDCG@k / recall@k against hand-computed values, with the BEIR / trec_eval conventions."""

import math

import pytest

from smec_vdb.errors import ConfigError, DataError
from smec_vdb.eval.metrics import evaluate, ndcg_at_k, rank_documents, recall_at_k

L3 = math.log2(3)


def test_ndcg_idcg_counts_every_judged_doc_not_only_retrieved():
    # DCG = 1/log2(3); IDCG over judged {d4: 2, d2: 1} = 2 + 1/log2(3), though d4 was never retrieved.
    got = ndcg_at_k(["d1", "d2", "d3"], {"d2": 1, "d4": 2}, k=3)
    assert got == pytest.approx((1 / L3) / (2 + 1 / L3))
    assert got == pytest.approx(0.239812, abs=1e-6)


def test_ndcg_uses_linear_graded_gain():
    # Linear gain: (1 + 2/log2 3) / (2 + 1/log2 3) = 0.85972; exponential gain would give 0.79671.
    assert ndcg_at_k(["b", "a"], {"a": 2, "b": 1}, k=10) == pytest.approx(0.859719, abs=1e-6)


def test_ndcg_ignores_grade_zero_and_ranks_past_the_cutoff():
    ranked = [f"x{i}" for i in range(10)] + ["rel"]
    assert ndcg_at_k(ranked, {"rel": 1, "x0": 0}, k=10) == 0.0
    assert ndcg_at_k(ranked, {"rel": 1}, k=11) == pytest.approx(1 / math.log2(12))


def test_ndcg_ideal_is_capped_at_k():
    # Three relevant docs but k=1: a relevant doc at rank 1 is a perfect score.
    assert ndcg_at_k(["a"], {"a": 1, "b": 1, "c": 1}, k=1) == 1.0


def test_recall_counts_relevant_docs_in_top_k():
    judged = {"a": 1, "b": 2, "c": 1, "z": 0}
    assert recall_at_k(["a", "x", "b", "c"], judged, k=3) == pytest.approx(2 / 3)
    assert recall_at_k(["z"], judged, k=10) == 0.0
    assert recall_at_k(["a"], {"z": 0}, k=10) == 0.0


def test_ties_break_on_doc_id_descending_like_trec_eval():
    assert rank_documents({"a": 0.5, "b": 0.5, "c": 0.9}) == ["c", "b", "a"]
    # string order, not numeric: "9" > "10"
    assert rank_documents({"10": 0.3, "9": 0.3}) == ["9", "10"]
    run = {"q": {"a": 0.5, "b": 0.5}}
    assert evaluate(run, {"q": {"a": 1}}, ndcg_at=(1,), recall_at=())["ndcg@1"] == 0.0
    assert evaluate(run, {"q": {"b": 1}}, ndcg_at=(1,), recall_at=())["ndcg@1"] == 1.0


def test_retrieved_doc_with_the_query_id_is_dropped():
    run = {"q1": {"q1": 0.99, "d1": 0.5}}
    assert rank_documents(run["q1"], "q1") == ["d1"]
    assert evaluate(run, {"q1": {"d1": 1}}, ndcg_at=(1,), recall_at=(1,)) == {"ndcg@1": 1.0, "recall@1": 1.0}


def test_evaluate_averages_over_judged_queries_including_ones_without_relevant_docs():
    run = {"q1": {"d1": 0.9}, "q2": {"d2": 0.9}, "q3": {"d3": 0.1}}
    qrels = {"q1": {"d1": 1}, "q2": {"d9": 0}}  # q3 is not judged: ignored; q2 has no relevant doc: 0
    assert evaluate(run, qrels, ndcg_at=(10,), recall_at=(100,)) == {"ndcg@10": 0.5, "recall@100": 0.5}


def test_evaluate_rejects_missing_queries_and_bad_cutoffs():
    with pytest.raises(DataError, match="1 of 2 judged queries have no retrieval results"):
        evaluate({"q1": {}}, {"q1": {"d": 1}, "q2": {"d": 1}})
    with pytest.raises(DataError, match="empty"):
        evaluate({}, {})
    with pytest.raises(ConfigError, match="k must be >= 1"):
        ndcg_at_k(["a"], {"a": 1}, k=0)
