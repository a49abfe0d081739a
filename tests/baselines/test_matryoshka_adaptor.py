"""The faithful Matryoshka-Adaptor (Yoon et al. 2024): residual MLP, pairs + top-k + reconstruction."""

import dataclasses

import numpy as np
import pytest
import torch

import smec_vdb
from smec_vdb.baselines.matryoshka_adaptor import MatryoshkaAdaptorCompressor
from smec_vdb.errors import ConfigError
from smec_vdb.train.data import TrainingData
from smec_vdb.train.objective import Outputs

DIMS = (12, 6, 3)


def test_untrained_adapter_is_the_identity_so_dims_are_raw_prefixes(corpus):
    comp = MatryoshkaAdaptorCompressor(corpus.shape[1], DIMS, hidden_dim=16)
    with torch.no_grad():
        np.testing.assert_allclose(comp.project(torch.from_numpy(corpus), 6).numpy(), corpus[:, :6], atol=1e-6)


def test_unsupervised_loss_has_the_three_published_parts(corpus, fast_config):
    from smec_vdb.train.objective import LossTerms, Objective

    data = TrainingData.build(corpus, fast_config)
    comp = MatryoshkaAdaptorCompressor(corpus.shape[1], DIMS, hidden_dim=16)
    torch.nn.init.normal_(comp.adapter[-1].weight, std=0.1)

    def model(rows, queries):
        x = data.corpus[rows]
        f = comp.correction(x)
        return Outputs([(x + f)[:, :d] for d in DIMS], None, f)

    terms = LossTerms(similarity=1.0, pairs=1.0, reconstruction=1.0, in_batch_neighbours=True)
    parts = Objective(data, fast_config, terms)(model, data.train_rows[:64], None)
    assert set(parts) == {"similarity", "pairs", "reconstruction"}
    assert all(float(v.detach()) > 0 for v in parts.values())


def test_supervised_fit_moves_the_adapter_and_raises_held_out_ndcg(corpus, examples, fast_config, rank_loss_of):
    config = dataclasses.replace(fast_config, epochs=30, patience=30, lr=3e-2)
    comp = MatryoshkaAdaptorCompressor.fit(corpus, DIMS, config, examples, hidden_dim=32)
    stage = comp.training_info["stages"][0]
    assert comp.training_info["supervised"] is True and stage["criterion"] == "ndcg@10"
    assert stage["best_score"] > stage["initial_score"]
    assert float(comp.adapter[-1].weight.detach().abs().max()) > 0
    start = MatryoshkaAdaptorCompressor(corpus.shape[1], DIMS, hidden_dim=32)
    assert rank_loss_of(comp, 3) < rank_loss_of(start, 3)


def test_save_load_round_trip(corpus, fast_config, tmp_path):
    comp = MatryoshkaAdaptorCompressor.fit(corpus, DIMS, dataclasses.replace(fast_config, epochs=1), hidden_dim=8)
    comp.save(tmp_path / "ma")
    same = smec_vdb.load(tmp_path / "ma")
    assert isinstance(same, MatryoshkaAdaptorCompressor) and same.hidden_dim == 8
    for d in DIMS:
        np.testing.assert_array_equal(same.encode(corpus, d), comp.encode(corpus, d))


def test_bad_hidden_dim_is_a_config_error(corpus):
    with pytest.raises(ConfigError, match="hidden_dim"):
        MatryoshkaAdaptorCompressor(corpus.shape[1], DIMS, hidden_dim=0)
