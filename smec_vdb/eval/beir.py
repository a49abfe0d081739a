"""Load a BEIR dataset with precomputed embeddings (the layout of ``../shared/data/beir``).

Layout read here (``corpus.jsonl`` / ``queries.jsonl`` texts are not needed)::

    <root>/qrels/<split>.tsv                 header "query-id  corpus-id  score", grade > 0 relevant
    <root>/embeddings/<model>/corpus.npy     (n_docs, dim), rows aligned with corpus_ids.json
    <root>/embeddings/<model>/queries.npy    (n_queries, dim), rows aligned with query_ids.json

Float32 matrices are memory-mapped, so loading a large corpus costs no RAM until it is read.

Example::

    ds = load_beir("scifact", "minilm-l6-v2")
    query_ids, queries = ds.split_queries("test")
    ds.qrels["test"]["1"]                     # {"31715818": 1.0}
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from smec_vdb.errors import DataError
from smec_vdb.train.labels import read_qrels

SHARED_DATA_ENV = "SMEC_VDB_SHARED_DATA"


def shared_data_dir() -> Path:
    """The shared data folder: ``$SMEC_VDB_SHARED_DATA``, else ``<repo>/../shared/data``."""
    configured = os.environ.get(SHARED_DATA_ENV)
    if configured:
        return Path(configured)
    repo = Path(__file__).resolve().parents[2]
    return repo.parent / "shared" / "data"


@dataclass(frozen=True)
class BeirDataset:
    """Corpus and query embeddings of one BEIR dataset for one embedding model, with its qrels."""

    name: str
    model: str
    corpus_ids: list[str]
    corpus: np.ndarray
    query_ids: list[str]
    queries: np.ndarray
    qrels: dict[str, dict[str, dict[str, float]]]
    _query_row: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_query_row", {q: i for i, q in enumerate(self.query_ids)})

    @property
    def dim(self) -> int:
        return int(self.corpus.shape[1])

    def split_queries(self, split: str) -> tuple[list[str], np.ndarray]:
        """Ids and embeddings (float32) of the queries judged in ``split``, in qrels order."""
        ids = list(self.split_qrels(split))
        rows = [self._query_row[q] for q in ids]
        return ids, np.asarray(self.queries[rows], dtype=np.float32)

    def split_qrels(self, split: str) -> dict[str, dict[str, float]]:
        if split not in self.qrels:
            raise DataError(f"{self.name} has no '{split}' split: found {sorted(self.qrels)}")
        return self.qrels[split]


def load_beir(dataset: str | Path, model: str, *, data_dir: str | Path | None = None) -> BeirDataset:
    """Load ``dataset`` (a name under ``<data_dir>/beir`` or a path) with the embeddings of ``model``."""
    root = Path(dataset)
    if not root.is_dir():
        base = Path(data_dir) if data_dir is not None else shared_data_dir()
        root = base / "beir" / str(dataset)
    if not root.is_dir():
        raise DataError(f"BEIR dataset not found: {root} (set {SHARED_DATA_ENV} or pass a dataset path)")
    emb_dir = root / "embeddings" / model
    if not emb_dir.is_dir():
        found = sorted(p.name for p in (root / "embeddings").glob("*")) if (root / "embeddings").is_dir() else []
        raise DataError(f"no embeddings for model '{model}' under {root / 'embeddings'}: found {found}")
    corpus_ids = _read_ids(emb_dir / "corpus_ids.json")
    query_ids = _read_ids(emb_dir / "query_ids.json")
    corpus = _read_matrix(emb_dir / "corpus.npy", len(corpus_ids))
    queries = _read_matrix(emb_dir / "queries.npy", len(query_ids))
    if corpus.shape[1] != queries.shape[1]:
        raise DataError(f"corpus dim {corpus.shape[1]} differs from query dim {queries.shape[1]} in {emb_dir}")
    qrels = {p.stem: read_qrels(p) for p in sorted((root / "qrels").glob("*.tsv"))}
    if not qrels:
        raise DataError(f"no qrels/<split>.tsv files under {root}")
    known_queries = set(query_ids)
    for split, judged in qrels.items():
        unknown = [q for q in judged if q not in known_queries]
        if unknown:
            raise DataError(
                f"{root.name}/{split}: {len(unknown)} judged queries have no embedding in query_ids.json "
                f"(first: {unknown[0]!r})"
            )
    return BeirDataset(root.name, model, corpus_ids, corpus, query_ids, queries, qrels)


def _read_ids(path: Path) -> list[str]:
    if not path.is_file():
        raise DataError(f"id list not found: {path}")
    try:
        ids = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(ids, list) or not all(isinstance(i, (str, int)) for i in ids):
        raise DataError(f"{path}: expected a JSON list of string ids")
    ids = [str(i) for i in ids]
    if len(set(ids)) != len(ids):
        raise DataError(f"{path}: {len(ids) - len(set(ids))} duplicate ids")
    return ids


def _read_matrix(path: Path, rows: int) -> np.ndarray:
    if not path.is_file():
        raise DataError(f"embedding file not found: {path}")
    try:
        matrix = np.load(path, mmap_mode="r")
    except (ValueError, OSError) as e:
        raise DataError(f"{path} is not a readable .npy file: {e}") from None
    if matrix.ndim != 2 or matrix.shape[0] != rows:
        raise DataError(f"{path}: expected shape ({rows}, dim) to match its id list, found {matrix.shape}")
    if matrix.dtype.kind != "f":
        raise DataError(f"{path}: expected float embeddings, found dtype {matrix.dtype}")
    return matrix if matrix.dtype == np.float32 else np.asarray(matrix, dtype=np.float32)
