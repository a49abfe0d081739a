"""The shared trainer loop and the held-out criteria it selects on."""

import dataclasses
import logging

import torch
from torch.nn import functional as F

from smec_vdb.train.config import TrainConfig
from smec_vdb.train.criteria import HeldOutNDCG, NeighbourRecall
from smec_vdb.train.data import TrainingData
from smec_vdb.train.loop import run_stage
from smec_vdb.train.objective import LossTerms, Objective, Outputs


def test_neighbour_recall_is_one_for_the_full_vectors_and_drops_when_they_are_scrambled(vectors):
    teacher = F.normalize(torch.from_numpy(vectors), dim=1)
    crit = NeighbourRecall(teacher, torch.arange(40), torch.arange(len(vectors)))
    assert crit.score(lambda rows: teacher[rows]) == 1.0
    g = torch.Generator().manual_seed(0)
    scrambled = torch.randn(teacher.shape, generator=g)
    assert crit.score(lambda rows: scrambled[rows]) < 0.2


def test_held_out_ndcg_is_one_when_each_query_finds_its_doc_first_and_falls_when_it_does_not(vectors):
    docs = torch.from_numpy(vectors)
    queries = docs[:10] + 0.001
    candidates = torch.arange(10).unsqueeze(1)
    crit = HeldOutNDCG(torch.arange(10), candidates, torch.ones(10, 1), torch.ones(10, 1, dtype=torch.bool), len(docs))
    assert abs(crit.score(lambda r: docs[r], lambda r: queries[r]) - 1.0) < 1e-6
    shifted = docs[torch.arange(10) + 100]  # every query now points at another doc
    assert crit.score(lambda r: docs[r], lambda r: shifted[r]) < 0.2


def test_loop_logs_named_loss_parts_restores_the_best_epoch_and_never_ends_below_its_start(vectors, caplog):
    config = TrainConfig(epochs=6, patience=6, batch_size=64, memory_topk=8, lr=0.5, seed=0, device="cpu")
    data = TrainingData.build(vectors, config)
    weight = torch.nn.Parameter(torch.eye(24)[:6].clone())
    state = torch.nn.ParameterList([weight])
    start = weight.detach().clone()

    def model(rows, queries):
        return Outputs([data.corpus[rows] @ weight.T])

    scores = []

    def score():
        value = data.criterion.score(lambda rows: data.corpus[rows] @ weight.T)
        scores.append(value)
        return value

    with caplog.at_level(logging.INFO, logger="smec_vdb.train"):
        report = run_stage(state=state, param_groups=[{"params": [weight]}], model=model, score=score, data=data,
                           config=config, objective=Objective(data, config, LossTerms(order="pairwise")))
    assert any("similarity" in r.getMessage() and "order" in r.getMessage() for r in caplog.records)
    assert report.best_score == max(scores) and report.initial_score == scores[0]
    best_epoch_state = weight.detach().clone()
    if report.best_epoch == 0:
        assert torch.equal(best_epoch_state, start)
    assert data.criterion.score(lambda rows: data.corpus[rows] @ weight.T) == report.best_score


def test_supervised_data_hold_out_training_queries_or_use_the_validation_examples(vectors, low_variance_examples):
    config = TrainConfig(device="cpu", val_fraction=0.25)
    data = TrainingData.build(vectors, config, low_variance_examples)
    held = set(data.criterion.query_rows.tolist())
    assert len(held) == 50 and not held & set(data.query_train.tolist())
    dev = low_variance_examples.subset(list(range(30)))
    data = TrainingData.build(vectors, config, low_variance_examples, dev)
    assert data.criterion.query_rows.tolist() == list(range(200, 230))
    assert len(data.query_train) == 200
    unsup = TrainingData.build(vectors, dataclasses.replace(config, val_fraction=0.1))
    assert not set(unsup.criterion.val_rows.tolist()) & set(unsup.train_rows.tolist())


def test_a_stalled_run_restarts_from_its_best_state_at_a_decayed_rate_then_stops(vectors):
    """Scripted held-out scores: best at epoch 1, stall 2 → back to epoch 1 at lr × 0.5; best at 4,
    stall 2 → lr × 0.25; stall 2 → stop at epoch 8 on the epoch-4 state."""
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    config = TrainConfig(epochs=20, patience=2, lr_decays=2, lr_decay=0.5, lr=0.1, batch_size=64, memory_topk=8,
                         seed=0, device="cpu")
    data = TrainingData.build(vectors, config)
    weight = torch.nn.Parameter(torch.eye(24)[:6].clone())
    script = iter([0.5, 0.6, 0.55, 0.55, 0.7, 0.6, 0.6, 0.6, 0.6])
    scored: list[torch.Tensor] = []   # the weight at each score: [start, epoch 1, epoch 2, …]
    first_step: dict[float, torch.Tensor] = {}  # lr -> the weight at the first step taken at that rate

    def score():
        scored.append(weight.detach().clone())
        return next(script)

    def hook(optimizer, args, kwargs):
        lr = optimizer.param_groups[0]["lr"]
        first_step.setdefault(round(lr, 6), weight.detach().clone())

    handle = register_optimizer_step_pre_hook(hook)
    try:
        report = run_stage(state=torch.nn.ParameterList([weight]), param_groups=[{"params": [weight]}],
                           model=lambda rows, q: Outputs([data.corpus[rows] @ weight.T]), score=score, data=data,
                           config=config, objective=Objective(data, config, LossTerms()))
    finally:
        handle.remove()
    assert report.epochs == 8 and report.best_epoch == 4 and report.best_score == 0.7
    assert sorted(first_step) == [0.025, 0.05, 0.1]
    assert torch.equal(first_step[0.05], scored[1])    # the restart at lr/2 begins from the epoch-1 state
    assert torch.equal(first_step[0.025], scored[4])   # the second from the epoch-4 state
    assert torch.equal(weight.detach(), scored[4])     # and the run ends restored to it
    assert not torch.equal(scored[3], scored[1])       # (the stalled epochs had moved the weight)


def test_without_decays_a_stalled_run_stops_at_patience(vectors):
    config = TrainConfig(epochs=20, patience=2, lr_decays=0, batch_size=64, memory_topk=8, seed=0, device="cpu")
    data = TrainingData.build(vectors, config)
    weight = torch.nn.Parameter(torch.eye(24)[:6].clone())
    script = iter([0.5, 0.6, 0.55, 0.55, 0.9])
    report = run_stage(state=torch.nn.ParameterList([weight]), param_groups=[{"params": [weight]}],
                       model=lambda rows, q: Outputs([data.corpus[rows] @ weight.T]), score=lambda: next(script),
                       data=data, config=config, objective=Objective(data, config, LossTerms()))
    assert report.epochs == 3 and report.best_epoch == 1
