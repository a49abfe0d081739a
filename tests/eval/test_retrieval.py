"""Exact and two-stage search: brute-force agreement, trec_eval tie-break at the cut, self-id drop."""

import numpy as np
import pytest

from smec_vdb.errors import ConfigError, DataError, DimensionError
from smec_vdb.eval.retrieval import exact_search, two_stage_search


def _unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    docs, queries = _unit(rng.normal(size=(300, 16))), _unit(rng.normal(size=(20, 16)))
    return docs, queries, [f"d{i}" for i in range(300)], [f"q{i}" for i in range(20)]


def test_exact_search_matches_brute_force_in_rank_order(data):
    docs, queries, doc_ids, query_ids = data
    run = exact_search(queries, docs, doc_ids, query_ids, k=7, chunk_rows=3)
    scores = queries @ docs.T
    for i, q in enumerate(query_ids):
        expected = [doc_ids[j] for j in np.argsort(-scores[i])[:7]]
        assert list(run[q]) == expected
        assert list(run[q].values()) == pytest.approx(np.sort(scores[i])[::-1][:7], abs=1e-6)


def test_ties_at_the_cut_keep_the_higher_doc_id():
    docs = _unit(np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]))
    run = exact_search(_unit(np.array([[1.0, 0.0]])), docs, ["b", "c", "a", "z"], ["q"], k=2)
    assert list(run["q"]) == ["c", "b"]


def test_doc_with_the_query_id_is_never_returned(data):
    docs, _, doc_ids, _ = data
    run = exact_search(docs[:5], docs, doc_ids, doc_ids[:5], k=3)
    for q, hits in run.items():
        assert q not in hits and len(hits) == 3


def test_two_stage_with_every_doc_shortlisted_equals_full_search(data):
    docs, queries, doc_ids, query_ids = data
    low_docs, low_queries = _unit(docs[:, :4]), _unit(queries[:, :4])
    full = exact_search(queries, docs, doc_ids, query_ids, k=10)
    two = two_stage_search(low_queries, low_docs, queries, docs, doc_ids, query_ids, candidates=300, k=10)
    assert {q: list(h) for q, h in two.items()} == {q: list(h) for q, h in full.items()}


def test_two_stage_only_reranks_the_coarse_shortlist(data):
    docs, queries, doc_ids, query_ids = data
    low_docs, low_queries = _unit(docs[:, :4]), _unit(queries[:, :4])
    coarse = exact_search(low_queries, low_docs, doc_ids, query_ids, k=15)
    two = two_stage_search(low_queries, low_docs, queries, docs, doc_ids, query_ids, candidates=15, k=5)
    for q in query_ids:
        assert set(two[q]) <= set(coarse[q])
        assert list(two[q].values()) == sorted(two[q].values(), reverse=True)


def test_bad_inputs_raise_typed_errors(data):
    docs, queries, doc_ids, query_ids = data
    with pytest.raises(DimensionError, match="query dim 4 differs from doc dim 16"):
        exact_search(queries[:, :4], docs, doc_ids, query_ids, k=5)
    with pytest.raises(DataError, match="300 doc vectors but 2 doc ids"):
        exact_search(queries, docs, doc_ids[:2], query_ids, k=5)
    with pytest.raises(ConfigError, match="candidates"):
        two_stage_search(queries, docs, queries, docs, doc_ids, query_ids, candidates=5, k=10)
