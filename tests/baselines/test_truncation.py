import numpy as np
import pytest

import smec_vdb
from smec_vdb.baselines.truncation import TruncationCompressor
from smec_vdb.compress.registry import method_class
from smec_vdb.errors import ConfigError, DimensionError, InvalidVectorError

DIMS = (12, 6, 3)  # as in conftest.py
INPUT_DIM = 24


def test_encode_is_the_normalised_prefix(corpus):
    comp = TruncationCompressor.fit(corpus, DIMS)
    for d in DIMS:
        low = comp.encode(corpus, d)
        prefix = corpus[:, :d] / np.linalg.norm(corpus[:, :d], axis=1, keepdims=True)
        assert low.shape == (len(corpus), d) and low.dtype == np.float32
        np.testing.assert_allclose(low, prefix, rtol=1e-5, atol=1e-6)


def test_registered_and_fingerprinted(corpus):
    assert method_class("truncate") is TruncationCompressor
    comp = TruncationCompressor.fit(corpus, DIMS)
    assert comp.training_info["data_fingerprint"].startswith("sha256:")
    assert comp.input_dim == INPUT_DIM and comp.dims == DIMS


def test_save_load_round_trip(corpus, tmp_path):
    comp = TruncationCompressor.fit(corpus, DIMS)
    comp.save(tmp_path / "trunc")
    same = smec_vdb.load(tmp_path / "trunc")
    assert isinstance(same, TruncationCompressor) and same.manifest_hash == comp.manifest_hash
    np.testing.assert_array_equal(same.encode(corpus, 6), comp.encode(corpus, 6))


def test_fit_rejects_bad_input(corpus):
    with pytest.raises(DimensionError):
        TruncationCompressor.fit(corpus[0], DIMS)
    bad = corpus.copy()
    bad[5, 2] = np.nan
    with pytest.raises(InvalidVectorError, match="row 5"):
        TruncationCompressor.fit(bad, DIMS)
    with pytest.raises(ConfigError):
        TruncationCompressor.fit(corpus, (INPUT_DIM, 6))
