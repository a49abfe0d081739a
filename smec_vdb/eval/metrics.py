"""Retrieval metrics with the BEIR / trec_eval conventions: nDCG@k and recall@k.

The conventions reproduce the published BEIR figures (MTEB's all-MiniLM-L6-v2 SciFact
nDCG@10 = 0.6451) to four decimals:

* gain is the qrel grade itself (linear, not ``2**g - 1``); discount ``1 / log2(rank + 1)``;
* the ideal DCG is taken over *all* judged documents with grade > 0, not only the retrieved ones;
* a retrieved document whose id equals the query id is dropped (BEIR ``ignore_identical_ids``);
* ties are broken like trec_eval: score descending, then document id descending (string order);
* the mean is over the queries of the qrels; a query with no relevant document scores 0.

Example::

    run = {"q1": {"d1": 0.9, "d2": 0.8}}
    qrels = {"q1": {"d2": 1}}
    evaluate(run, qrels, ndcg_at=(10,), recall_at=(100,))  # {"ndcg@10": 0.6309..., "recall@100": 1.0}
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

from smec_vdb.errors import ConfigError, DataError

Qrels = Mapping[str, Mapping[str, float]]
"""query id -> {document id -> graded relevance}; grade > 0 means relevant."""

Run = Mapping[str, Mapping[str, float]]
"""query id -> {document id -> retrieval score}."""


def rank_documents(scores: Mapping[str, float], query_id: str | None = None) -> list[str]:
    """Document ids by score descending, ties by id descending (trec_eval); drop ``query_id`` itself."""
    ranked = sorted(scores.items(), key=lambda item: (item[1], item[0]), reverse=True)
    return [doc_id for doc_id, _ in ranked if doc_id != query_id]


def ndcg_at_k(ranked: Sequence[str], judged: Mapping[str, float], k: int) -> float:
    """nDCG@k of one ranked list: linear gain, log2 discount, IDCG over every judged doc with grade > 0."""
    _check_k(k)
    dcg = sum(max(judged.get(doc_id, 0), 0) / math.log2(rank + 2) for rank, doc_id in enumerate(ranked[:k]))
    ideal_gains = sorted((g for g in judged.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(rank + 2) for rank, g in enumerate(ideal_gains))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranked: Sequence[str], judged: Mapping[str, float], k: int) -> float:
    """Share of the relevant (grade > 0) documents found in the top ``k``."""
    _check_k(k)
    relevant = {doc_id for doc_id, g in judged.items() if g > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranked[:k])) / len(relevant)


def evaluate(
    run: Run,
    qrels: Qrels,
    *,
    ndcg_at: Sequence[int] = (10,),
    recall_at: Sequence[int] = (100,),
) -> dict[str, float]:
    """Mean nDCG@k and recall@k over the queries of ``qrels``: keys like ``"ndcg@10"``, ``"recall@100"``.

    Every query of ``qrels`` must have an entry in ``run`` (an empty one is allowed): a missing
    query is a :class:`DataError`, since silently skipping it would inflate the mean.
    """
    if not qrels:
        raise DataError("no queries to evaluate: the qrels are empty")
    missing = [q for q in qrels if q not in run]
    if missing:
        raise DataError(
            f"{len(missing)} of {len(qrels)} judged queries have no retrieval results (first: {missing[0]!r})"
        )
    totals = {f"ndcg@{k}": 0.0 for k in ndcg_at} | {f"recall@{k}": 0.0 for k in recall_at}
    for query_id, judged in qrels.items():
        ranked = rank_documents(run[query_id], query_id)
        for k in ndcg_at:
            totals[f"ndcg@{k}"] += ndcg_at_k(ranked, judged, k)
        for k in recall_at:
            totals[f"recall@{k}"] += recall_at_k(ranked, judged, k)
    return {name: total / len(qrels) for name, total in totals.items()}


def _check_k(k: int) -> None:
    if k < 1:
        raise ConfigError(f"cut-off k must be >= 1, found {k}")
