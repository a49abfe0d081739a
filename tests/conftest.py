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


@pytest.fixture(scope="session")
def vectors() -> np.ndarray:
    """400 unit vectors with a decaying spectrum in a random basis, plus an offset (non-zero mean)."""
    rng = np.random.default_rng(0)
    scales = np.linspace(3.0, 0.2, INPUT_DIM)
    basis, _ = np.linalg.qr(rng.normal(size=(INPUT_DIM, INPUT_DIM)))
    x = (rng.normal(size=(400, INPUT_DIM)) * scales) @ basis.T + 0.5
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="session")
def smec_config() -> TrainConfig:
    return TrainConfig(epochs=3, patience=2, batch_size=64, memory_size=200, memory_topk=8, lr=1e-2, seed=3, device="cpu")


@pytest.fixture(scope="session")
def trained_smec(vectors: np.ndarray, smec_config: TrainConfig):
    from smec_vdb.train.smrl import train_smec

    return train_smec(vectors, SMEC_DIMS, smec_config)
