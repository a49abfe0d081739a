import dataclasses

import numpy as np
import torch

from torch.nn import functional as F

from smec_vdb.compress.ads import AdaptiveDimensionSelector, relaxed_top_k
from smec_vdb.compress.selection import SelectionCompressor
from smec_vdb.train.config import TrainConfig
from smec_vdb.train.loop import anneal
from smec_vdb.train.similarity_loss import SimilarityPreservationLoss


def test_untrained_selector_keeps_the_prefix_and_inference_is_deterministic():
    ads = AdaptiveDimensionSelector(8, 3).eval()
    z = torch.arange(16.0).reshape(2, 8)
    assert ads.selected().tolist() == [0, 1, 2]
    assert torch.equal(ads(z), z[:, :3])


def test_relaxed_top_k_is_a_soft_k_hot_that_hardens_as_tau_falls():
    logits = torch.tensor([3.0, 2.0, 1.0, 0.0, -1.0])
    for tau in (1.0, 0.1):
        khot = relaxed_top_k(logits, 2, tau)
        assert abs(float(khot.sum()) - 2.0) < 1e-4 and bool((khot > 0).all())
    assert torch.allclose(relaxed_top_k(logits, 2, 0.01), torch.tensor([1.0, 1.0, 0.0, 0.0, 0.0]), atol=1e-3)


def test_training_weights_every_dim_by_its_soft_k_hot_so_dropped_dims_get_a_first_order_gradient():
    ads = AdaptiveDimensionSelector(10, 4).train()
    z = torch.randn(5, 10)
    out = ads(z, tau=0.5, noise=1.0, generator=torch.Generator().manual_seed(0))
    assert out.shape == (5, 4)
    keep, khot = ads.sample(0.5, 0.0)
    full, kept = ads.masked(z, 0.5, 0.0)
    assert torch.equal(kept, keep) and torch.allclose(full, z * khot)
    ads.zero_grad()
    a, b = F.normalize(full[:2], dim=1), F.normalize(full[2:4], dim=1)
    (a * b).sum().backward()  # a cosine loss: a hard 0 on a dropped dim would give it zero gradient
    dropped = torch.ones(10, dtype=torch.bool)
    dropped[keep] = False
    assert bool((ads.logits.grad[dropped] != 0).all())
    ads.eval()
    assert torch.equal(ads(z), z[:, ads.selected()])


def test_noise_and_temperature_anneal_within_the_epochs_a_stage_runs():
    config = TrainConfig(epochs=30, anneal_epochs=5, tau_start=1.0, tau_end=0.1)
    assert anneal(config, 1) == (1.0, 1.0)
    tau, noise = anneal(config, 5)
    assert abs(tau - 0.1) < 1e-9 and noise == 0.0
    assert anneal(config, 20) == anneal(config, 5)
    short = dataclasses.replace(config, epochs=3)
    assert anneal(short, 3)[1] == 0.0  # capped by epochs: the anneal completes in a short run too


def test_selection_at_default_settings_moves_off_the_prefix_when_the_data_call_for_it():
    """The first 16 raw dims are near-constant noise, the last 16 carry the geometry: truncation to 8
    keeps noise, ADS (logits starting at the prefix order) must move to the informative dims."""
    rng = np.random.default_rng(0)
    noise = 0.02 * rng.normal(size=(600, 16))
    signal = rng.normal(size=(600, 16)) * np.linspace(2.0, 1.0, 16)
    x = np.concatenate([noise, signal], axis=1).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    config = TrainConfig(seed=0, device="cpu")  # real settings: default epochs, lrs, τ and noise schedule
    ads = SelectionCompressor.fit(x, [8], config, strategy="ads")
    prefix = SelectionCompressor.fit(x, [8], config, strategy="prefix")
    kept = ads.selected_indices()[8]
    assert sum(i >= 16 for i in kept) >= 7, kept
    assert prefix.selected_indices()[8] == list(range(8))
    ads_score = ads.training_info["stages"][0]["best_score"]
    assert ads_score > prefix.training_info["stages"][0]["best_score"] + 0.2


def test_ads_recovers_the_informative_dims_when_half_are_noise():
    """Teacher similarity depends on dims 0..7 only; ADS(k=8), trained from uniform logits, must keep exactly those."""
    g = torch.Generator().manual_seed(0)
    n, informative, total = 256, 8, 16
    signal = torch.randn(n, informative, generator=g) * 2.0
    noise = torch.randn(n, total - informative, generator=g) * 2.0
    x = torch.cat([signal, noise], dim=1)
    perm = torch.randperm(total, generator=g)  # scatter the informative dims
    x = x[:, perm]
    informative_idx = sorted(int(i) for i in torch.nonzero(perm < informative).flatten())
    ads = AdaptiveDimensionSelector(total, informative)
    with torch.no_grad():
        ads.logits.zero_()
    opt = torch.optim.Adam(ads.parameters(), lr=0.05)
    loss_fn = SimilarityPreservationLoss()
    nbrs = torch.randint(0, n, (n, 16), generator=g)
    for step in range(300):
        t = step / 299
        out = ads(x, tau=0.1 ** t, noise=1.0 - t, generator=g)
        loss = loss_fn(signal, signal[nbrs], out, out[nbrs])
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert ads.selected().tolist() == informative_idx
