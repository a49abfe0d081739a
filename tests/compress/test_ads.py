import torch

from smec_vdb.compress.ads import AdaptiveDimensionSelector
from smec_vdb.train.similarity_loss import SimilarityPreservationLoss


def test_untrained_selector_keeps_the_prefix_and_inference_is_deterministic():
    ads = AdaptiveDimensionSelector(8, 3).eval()
    z = torch.arange(16.0).reshape(2, 8)
    assert ads.selected().tolist() == [0, 1, 2]
    assert torch.equal(ads(z), z[:, :3])


def test_training_forward_keeps_exactly_k_dims_with_unit_mask_and_gradient_to_logits():
    ads = AdaptiveDimensionSelector(10, 4).train()
    z = torch.randn(5, 10)
    out = ads(z, tau=0.5, generator=torch.Generator().manual_seed(0))
    assert out.shape == (5, 4)
    out.sum().backward()
    assert ads.logits.grad is not None and int((ads.logits.grad != 0).sum()) == 4


def test_selection_indices_come_sorted_ascending():
    ads = AdaptiveDimensionSelector(6, 3)
    with torch.no_grad():
        ads.logits.copy_(torch.tensor([0.0, 5.0, 1.0, 4.0, -1.0, 3.0]))
    assert ads.selected().tolist() == [1, 3, 5]


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
        tau = 1.0 * (0.1 ** (step / 299))
        out = ads(x, tau=tau, generator=g)
        loss = loss_fn(signal, signal[nbrs], out, out[nbrs])
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert ads.selected().tolist() == informative_idx
