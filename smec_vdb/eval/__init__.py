"""Evaluation: BEIR loading, nDCG/recall with BEIR conventions, exact and two-stage search, reports.

Example::

    from smec_vdb.eval import evaluate, exact_search, load_beir
    ds = load_beir("scifact", "minilm-l6-v2")
    ids, q = ds.split_queries("test")
    evaluate(exact_search(q, ds.corpus, ds.corpus_ids, ids, k=100), ds.split_qrels("test"))  # ndcg@10 0.6451
"""

from smec_vdb.eval.beir import BeirDataset, load_beir, shared_data_dir
from smec_vdb.eval.metrics import evaluate, ndcg_at_k, rank_documents, recall_at_k
from smec_vdb.eval.report import ResultRow, markdown_table, plot_ndcg_vs_dims, write_json
from smec_vdb.eval.retrieval import exact_search, two_stage_search

__all__ = [
    "BeirDataset",
    "ResultRow",
    "evaluate",
    "exact_search",
    "load_beir",
    "markdown_table",
    "ndcg_at_k",
    "plot_ndcg_vs_dims",
    "rank_documents",
    "recall_at_k",
    "shared_data_dir",
    "two_stage_search",
    "write_json",
]
