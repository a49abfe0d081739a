import dataclasses

import numpy as np
import pytest
import torch

import smec_vdb
from smec_vdb.baselines.linear_adaptor import LinearAdaptorCompressor as MatryoshkaAdaptorCompressor
from smec_vdb.baselines.pca import pca_basis
from smec_vdb.errors import ConfigError

DIMS = (12, 6, 3)  # as in conftest.py


def untrained(corpus, hidden_dim=0):
    comp = MatryoshkaAdaptorCompressor(corpus.shape[1], DIMS, hidden_dim)
    comp.init_from_pca(corpus)
    return comp


def test_initialisation_is_uncentred_pca(corpus):
    comp = untrained(corpus, hidden_dim=8)
    _, axes = pca_basis(corpus, DIMS[0], centre=False)
    expected = corpus @ axes.T
    np.testing.assert_allclose(comp.project(torch.from_numpy(corpus), DIMS[0]).detach().numpy(), expected, atol=1e-5)


def test_fit_gives_nested_normalised_outputs(corpus, fast_config):
    comp = MatryoshkaAdaptorCompressor.fit(corpus, DIMS, fast_config, hidden_dim=8)
    x = torch.from_numpy(corpus)
    with torch.no_grad():
        widest = comp.project(x, DIMS[0])
        for d in DIMS[1:]:
            torch.testing.assert_close(comp.project(x, d), widest[:, :d])
    low = comp.encode(corpus, DIMS[-1])
    assert low.shape == (len(corpus), DIMS[-1])
    np.testing.assert_allclose(np.linalg.norm(low, axis=1), 1.0, atol=1e-5)
    info = comp.training_info
    assert info["supervised"] is False and len(info["stages"]) == 1
    assert 1 <= info["stages"][0]["epochs"] <= fast_config.epochs
    assert info["data_fingerprint"].startswith("sha256:")


def test_supervised_training_moves_the_adapter_and_raises_the_held_out_ndcg(corpus, examples, fast_config):
    comp = MatryoshkaAdaptorCompressor.fit(corpus, DIMS, dataclasses.replace(fast_config, epochs=30, patience=30, lr=3e-2), examples)
    assert not torch.equal(comp.rotation, untrained(corpus).rotation)
    run = comp.training_info["stages"][0]
    assert run["criterion"] == "ndcg@10" and run["best_score"] > run["initial_score"]


def test_supervised_lowers_the_rank_loss(corpus, examples, fast_config, rank_loss_of):
    config = dataclasses.replace(fast_config, epochs=30, patience=30, lr=3e-2)
    start = untrained(corpus)
    comp = MatryoshkaAdaptorCompressor.fit(corpus, DIMS, config, examples)
    assert comp.training_info["supervised"] is True
    for d in DIMS:
        assert rank_loss_of(comp, d) < 0.9 * rank_loss_of(start, d)


def test_deterministic_with_a_seed(corpus, examples, fast_config):
    a = MatryoshkaAdaptorCompressor.fit(corpus, DIMS, fast_config, examples, hidden_dim=8)
    b = MatryoshkaAdaptorCompressor.fit(corpus, DIMS, fast_config, examples, hidden_dim=8)
    assert a.manifest_hash == b.manifest_hash
    c = MatryoshkaAdaptorCompressor.fit(corpus, DIMS, dataclasses.replace(fast_config, seed=4), examples, hidden_dim=8)
    assert c.manifest_hash != a.manifest_hash


@pytest.mark.parametrize("hidden_dim", [0, 8])
def test_save_load_round_trip(corpus, fast_config, tmp_path, hidden_dim):
    comp = MatryoshkaAdaptorCompressor.fit(corpus, DIMS, dataclasses.replace(fast_config, epochs=1), hidden_dim=hidden_dim)
    comp.save(tmp_path / "mrl")
    same = smec_vdb.load(tmp_path / "mrl")
    assert isinstance(same, MatryoshkaAdaptorCompressor) and same.hidden_dim == hidden_dim
    assert same.manifest_hash == comp.manifest_hash
    for d in DIMS:
        np.testing.assert_array_equal(same.encode(corpus, d), comp.encode(corpus, d))


def test_negative_hidden_dim_is_a_config_error(corpus):
    with pytest.raises(ConfigError, match="hidden_dim"):
        MatryoshkaAdaptorCompressor(corpus.shape[1], DIMS, hidden_dim=-1)
