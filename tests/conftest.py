"""Small synthetic fixtures shared by the unit tests (session-scoped: built once)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from smec_vdb.train.config import TrainConfig

INPUT_DIM = 24
SMEC_DIMS = (12, 6, 3)


def shared_data_dir() -> Path:
    """../shared/data or $SMEC_VDB_SHARED_DATA."""
    default = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    return Path(os.environ.get("SMEC_VDB_SHARED_DATA", default))


def _vectors_and_basis() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    scales = np.linspace(3.0, 0.2, INPUT_DIM)
    basis, _ = np.linalg.qr(rng.normal(size=(INPUT_DIM, INPUT_DIM)))
    x = (rng.normal(size=(400, INPUT_DIM)) * scales) @ basis.T + 0.5
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), basis


@pytest.fixture(scope="session")
def vectors() -> np.ndarray:
    """400 unit vectors with a decaying spectrum in a random basis, plus an offset (non-zero mean)."""
    return _vectors_and_basis()[0]


@pytest.fixture(scope="session")
def low_variance_examples(vectors: np.ndarray):
    """Queries that match their doc only in the 8 lowest-variance directions (15 hard negatives each):
    the PCA start ranks them poorly, so supervised training must move every stage to do better."""
    from smec_vdb.train.labels import build_ranking_examples

    low = _vectors_and_basis()[1][:, -8:]
    rng = np.random.default_rng(1)
    relevant = rng.choice(len(vectors), 200, replace=False)
    queries = vectors[relevant] @ low @ low.T + 0.01 * rng.normal(size=(200, INPUT_DIM))
    return build_ranking_examples(queries.astype(np.float32), vectors, {f"q{i}": {f"d{r}": 1.0} for i, r in enumerate(relevant)},
                                  [f"q{i}" for i in range(200)], [f"d{i}" for i in range(len(vectors))], hard_negatives=15)


@pytest.fixture(scope="session")
def smec_config() -> TrainConfig:
    return TrainConfig(epochs=3, patience=2, batch_size=64, memory_size=200, memory_topk=8, lr=1e-2, seed=3, device="cpu")


@pytest.fixture(scope="session")
def moving_config(smec_config: TrainConfig) -> TrainConfig:
    """Settings under which supervised training on ``low_variance_examples`` moves every stage (no
    unsupervised warm start: each stage's one labelled run must move it from its PCA start)."""
    import dataclasses

    return dataclasses.replace(smec_config, epochs=12, patience=12, lr=3e-2, warm_start=False)


@pytest.fixture(scope="session")
def trained_smec(vectors: np.ndarray, low_variance_examples, moving_config: TrainConfig):
    """Supervised SMEC whose stages demonstrably moved from their PCA start (tests/compress checks it)."""
    from smec_vdb.train.smrl import train_smec

    return train_smec(vectors, SMEC_DIMS, moving_config, low_variance_examples)
