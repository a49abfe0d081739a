"""Labelled ranking examples for the supervised rank loss (eq. 8), built from BEIR-style qrels.

Each query gets a fixed candidate list: every judged document with a known id, then the
``hard_negatives`` documents most cosine-similar to the query in the full-dim space that are
not judged relevant (grade 0). Rows are padded to one width; ``mask`` marks real candidates.

Example::

    qrels = read_qrels("scifact/qrels/train.tsv")
    ex = build_ranking_examples(q_vecs, doc_vecs, qrels, query_ids, doc_ids, hard_negatives=100)
    ex.candidates.shape    # (n_queries_with_labels, C)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from smec_vdb.errors import DataError

HARD_NEGATIVE_CHUNK = 1024


@dataclass(frozen=True)
class RankingExamples:
    """query_vectors (Q, D) float32; candidates (Q, C) int64 row indices into the doc vectors;
    grades (Q, C) float32; mask (Q, C) bool (False = padding); query_ids the Q query ids."""

    query_vectors: np.ndarray
    candidates: np.ndarray
    grades: np.ndarray
    mask: np.ndarray
    query_ids: tuple[str, ...]

    def __post_init__(self) -> None:
        q = self.query_vectors.shape[0]
        shapes = {self.candidates.shape, self.grades.shape, self.mask.shape}
        if len(shapes) != 1 or self.candidates.shape[0] != q or len(self.query_ids) != q:
            raise DataError(
                f"ranking examples disagree: {q} query vectors, {len(self.query_ids)} ids, "
                f"candidates {self.candidates.shape}, grades {self.grades.shape}, mask {self.mask.shape}"
            )

    def __len__(self) -> int:
        return self.query_vectors.shape[0]

    def subset(self, rows: np.ndarray) -> "RankingExamples":
        return RankingExamples(
            self.query_vectors[rows], self.candidates[rows], self.grades[rows], self.mask[rows],
            tuple(self.query_ids[i] for i in rows),
        )


def read_qrels(path: str | Path) -> dict[str, dict[str, float]]:
    """Read a BEIR qrels TSV (header ``query-id  corpus-id  score``) into {qid: {docid: grade}}."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read qrels {path}: {e}") from e
    qrels: dict[str, dict[str, float]] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if number == 1 and fields[0].strip().lower() in ("query-id", "query_id", "qid"):
            continue
        if len(fields) != 3:
            raise DataError(f"{path} line {number}: expected 3 tab-separated fields (query-id, corpus-id, score), found {len(fields)}: {line!r}")
        qid, docid, score = (f.strip() for f in fields)
        try:
            grade = float(score)
        except ValueError:
            raise DataError(f"{path} line {number}: score {score!r} is not a number") from None
        if not np.isfinite(grade):
            raise DataError(f"{path} line {number}: score {score!r} is not finite")
        if not qid or not docid:
            raise DataError(f"{path} line {number}: empty query or corpus id")
        qrels.setdefault(qid, {})[docid] = grade
    if not qrels:
        raise DataError(f"{path} holds no qrels rows")
    return qrels


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def build_ranking_examples(
    query_vectors: np.ndarray,
    doc_vectors: np.ndarray,
    qrels: dict[str, dict[str, float]],
    query_ids: Sequence[str],
    doc_ids: Sequence[str],
    hard_negatives: int = 100,
) -> RankingExamples:
    """Candidates per query = judged docs + top ``hard_negatives`` unjudged-relevant docs by full-dim cosine.

    Queries without any qrel on a known document are dropped; judgements on unknown query or
    document ids are ignored. Raises DataError when nothing is left or shapes disagree.
    """
    query_vectors = np.asarray(query_vectors)
    doc_vectors = np.asarray(doc_vectors)
    if query_vectors.ndim != 2 or doc_vectors.ndim != 2 or query_vectors.shape[1] != doc_vectors.shape[1]:
        raise DataError(f"query vectors {query_vectors.shape} and doc vectors {doc_vectors.shape} must be 2-D of one width")
    if len(query_ids) != query_vectors.shape[0]:
        raise DataError(f"{len(query_ids)} query ids for {query_vectors.shape[0]} query vectors")
    if len(doc_ids) != doc_vectors.shape[0]:
        raise DataError(f"{len(doc_ids)} doc ids for {doc_vectors.shape[0]} doc vectors")
    doc_row = {str(d): i for i, d in enumerate(doc_ids)}
    query_row = {str(q): i for i, q in enumerate(query_ids)}

    kept: list[tuple[str, int, dict[int, float]]] = []
    for qid, judged in qrels.items():
        if qid not in query_row:
            continue
        rows = {doc_row[d]: g for d, g in judged.items() if d in doc_row}
        if any(g > 0 for g in rows.values()):
            kept.append((qid, query_row[qid], rows))
    if not kept:
        raise DataError(
            f"no qrel matches a known query id with a relevant known document "
            f"({len(qrels)} qrel queries, {len(query_ids)} query ids, {len(doc_ids)} doc ids): check the id files"
        )

    q = _normalise(query_vectors[[r for _, r, _ in kept]])
    docs = _normalise(doc_vectors)
    n_neg = min(hard_negatives, doc_vectors.shape[0])
    width = max(len(rows) for _, _, rows in kept) + n_neg
    candidates = np.zeros((len(kept), width), dtype=np.int64)
    grades = np.zeros((len(kept), width), dtype=np.float32)
    mask = np.zeros((len(kept), width), dtype=bool)
    for start in range(0, len(kept), HARD_NEGATIVE_CHUNK):
        sims = q[start : start + HARD_NEGATIVE_CHUNK] @ docs.T
        for offset, row_sims in enumerate(sims):
            i = start + offset
            judged = kept[i][2]
            relevant = [d for d, g in judged.items() if g > 0]
            row_sims[relevant] = -np.inf
            take = min(n_neg + len(judged), doc_vectors.shape[0])
            order = np.argpartition(-row_sims, take - 1)[:take]
            order = order[np.argsort(-row_sims[order], kind="stable")]
            negatives = [int(d) for d in order if d not in judged and np.isfinite(row_sims[d])][:n_neg]
            items = sorted(judged.items()) + [(d, 0.0) for d in negatives]
            candidates[i, : len(items)] = [d for d, _ in items]
            grades[i, : len(items)] = [g for _, g in items]
            mask[i, : len(items)] = True
    return RankingExamples(
        np.ascontiguousarray(query_vectors[[r for _, r, _ in kept]], dtype=np.float32),
        candidates, grades, mask, tuple(qid for qid, _, _ in kept),
    )
