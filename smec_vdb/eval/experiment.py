"""Train a compression method on a BEIR dataset and score it at each dim: what `smec-vdb eval` and
``benchmarks/quality.py`` share.

Leakage rules (issue 5): unsupervised methods see corpus vectors only; supervised ones also see
the ``train`` split's queries and qrels, and select their model on the ``dev`` split where the
dataset has one (else on held-out train queries); the evaluated split's queries are never used.
Methods, and whether the seed or the labels matter to them, come from the method registry. Supervised figures carry a note on
how many documents relevant to the evaluated queries are also relevant to training queries.

Example::

    ds = load_beir("scifact", "minilm-l6-v2")
    rows = run_method(ds, MethodSpec("pca", "pca"), dims=[128, 64, 32], seeds=[0])
    rows[1].mean("ndcg@10")                 # PCA at 64-d, ≈ 0.540
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from smec_vdb.compress.base import Compressor
from smec_vdb.compress.registry import method_class
from smec_vdb.eval.beir import BeirDataset
from smec_vdb.eval.metrics import evaluate
from smec_vdb.eval.report import ResultRow
from smec_vdb.eval.retrieval import exact_search, two_stage_search
from smec_vdb.errors import ConfigError
from smec_vdb.train import train
from smec_vdb.train.config import TrainConfig
from smec_vdb.train.labels import RankingExamples, build_ranking_examples

FULL = "full"
DEV_SPLIT = "dev"
RERANK_METRIC = "rerank ndcg@10"
RETRIEVAL_DEPTH = 100


@dataclass(frozen=True)
class MethodSpec:
    """One line of a comparison: a training method, supervised or not, with TrainConfig overrides."""

    label: str
    method: str
    supervised: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def stochastic(self) -> bool:
        """Whether the seed changes the result (so it is worth several seeds)."""
        return method_class(self.method).stochastic


def training_qrels(
    ds: BeirDataset, split: str = "train", max_relevant: int | None = None, max_queries: int | None = None,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """``split``'s qrels, optionally trimmed to bound the cost of the rank loss: queries with more than
    ``max_relevant`` relevant docs are left out (every candidate row is padded to the widest query),
    then a seeded sample of ``max_queries`` is kept. Whole queries go, so no relevant doc is ever
    mistaken for a negative."""
    qrels = ds.split_qrels(split)
    if max_relevant is not None:
        qrels = {q: judged for q, judged in qrels.items() if sum(g > 0 for g in judged.values()) <= max_relevant}
    if max_queries is not None and len(qrels) > max_queries:
        keep = np.random.default_rng(seed).choice(sorted(qrels), size=max_queries, replace=False)
        qrels = {q: qrels[q] for q in sorted(keep)}
    return qrels


def relevant_overlap(
    ds: BeirDataset, train_split: str = "train", eval_split: str = "test",
    train_qrels: Mapping[str, Mapping[str, float]] | None = None,
) -> tuple[int, int]:
    """(documents relevant to ``eval_split`` queries that are also relevant to the training queries
    — ``train_qrels`` when given, else all of ``train_split`` —, all of the former)."""
    def relevant(qrels: Mapping[str, Mapping[str, float]]) -> set[str]:
        return {d for judged in qrels.values() for d, g in judged.items() if g > 0}

    evaluated = relevant(ds.split_qrels(eval_split))
    trained = relevant(train_qrels if train_qrels is not None else ds.split_qrels(train_split))
    return len(evaluated & trained), len(evaluated)


def overlap_note(
    ds: BeirDataset, train_split: str = "train", eval_split: str = "test",
    train_qrels: Mapping[str, Mapping[str, float]] | None = None,
) -> str:
    shared, total = relevant_overlap(ds, train_split, eval_split, train_qrels)
    used = f" (the {len(train_qrels):,} training queries used)" if train_qrels is not None else ""
    return f"overlap: {shared:,} of {total:,} {eval_split}-relevant docs are also {train_split}-relevant{used}"


def ranking_examples(
    ds: BeirDataset, split: str = "train", hard_negatives: int = 100,
    qrels: Mapping[str, Mapping[str, float]] | None = None,
) -> RankingExamples:
    """Labelled examples for the rank loss (eq. 8) from ``split``'s queries and qrels (or ``qrels``,
    e.g. from :func:`training_qrels`)."""
    query_ids, query_vectors = ds.split_queries(split)
    return build_ranking_examples(query_vectors, ds.corpus, dict(qrels if qrels is not None else ds.split_qrels(split)),
                                  query_ids, ds.corpus_ids, hard_negatives=hard_negatives)


def validation_examples(ds: BeirDataset, hard_negatives: int = 100,
                        max_relevant: int | None = None) -> RankingExamples | None:
    """The dev split's examples for supervised model selection, or None when the dataset has no dev split."""
    if DEV_SPLIT not in ds.qrels:
        return None
    return ranking_examples(ds, DEV_SPLIT, hard_negatives, qrels=training_qrels(ds, DEV_SPLIT, max_relevant))


def train_compressor(
    ds: BeirDataset,
    spec: MethodSpec,
    dims: Sequence[int],
    config: TrainConfig,
    examples: RankingExamples | None = None,
    progress: Callable | None = None,
    validation: RankingExamples | None = None,
) -> tuple[Compressor, float]:
    """Train ``spec`` on the corpus vectors (plus ``examples`` and ``validation`` when supervised);
    returns (compressor, seconds)."""
    started = time.perf_counter()
    compressor = train(np.array(ds.corpus), list(dims), method=spec.method,
                       config=replace(config, **dict(spec.options)),
                       examples=examples if spec.supervised else None, progress=progress,
                       validation=validation if spec.supervised else None)
    return compressor, time.perf_counter() - started


def score_dims(
    ds: BeirDataset,
    encode: Callable[[np.ndarray, int], np.ndarray],
    dims: Sequence[int],
    *,
    split: str = "test",
    rerank_candidates: int | None = RETRIEVAL_DEPTH,
) -> dict[int, dict[str, float]]:
    """nDCG@10 and recall@100 of exact search at each dim; with ``rerank_candidates`` also the
    two-stage nDCG@10 (shortlist at that dim, rerank on the full vectors)."""
    query_ids, queries = ds.split_queries(split)
    qrels = ds.split_qrels(split)
    corpus = np.array(ds.corpus, dtype=np.float32)  # a writable copy of the memory map
    scores: dict[int, dict[str, float]] = {}
    for dim in dims:
        low_docs, low_queries = encode(corpus, dim), encode(queries, dim)
        run = exact_search(low_queries, low_docs, ds.corpus_ids, query_ids, k=RETRIEVAL_DEPTH)
        scores[dim] = evaluate(run, qrels, ndcg_at=(10,), recall_at=(RETRIEVAL_DEPTH,))
        if rerank_candidates and dim < ds.dim:
            reranked = two_stage_search(low_queries, low_docs, queries, corpus, ds.corpus_ids, query_ids,
                                        candidates=rerank_candidates, k=10)
            scores[dim][RERANK_METRIC] = evaluate(reranked, qrels, ndcg_at=(10,), recall_at=())["ndcg@10"]
    return scores


def full_dim_row(ds: BeirDataset, split: str = "test") -> ResultRow:
    """The uncompressed reference: exact search on the input embeddings."""
    metrics = score_dims(ds, lambda x, dim: x, [ds.dim], split=split)[ds.dim]
    return ResultRow(ds.name, ds.model, FULL, ds.dim, {m: [v] for m, v in metrics.items()})


def run_method(
    ds: BeirDataset,
    spec: MethodSpec,
    dims: Sequence[int],
    seeds: Sequence[int],
    config: TrainConfig | None = None,
    *,
    examples: RankingExamples | None = None,
    validation: RankingExamples | None = None,
    train_qrels: Mapping[str, Mapping[str, float]] | None = None,
    split: str = "test",
    rerank_candidates: int | None = RETRIEVAL_DEPTH,
    progress: Callable | None = None,
    on_trained: Callable[[int, Compressor, float], None] | None = None,
) -> list[ResultRow]:
    """Train ``spec`` once per seed (once if deterministic), score every dim; one row per dim.

    Supervised methods train on ``examples``, else on ones built from ``train_qrels`` (default: the
    whole train split), and select on ``validation`` (default: the dev split when there is one);
    the overlap note counts the same training queries.
    ``on_trained(seed, compressor, seconds)`` is called after each training run (e.g. to record
    its per-stage epochs and wall time)."""
    config = config or TrainConfig()
    if spec.supervised and split == "train":
        raise ConfigError("supervised methods train on the 'train' split: evaluate them on another split")
    if spec.supervised and not method_class(spec.method).uses_labels:
        raise ConfigError(f"method {spec.method!r} does not train on labels: it cannot run supervised")
    if spec.supervised and examples is None:
        examples = ranking_examples(ds, hard_negatives=config.rank_negatives, qrels=train_qrels)
    if spec.supervised and validation is None:
        validation = validation_examples(ds, config.rank_negatives)
    note = overlap_note(ds, eval_split=split, train_qrels=train_qrels) if spec.supervised else ""
    rows = {d: ResultRow(ds.name, ds.model, spec.label, d, {}, [], note) for d in dims}
    for seed in (seeds if spec.stochastic else seeds[:1]):
        compressor, seconds = train_compressor(ds, spec, dims, replace(config, seed=seed), examples, progress,
                                               validation)
        if on_trained is not None:
            on_trained(seed, compressor, seconds)
        for dim, metrics in score_dims(ds, compressor.encode, dims, split=split,
                                       rerank_candidates=rerank_candidates).items():
            for name, value in metrics.items():
                rows[dim].metrics.setdefault(name, []).append(value)
            rows[dim].train_seconds.append(seconds)
    return list(rows.values())
