import dataclasses

import numpy as np
import torch

import smec_vdb
from smec_vdb.baselines.search_adaptor import SearchAdaptorCompressor

DIMS = (12, 6, 3)  # as in conftest.py


def untrained(corpus):
    return SearchAdaptorCompressor(corpus.shape[1], DIMS)


def test_untrained_adapters_are_skip_connections_so_dims_are_raw_prefixes(corpus):
    comp = untrained(corpus)
    with torch.no_grad():
        for d in DIMS:
            np.testing.assert_allclose(comp.project(torch.from_numpy(corpus), d).numpy(), corpus[:, :d], atol=1e-6)


def test_fit_trains_each_dim_on_its_own(corpus, fast_config):
    events = []
    comp = SearchAdaptorCompressor.fit(corpus, DIMS, dataclasses.replace(fast_config, lr=1e-2), progress=events.append)
    runs = comp.training_info["stages"]
    assert [r["dim"] for r in runs] == list(DIMS)
    assert sorted({e.stage for e in events}) == [0, 1, 2] and all(e.num_stages == 3 for e in events)
    for d in DIMS:
        low = comp.encode(corpus, d)
        assert low.shape == (len(corpus), d)
        np.testing.assert_allclose(np.linalg.norm(low, axis=1), 1.0, atol=1e-5)
    # independent maps: the 6-d output is no longer the prefix of the 12-d one
    with torch.no_grad():
        x = torch.from_numpy(corpus)
        assert not torch.allclose(comp.project(x, 6), comp.project(x, 12)[:, :6], atol=1e-4)


def test_supervised_lowers_the_rank_loss(corpus, examples, fast_config, rank_loss_of):
    config = dataclasses.replace(fast_config, epochs=30, patience=30, lr=3e-2)
    start = untrained(corpus)
    comp = SearchAdaptorCompressor.fit(corpus, DIMS, config, examples)
    assert comp.training_info["supervised"] is True
    for d in DIMS:
        assert rank_loss_of(comp, d) < 0.9 * rank_loss_of(start, d)


def test_deterministic_with_a_seed(corpus, examples, fast_config):
    a = SearchAdaptorCompressor.fit(corpus, DIMS, fast_config, examples)
    b = SearchAdaptorCompressor.fit(corpus, DIMS, fast_config, examples)
    assert a.manifest_hash == b.manifest_hash


def test_save_load_round_trip(corpus, fast_config, tmp_path):
    comp = SearchAdaptorCompressor.fit(corpus, DIMS, dataclasses.replace(fast_config, epochs=1))
    comp.save(tmp_path / "sa")
    same = smec_vdb.load(tmp_path / "sa")
    assert isinstance(same, SearchAdaptorCompressor) and same.manifest_hash == comp.manifest_hash
    for d in DIMS:
        np.testing.assert_array_equal(same.encode(corpus, d), comp.encode(corpus, d))
