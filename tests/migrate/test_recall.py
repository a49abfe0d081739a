"""Recall's parts: the query sample, the streamed exact top-k (and its merge across ranges), the budget."""

from __future__ import annotations

import numpy as np

from smec_vdb.migrate.recall import QueryPicker, TopK, recall, recall_budget

RNG = np.random.default_rng(1)
X = RNG.normal(size=(300, 16)).astype(np.float32)
IDS = [f"p{i}" if i % 3 else i for i in range(300)]


def test_queries_do_not_depend_on_the_order_points_come_in():
    a, b = QueryPicker(20, seed=3), QueryPicker(20, seed=3)
    a.offer(IDS, X)
    order = RNG.permutation(300)
    for chunk in np.array_split(order, 7):
        b.offer([IDS[i] for i in chunk], X[chunk])
    sa, sb = a.sample(16), b.sample(16)
    assert sa.ids == sb.ids and len(sa.ids) == 20 and sa.population == 300
    np.testing.assert_array_equal(sa.vectors, sb.vectors)
    assert QueryPicker(20, seed=4).sample(16).ids == [] and set(sa.ids) != set(_picked(seed=4))


def _picked(seed: int) -> list:
    picker = QueryPicker(20, seed)
    picker.offer(IDS, X)
    return picker.sample(16).ids


def test_streamed_top_k_equals_brute_force_and_merges_across_ranges():
    queries = X[:12]
    unit = X / np.linalg.norm(X, axis=1, keepdims=True)
    truth = np.argsort(-(unit[:12] @ unit.T), axis=1)[:, :11]
    whole, left, right = TopK(queries, 11), TopK(queries, 11), TopK(queries, 11)
    for chunk in np.array_split(np.arange(300), 9):
        whole.add([IDS[i] for i in chunk], X[chunk])
    left.add(IDS[:140], X[:140])
    right.add(IDS[140:], X[140:])
    merged = left.merge(TopK.from_json(right.to_json(), queries, 11))
    for q in range(12):
        assert whole.ranked(q) == [IDS[i] for i in truth[q]] == merged.ranked(q)


def test_recall_leaves_the_query_out_and_counts_overlap():
    from smec_vdb.migrate.recall import QuerySample

    sample = QuerySample([IDS[0]], X[:1], 300)
    exact = TopK(X[:1], 11)
    exact.add(IDS, X)
    truth = exact.ranked(0)
    assert truth[0] == IDS[0]
    assert recall(sample, exact, [truth])[0] == 1.0
    assert recall(sample, exact, [truth[:1] + truth[6:] + ["x"] * 5])[0] == 0.5


def test_budget_stays_below_a_tenth_of_the_collection():
    assert recall_budget(100, 10, 768, 128) == 11
    assert recall_budget(10**6, 10, 768, 128) < 10**5
