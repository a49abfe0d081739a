import numpy as np
import torch

import smec_vdb
from smec_vdb.baselines.pca import PCACompressor

DIMS = (12, 6, 3)  # as in conftest.py


def test_matches_numpy_svd_up_to_sign(corpus):
    comp = PCACompressor.fit(corpus, DIMS)
    centred = corpus.astype(np.float64) - corpus.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    for d in DIMS:
        expected = centred @ vt[:d].T
        got = comp.project(torch.from_numpy(corpus), d).numpy()
        signs = np.sign((expected * got).sum(axis=0))
        assert np.all(signs != 0)
        np.testing.assert_allclose(got, expected * signs, atol=1e-4)


def test_outputs_are_nested_and_normalised(corpus):
    comp = PCACompressor.fit(corpus, DIMS)
    x = torch.from_numpy(corpus)
    widest = comp.project(x, DIMS[0])
    for d in DIMS[1:]:
        torch.testing.assert_close(comp.project(x, d), widest[:, :d])
    low = comp.encode(corpus, DIMS[-1])
    assert low.shape == (len(corpus), DIMS[-1])
    np.testing.assert_allclose(np.linalg.norm(low, axis=1), 1.0, atol=1e-5)


def test_explained_variance_is_decreasing(corpus):
    comp = PCACompressor.fit(corpus, DIMS)
    variances = comp.project(torch.from_numpy(corpus), DIMS[0]).var(dim=0)
    assert torch.all(variances[:-1] >= variances[1:] - 1e-6)


def test_deterministic_and_round_trips(corpus, tmp_path):
    comp = PCACompressor.fit(corpus, DIMS)
    again = PCACompressor.fit(corpus.copy(), DIMS)
    assert comp.manifest_hash == again.manifest_hash
    comp.save(tmp_path / "pca")
    same = smec_vdb.load(tmp_path / "pca")
    assert isinstance(same, PCACompressor)
    for d in DIMS:
        np.testing.assert_array_equal(same.encode(corpus, d), comp.encode(corpus, d))
    assert same.training_info["data_fingerprint"] == comp.training_info["data_fingerprint"]
