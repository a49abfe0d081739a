"""Small synthetic corpora and ranking examples shared by the baseline tests."""

from __future__ import annotations

import numpy as np
import pytest

from smec_vdb.train.config import TrainConfig
from smec_vdb.train.labels import RankingExamples

INPUT_DIM = 24
DIMS = (12, 6, 3)


def _synthetic() -> tuple[np.ndarray, np.ndarray]:
    """300 unit vectors with a decaying spectrum in a random basis (so raw prefixes are not PCA), and that basis."""
    rng = np.random.default_rng(0)
    scales = np.linspace(3.0, 0.2, INPUT_DIM)
    basis, _ = np.linalg.qr(rng.normal(size=(INPUT_DIM, INPUT_DIM)))
    x = (rng.normal(size=(300, INPUT_DIM)) * scales) @ basis.T + 0.5
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), basis


@pytest.fixture(scope="session")
def corpus() -> np.ndarray:
    return _synthetic()[0]


@pytest.fixture(scope="session")
def examples(corpus: np.ndarray) -> RankingExamples:
    """200 queries, each matching one doc (grade 1) only in the 8 LOWEST-variance directions, with the
    15 hardest full-dim negatives: PCA's small dims rank them poorly, a trained map can learn the subspace."""
    return synthetic_examples(corpus, _synthetic()[1])


def synthetic_examples(corpus: np.ndarray, basis: np.ndarray, n_queries: int = 200) -> RankingExamples:
    from smec_vdb.train.labels import build_ranking_examples

    low_variance = basis[:, -8:]
    rng = np.random.default_rng(1)
    relevant = rng.choice(len(corpus), n_queries, replace=False)
    queries = corpus[relevant] @ low_variance @ low_variance.T + 0.01 * rng.normal(size=(n_queries, corpus.shape[1]))
    qrels = {f"q{i}": {f"d{r}": 1.0} for i, r in enumerate(relevant)}
    return build_ranking_examples(queries.astype(np.float32), corpus, qrels, [f"q{i}" for i in range(n_queries)],
                                  [f"d{i}" for i in range(len(corpus))], hard_negatives=15)


@pytest.fixture(scope="session")
def fast_config() -> TrainConfig:
    return TrainConfig(epochs=4, patience=2, batch_size=64, memory_topk=8, lr=1e-3, seed=3, device="cpu")


@pytest.fixture(scope="session")
def rank_loss_of(corpus: np.ndarray, examples: RankingExamples):
    """Mean rank loss (eq. 8, scale 20) of a compressor's ``dim`` output on all the examples."""
    import torch

    from smec_vdb.train.rank_loss import RankLoss

    def measure(comp, dim: int) -> float:
        q = torch.from_numpy(comp.encode(examples.query_vectors, dim))
        docs = torch.from_numpy(comp.encode(corpus, dim))[torch.from_numpy(examples.candidates)]
        scores = torch.einsum("qd,qcd->qc", q, docs)
        return float(RankLoss(scale=20.0)(scores, torch.from_numpy(examples.grades), torch.from_numpy(examples.mask)))

    return measure
