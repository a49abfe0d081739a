import dataclasses

import numpy as np
import pytest
import torch

from smec_vdb.compress.smec import SMECCompressor
from smec_vdb.errors import ConfigError, DataError, DimensionError, InvalidVectorError
from smec_vdb.train import train
from smec_vdb.train.labels import RankingExamples
from smec_vdb.train import smrl
from smec_vdb.train.smrl import train_smec

from tests.conftest import SMEC_DIMS


def test_training_reports_every_stage_and_fills_training_info(trained_smec, moving_config):
    info = trained_smec.training_info
    assert [s["dim"] for s in info["stages"]] == list(SMEC_DIMS)
    assert all(1 <= s["epochs"] <= moving_config.epochs for s in info["stages"])
    assert all(s["criterion"] == "ndcg@10" for s in info["stages"])
    assert info["data_fingerprint"].startswith("sha256:") and info["supervised"] is True
    assert info["config"]["memory_topk"] == moving_config.memory_topk


def test_every_stage_of_the_fixture_moved_and_beat_its_start_on_held_out_ndcg(trained_smec, vectors):
    """The freezing/extension tests rely on this: a fixture stuck at its PCA start would make them vacuous."""
    fresh = SMECCompressor.from_pca(torch.from_numpy(vectors), SMEC_DIMS[:1])
    assert float((trained_smec.stages[0].weight.detach() - fresh.stages[0].weight.detach()).abs().max()) > 1e-2
    for s in trained_smec.training_info["stages"]:
        assert s["best_epoch"] > 0 and s["best_score"] > s["initial_score"]


def test_unsupervised_training_selects_on_held_out_neighbour_recall(vectors, smec_config):
    events = []
    comp = train_smec(vectors, SMEC_DIMS, dataclasses.replace(smec_config, epochs=4, patience=4), progress=events.append)
    assert {e.stage_dim for e in events} == set(SMEC_DIMS)
    assert [e.stage for e in events] == sorted(e.stage for e in events)
    assert {e.criterion for e in events} == {"recall@10"}
    assert all("similarity" in e.loss_parts and "order" in e.loss_parts for e in events)
    for s in comp.training_info["stages"]:
        assert s["best_score"] >= s["initial_score"]


def test_frozen_stages_are_unchanged_by_later_stages(vectors, low_variance_examples, moving_config, monkeypatch):
    """Snapshot every stage right after it is trained (asserting it moved); later stages must leave it equal."""
    snapshots = {}
    original = smrl.train_stages

    def spy(comp, data, config, first, last, progress=None):
        before = {k: v.clone() for k, v in comp.stages[first].state_dict().items()}
        report = original(comp, data, config, first, last, progress)
        after = {k: v.clone() for k, v in comp.stages[first].state_dict().items()}
        assert not torch.equal(before["weight"], after["weight"]), f"stage {first} did not move"
        snapshots[first] = after
        for p in comp.stages[first].parameters():
            assert not p.requires_grad
        return report

    monkeypatch.setattr(smrl, "train_stages", spy)
    comp = train_smec(vectors, SMEC_DIMS, moving_config, low_variance_examples)
    assert sorted(snapshots) == [0, 1, 2]
    for k, snap in snapshots.items():
        for name, tensor in comp.stages[k].state_dict().items():
            assert torch.equal(tensor, snap[name]), f"stage {k} {name} changed after it was frozen"


def test_same_seed_gives_identical_weights_and_other_seed_differs(vectors, smec_config):
    # lr 1e-3: at the fixture's 1e-2 no epoch beats the (seed-free) PCA start, so seeds could not differ.
    config = dataclasses.replace(smec_config, lr=1e-3)
    first = train_smec(vectors, SMEC_DIMS, config)
    again = train_smec(vectors, SMEC_DIMS, config)
    for k, v in first.state_dict().items():
        assert torch.equal(again.state_dict()[k], v)
    other = train_smec(vectors, SMEC_DIMS, dataclasses.replace(config, seed=4))
    assert any(not torch.equal(other.state_dict()[k], v) for k, v in first.state_dict().items())


@pytest.mark.parametrize("switch", ["use_smrl", "use_ads", "use_xbm"])
def test_ablation_switches_train(vectors, smec_config, switch):
    comp = train_smec(vectors, (12, 6), dataclasses.replace(smec_config, epochs=2, **{switch: False}))
    assert comp.encode(vectors, 6).shape == (len(vectors), 6)
    if switch == "use_ads":
        assert comp.selected_indices() == {12: list(range(12)), 6: list(range(6))}
        assert not comp.stages[0].selector.learnable
    if switch == "use_smrl":
        assert len(comp.training_info["stages"]) == 1


def test_supervised_training_lowers_the_rank_loss(vectors, smec_config):
    """Queries = relevant doc + noise along the top principal axes, so PCA-3 cannot rank; L_rank must fix that."""
    from smec_vdb.train.rank_loss import RankLoss

    rng = np.random.default_rng(1)
    relevant = rng.choice(len(vectors), 80, replace=False)
    centred = vectors - vectors.mean(axis=0)
    top_axes = np.linalg.svd(centred, full_matrices=False)[2][:3]
    queries = (vectors[relevant] + 0.3 * rng.normal(size=(80, 3)) @ top_axes).astype(np.float32)
    cands = np.stack([np.concatenate([[r], rng.choice(np.delete(np.arange(len(vectors)), r), 15, replace=False)]) for r in relevant])
    grades = np.zeros(cands.shape, np.float32)
    grades[:, 0] = 1
    ex = RankingExamples(queries, cands, grades, np.ones(cands.shape, bool), tuple(f"q{i}" for i in range(80)))

    def rank_loss(comp):
        q = torch.from_numpy(comp.encode(queries, 3))
        d = torch.from_numpy(comp.encode(vectors, 3))[torch.from_numpy(cands)]
        return float(RankLoss()(torch.einsum("qd,qcd->qc", q, d), torch.from_numpy(grades), torch.ones(cands.shape, dtype=torch.bool)))

    pca = SMECCompressor.from_pca(torch.from_numpy(vectors), SMEC_DIMS).eval()
    config = dataclasses.replace(smec_config, epochs=6, patience=6, alpha=0.0, val_fraction=0.25)
    comp = train_smec(vectors, SMEC_DIMS, config, examples=ex)
    assert comp.training_info["supervised"] is True
    assert rank_loss(comp) < 0.5 * rank_loss(pca)


def test_training_input_errors(vectors, smec_config):
    with pytest.raises(DimensionError):
        train_smec(vectors[0], SMEC_DIMS, smec_config)
    with pytest.raises(InvalidVectorError):
        train_smec(vectors[:0], SMEC_DIMS, smec_config)
    with pytest.raises(DataError, match="at least"):
        train_smec(vectors[:3], SMEC_DIMS, smec_config)
    bad = vectors.copy()
    bad[5, 0] = np.nan
    with pytest.raises(InvalidVectorError, match="row 5"):
        train_smec(bad, SMEC_DIMS, smec_config)
    with pytest.raises(ConfigError):
        train_smec(vectors, (12, 24), smec_config)
    with pytest.raises(ConfigError):
        train_smec(vectors, (30,), smec_config)


def test_train_dispatch_rejects_unknown_methods(vectors):
    with pytest.raises(ConfigError, match="known: .*smec"):
        train(vectors, SMEC_DIMS, method="nope")


@pytest.mark.parametrize("source", ["input", "auto"])
def test_last_stage_can_read_the_raw_input_and_auto_keeps_the_better_held_out_score(vectors, smec_config, source, tmp_path):
    import smec_vdb

    config = dataclasses.replace(smec_config, last_source=source)
    comp = train_smec(vectors, SMEC_DIMS, config)
    chain = train_smec(vectors, SMEC_DIMS, smec_config)
    last = comp.training_info["stages"][-1]
    if source == "input":
        assert comp.sources == [0, 1, 0] and comp.stages[-1].weight.shape == (24, 24)
        x = torch.from_numpy(vectors)
        np.testing.assert_allclose(comp.project(x, 3).numpy(), (x @ comp.stages[-1].kept_rows().T).detach().numpy(), atol=1e-5)
    else:
        assert last["best_score"] >= chain.training_info["stages"][-1]["best_score"] - 1e-9
        assert comp.sources[-1] in (0, 2)
    comp.save(tmp_path / "m")
    same = smec_vdb.load(tmp_path / "m")
    assert same.sources == comp.sources
    np.testing.assert_array_equal(same.encode(vectors, 3), comp.encode(vectors, 3))


def test_warm_start_trains_each_labelled_stage_unsupervised_first_and_continues_from_that_state(
        vectors, low_variance_examples, moving_config, monkeypatch):
    """Per stage: one run on held-out recall (the unsupervised view), then one on held-out nDCG that
    starts from the state the first run restored; one report per stage with both runs' epochs."""
    calls = []
    original = smrl.train_stages

    def spy(comp, data, config, first, last, progress=None):
        start = comp.stages[first].weight.detach().clone()
        report = original(comp, data, config, first, last, progress)
        calls.append((first, data.criterion.name, start, comp.stages[first].weight.detach().clone(), report.epochs))
        return report

    monkeypatch.setattr(smrl, "train_stages", spy)
    config = dataclasses.replace(moving_config, epochs=4, patience=4, warm_start=True)
    comp = train_smec(vectors, SMEC_DIMS, config, low_variance_examples)
    assert [(c[0], c[1]) for c in calls] == [(k, name) for k in range(len(SMEC_DIMS)) for name in ("recall@10", "ndcg@10")]
    for (k, _, _, unsup_end, unsup_epochs), (_, _, sup_start, _, sup_epochs), stage in zip(
            calls[0::2], calls[1::2], comp.training_info["stages"]):
        assert torch.equal(sup_start, unsup_end), f"stage {k}: the labelled run did not start from the unsupervised state"
        assert stage["epochs"] == unsup_epochs + sup_epochs and stage["criterion"] == "ndcg@10"
    monkeypatch.setattr(smrl, "train_stages", original)
    calls.clear()
    cold = train_smec(vectors, SMEC_DIMS, dataclasses.replace(config, warm_start=False), low_variance_examples)
    assert len(cold.training_info["stages"]) == len(SMEC_DIMS)


def test_order_auto_is_pairwise_without_labels_and_off_with_them(vectors, low_variance_examples, smec_config):
    from smec_vdb.train.config import TrainConfig

    assert TrainConfig().order == "auto"
    assert TrainConfig().order_for(False) == "pairwise" and TrainConfig().order_for(True) == "off"
    assert TrainConfig(order="listwise").order_for(True) == "listwise"
    events = []
    train_smec(vectors, SMEC_DIMS, dataclasses.replace(smec_config, epochs=1, warm_start=False), low_variance_examples,
               progress=events.append)
    assert events and all("order" not in e.loss_parts and "rank" in e.loss_parts for e in events)
    with pytest.raises(ConfigError, match="auto, off, pairwise or listwise"):
        TrainConfig(order="both")


def test_a_fixed_selection_stage_trains_only_its_kept_rows(vectors, smec_config):
    """Without ADS a stage's output is its kept rows of W times the input: the optimizer holds only
    those rows (d_out × d_in), the trained rows land in W and the other rows keep their PCA values."""
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    shapes = set()
    handle = register_optimizer_step_pre_hook(
        lambda opt, args, kwargs: shapes.update(tuple(p.shape) for g in opt.param_groups for p in g["params"]))
    try:
        comp = train_smec(vectors, (12,), dataclasses.replace(smec_config, lr=1e-3, epochs=2, patience=2))
    finally:
        handle.remove()
    assert shapes == {(12, 24)}
    pca = SMECCompressor.from_pca(torch.from_numpy(vectors), (12,), use_ads=False)
    assert torch.equal(comp.stages[0].weight[12:], pca.stages[0].weight[12:])
    assert comp.training_info["stages"][0]["best_epoch"] > 0, "the fixture must move the kept rows"
    assert not torch.equal(comp.stages[0].weight[:12], pca.stages[0].weight[:12])
    x = torch.from_numpy(vectors)
    np.testing.assert_allclose(comp.project(x, 12).numpy(), (x @ comp.stages[0].weight[:12].T).numpy(), atol=1e-5)
