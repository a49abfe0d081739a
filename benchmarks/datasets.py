"""The vector sets the query-path and layout benchmarks run on (issue 23), and how alike they are.

- ``debian-minilm-384``: 63,678 real Debian package descriptions, MiniLM-L6 384-d; 1,000 held out as
  queries, 62,678 in the corpus (no qrels: recall against exact search only).
- ``scifact-mpnet-768`` / ``nfcorpus-mpnet-768``: BEIR corpora (5,183 / 3,633 docs) with all-mpnet-base-v2
  768-d embeddings and their test queries (300 / 323) with qrels, for nDCG@10.
- ``synthetic-3584``: LLM-width vectors (Qwen2-7B-based embedders are 3584-d), generated because no real
  set of that width is here. :func:`llm_like` makes them anisotropic and low-rank the way LLM embeddings
  are: a direction shared by all vectors (the mean; pairwise cosines are positive on average), topics as
  clusters in a latent space with a power-law spectrum, embedded by a random orthonormal basis, plus a
  little isotropic noise. :func:`describe` measures the properties that decide how well a low-dim
  projection ranks (mean pairwise cosine, variance in the top principal components, effective rank,
  nearest-neighbour cosine); the benchmarks print them for every set, real and synthetic, side by side.

Every set is L2-normalised (cosine), queries are disjoint from the corpus.

Example::

    ds = load("scifact-mpnet-768")
    ds.exact(10)          # (queries, 10) exact top-10 corpus rows, best first
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SETS = ("debian-minilm-384", "scifact-mpnet-768", "nfcorpus-mpnet-768", "synthetic-3584")


def shared_data() -> Path:
    return Path(os.environ.get("SMEC_VDB_SHARED_DATA", REPO.parent / "shared" / "data"))


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@dataclass
class DataSet:
    name: str
    corpus: np.ndarray
    queries: np.ndarray
    note: str
    qrels: dict[str, dict[str, float]] | None = None
    query_ids: list[str] = field(default_factory=list)
    corpus_ids: list[str] = field(default_factory=list)

    @property
    def dim(self) -> int:
        return int(self.corpus.shape[1])

    def exact(self, k: int) -> np.ndarray:
        return self._exact[:, :k]

    @cached_property
    def _exact(self) -> np.ndarray:
        """Exact top-100 corpus rows per query by cosine, best first (blocks of queries: bounded memory)."""
        out = []
        for start in range(0, len(self.queries), 256):
            scores = self.queries[start:start + 256] @ self.corpus.T
            top = np.argpartition(-scores, 100, axis=1)[:, :100]
            order = np.take_along_axis(-scores, top, 1).argsort(axis=1, kind="stable")
            out.append(np.take_along_axis(top, order, 1))
        return np.concatenate(out)


def llm_like(n: int, dim: int = 3584, *, seed: int = 7, latent: int = 1024, topics: int = 2000,
             decay: float = 0.6, shared: float = 0.55, noise: float = 0.01) -> np.ndarray:
    """Synthetic LLM-like embeddings (module doc): topic centres and within-topic spread in a ``latent``-dim
    space whose i-th axis has standard deviation i^-``decay``, embedded by a random orthonormal basis,
    plus a shared direction of length ``shared`` relative to the typical vector and isotropic ``noise``."""
    rng = np.random.default_rng(seed)
    spectrum = np.arange(1, latent + 1, dtype=np.float32) ** -decay
    basis, _ = np.linalg.qr(rng.standard_normal((dim, latent)).astype(np.float32))
    centres = rng.standard_normal((topics, latent)).astype(np.float32) * spectrum
    mean = rng.standard_normal(dim).astype(np.float32)
    mean /= np.linalg.norm(mean)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 8192):
        m = min(8192, n - start)
        z = centres[rng.integers(0, topics, m)] + 0.7 * rng.standard_normal((m, latent)).astype(np.float32) * spectrum
        x = z @ basis.T
        scale = np.linalg.norm(x, axis=1, keepdims=True)
        x += shared * scale * mean + noise * scale * rng.standard_normal((m, dim)).astype(np.float32) / np.sqrt(dim / latent)
        out[start:start + m] = unit(x)
    return out


def describe(x: np.ndarray, seed: int = 0) -> dict[str, float]:
    """Anisotropy and spectrum of unit vectors ``x`` (on a sample of 2,000 / 5,000 rows)."""
    rng = np.random.default_rng(seed)
    pick = x[rng.choice(len(x), min(len(x), 2000), replace=False)]
    cos = pick @ pick.T
    np.fill_diagonal(cos, np.nan)
    sample = x[rng.choice(len(x), min(len(x), 5000), replace=False)].astype(np.float64)
    var = np.linalg.svd(sample - sample.mean(0), compute_uv=False) ** 2
    var /= var.sum()
    return {"mean_pairwise_cos": round(float(np.nanmean(cos)), 3), "mean_norm": round(float(np.linalg.norm(x.mean(0))), 3),
            "var_top32": round(float(var[:32].sum()), 3), "var_top128": round(float(var[:128].sum()), 3),
            "var_top256": round(float(var[:256].sum()), 3),
            "effective_rank": round(float(np.exp(-(var * np.log(var + 1e-15)).sum())), 0),
            "nn_cos_median": round(float(np.nanmedian(np.nanmax(cos, axis=1))), 3)}


def load(name: str, *, synthetic_points: int = 50_000, quick: bool = False) -> DataSet:
    """One of :data:`SETS` (``quick``: smaller corpora for a smoke run)."""
    if name == "debian-minilm-384":
        path = shared_data() / "debian-packages" / "embeddings" / "minilm-l6-v2" / "corpus_f16.npy"
        if not path.is_file():
            raise SystemExit(f"shared data missing: {path} (set SMEC_VDB_SHARED_DATA)")
        x = unit(np.load(path).astype(np.float32))
        held = np.random.default_rng(0).choice(len(x), 1000, replace=False)
        keep = np.setdiff1d(np.arange(len(x)), held)[: 8_000 if quick else None]
        return DataSet(name, x[keep], x[held][: 200 if quick else None],
                       f"{len(keep):,} real Debian package MiniLM vectors; {200 if quick else 1000:,} held-out vectors as queries")
    if name in ("scifact-mpnet-768", "nfcorpus-mpnet-768"):
        from smec_vdb.eval.beir import load_beir

        beir = load_beir(name.split("-")[0], "all-mpnet-base-v2", data_dir=shared_data())
        qids, queries = beir.split_queries("test")
        return DataSet(name, unit(np.asarray(beir.corpus)), unit(queries),
                       f"{beir.name} corpus ({len(beir.corpus_ids):,} docs), {len(qids)} test queries with qrels",
                       qrels=beir.split_qrels("test"), query_ids=qids, corpus_ids=beir.corpus_ids)
    if name == "synthetic-3584":
        n = 5_000 if quick else synthetic_points
        x = llm_like(n + 300)
        return DataSet(name, x[:n], x[n:], f"SYNTHETIC {n:,} LLM-like 3584-d vectors (benchmarks/datasets.py:llm_like) "
                                           "+ 300 queries from the same distribution")
    raise SystemExit(f"unknown set {name!r}: one of {', '.join(SETS)}")
