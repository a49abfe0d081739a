"""Exact cosine top-k search and two-stage (coarse low-dim, rerank full-dim) search for evaluation.

Vectors are expected L2-normalised (the inner product is then the cosine). Queries are scored in
chunks so memory stays bounded; the top-k keeps trec_eval's order (score descending, then document
id descending) and leaves out a document whose id equals the query id, as BEIR does. Two-stage
search is the coarse-to-fine scheme the paper motivates (§1): shortlist with the compressed
vectors, then rerank the shortlist with the full ones (:func:`smec_vdb.search.cascade`).

Example::

    run = exact_search(query_vecs, doc_vecs, doc_ids, query_ids, k=100)
    run2 = two_stage_search(q_low, d_low, query_vecs, doc_vecs, doc_ids, query_ids, candidates=100, k=100)
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from smec_vdb.backend import SearchStage
from smec_vdb.errors import ConfigError, DataError, DimensionError
from smec_vdb.search import cascade

QUERY_CHUNK_ROWS = 256


def exact_search(
    queries: np.ndarray,
    docs: np.ndarray,
    doc_ids: Sequence[str],
    query_ids: Sequence[str],
    *,
    k: int,
    chunk_rows: int = QUERY_CHUNK_ROWS,
) -> dict[str, dict[str, float]]:
    """Top-``k`` documents per query by inner product: {query id: {doc id: score}} in rank order."""
    _check_inputs(queries, docs, doc_ids, query_ids, k)
    doc_matrix_t = np.ascontiguousarray(docs, dtype=np.float32).T
    id_order = _descending_id_order(doc_ids)
    doc_row = {d: i for i, d in enumerate(doc_ids)}
    run: dict[str, dict[str, float]] = {}
    for start in range(0, len(query_ids), chunk_rows):
        scores = np.asarray(queries[start : start + chunk_rows], dtype=np.float32) @ doc_matrix_t
        for i, query_id in enumerate(query_ids[start : start + chunk_rows]):
            top = _top_k(scores[i], k, id_order, doc_row.get(query_id))
            run[query_id] = {doc_ids[j]: float(scores[i, j]) for j in top}
    return run


def two_stage_search(
    coarse_queries: np.ndarray,
    coarse_docs: np.ndarray,
    full_queries: np.ndarray,
    full_docs: np.ndarray,
    doc_ids: Sequence[str],
    query_ids: Sequence[str],
    *,
    candidates: int,
    k: int,
) -> dict[str, dict[str, float]]:
    """Shortlist ``candidates`` docs per query at the coarse dim, rerank them by full-dim score, keep ``k``."""
    if candidates < k:
        raise ConfigError(f"candidates ({candidates}) must be >= k ({k}): the rerank can only reorder the shortlist")
    _check_inputs(full_queries, full_docs, doc_ids, query_ids, k)
    if coarse_docs.shape[0] != full_docs.shape[0] or coarse_queries.shape[0] != full_queries.shape[0]:
        raise DimensionError(
            f"coarse and full vectors must have the same rows: docs {coarse_docs.shape[0]} vs {full_docs.shape[0]}, "
            f"queries {coarse_queries.shape[0]} vs {full_queries.shape[0]}"
        )
    shortlist = exact_search(coarse_queries, coarse_docs, doc_ids, query_ids, k=candidates)
    doc_row = {d: i for i, d in enumerate(doc_ids)}
    id_order = _descending_id_order(doc_ids)
    full = {"full": full_docs}
    run: dict[str, dict[str, float]] = {}
    for qi, query_id in enumerate(query_ids):
        rows = np.fromiter((doc_row[d] for d in shortlist[query_id]), dtype=np.int64)
        stage = SearchStage("full", np.asarray(full_queries[qi], dtype=np.float32), k)
        kept, scores = cascade([stage], full, "dot", rows=rows, tie_order=id_order)
        run[query_id] = {doc_ids[r]: float(s) for r, s in zip(kept.tolist(), scores.tolist())}
    return run


def _top_k(scores: np.ndarray, k: int, id_order: np.ndarray, self_row: int | None) -> np.ndarray:
    """Rows of the ``k`` best scores, ties (also at the cut) broken by doc id descending; skip ``self_row``."""
    if self_row is not None:
        scores = scores.copy()
        scores[self_row] = -np.inf
    n = scores.shape[0] - (self_row is not None)
    k = min(k, n)
    if k == 0:
        return np.empty(0, dtype=np.int64)
    kth = np.partition(scores, scores.shape[0] - k)[scores.shape[0] - k]
    cand = np.flatnonzero(scores >= kth)
    order = np.lexsort((-id_order[cand], -scores[cand]))
    return cand[order[:k]]


def _descending_id_order(doc_ids: Sequence[str]) -> np.ndarray:
    """For each doc, its position when ids are sorted ascending: higher means earlier in a tie."""
    positions = np.empty(len(doc_ids), dtype=np.int64)
    positions[np.argsort(np.asarray(doc_ids, dtype=object), kind="stable")] = np.arange(len(doc_ids))
    return positions


def _check_inputs(
    queries: np.ndarray, docs: np.ndarray, doc_ids: Sequence[str], query_ids: Sequence[str], k: int
) -> None:
    if k < 1:
        raise ConfigError(f"k must be >= 1, found {k}")
    if queries.ndim != 2 or docs.ndim != 2:
        raise DimensionError(f"expected 2-D query and doc matrices, found shapes {queries.shape} and {docs.shape}")
    if queries.shape[1] != docs.shape[1]:
        raise DimensionError(f"query dim {queries.shape[1]} differs from doc dim {docs.shape[1]}")
    if docs.shape[0] != len(doc_ids):
        raise DataError(f"{docs.shape[0]} doc vectors but {len(doc_ids)} doc ids")
    if queries.shape[0] != len(query_ids):
        raise DataError(f"{queries.shape[0]} query vectors but {len(query_ids)} query ids")
