import math

import numpy as np
import pytest
import torch

from smec_vdb.errors import ConfigError, DataError
from smec_vdb.train.config import TrainConfig
from smec_vdb.train.labels import build_ranking_examples, read_qrels
from smec_vdb.train.rank_loss import RankLoss
from smec_vdb.train.similarity_loss import SimilarityPreservationLoss


def test_similarity_loss_hand_computed():
    # teacher: anchor (1,0) vs neighbours (1,0) and (0,1): cos 1 and 0
    full_a = torch.tensor([[1.0, 0.0]])
    full_n = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    # student: anchor (1) vs neighbours (1) and (-1): cos 1 and -1
    low_a = torch.tensor([[2.0]])
    low_n = torch.tensor([[[3.0], [-1.0]]])
    loss = SimilarityPreservationLoss()(full_a, full_n, low_a, low_n)
    assert loss.item() == pytest.approx((0.0 + 1.0) / 2)


def test_similarity_loss_is_zero_when_similarities_are_preserved():
    x = torch.randn(4, 6)
    n = torch.randn(4, 3, 6)
    assert SimilarityPreservationLoss()(x, n, 5 * x, 5 * n).item() == pytest.approx(0.0, abs=1e-6)


def test_rank_loss_hand_computed():
    scores = torch.tensor([[0.5, 0.2, 0.9]])
    grades = torch.tensor([[2.0, 1.0, 0.0]])
    mask = torch.tensor([[True, True, True]])
    sp = lambda v: math.log1p(math.exp(v))
    # pairs (j > k): (0,1) gain 1, (0,2) gain 2, (1,2) gain 1
    expected = (1 * sp(0.2 - 0.5) + 2 * sp(0.9 - 0.5) + 1 * sp(0.9 - 0.2)) / 3
    assert RankLoss(scale=1.0)(scores, grades, mask).item() == pytest.approx(expected, rel=1e-6)


def test_rank_loss_ignores_masked_candidates_and_handles_no_pairs():
    scores = torch.tensor([[0.5, 0.2, 0.9]])
    grades = torch.tensor([[1.0, 0.0, 0.0]])
    mask = torch.tensor([[True, True, False]])
    expected = math.log1p(math.exp(2.0 * (0.2 - 0.5)))
    assert RankLoss(scale=2.0)(scores, grades, mask).item() == pytest.approx(expected, rel=1e-6)
    assert RankLoss()(scores, torch.zeros(1, 3), mask).item() == 0.0


def test_config_validation():
    with pytest.raises(ConfigError, match="epochs"):
        TrainConfig(epochs=0)
    with pytest.raises(ConfigError, match="val_fraction"):
        TrainConfig(val_fraction=0.7)
    with pytest.raises(ConfigError, match="lr_decay must be in"):
        TrainConfig(lr_decay=1.0)
    with pytest.raises(ConfigError, match="lr_decays"):
        TrainConfig(lr_decays=-1)
    with pytest.raises(ConfigError, match="tau_end"):
        TrainConfig(tau_start=0.1, tau_end=1.0)
    with pytest.raises(ConfigError, match="device"):
        TrainConfig(device="tpu")
    with pytest.raises(ConfigError, match="unknown"):
        TrainConfig.from_dict({"epochz": 3})
    assert TrainConfig.from_dict(TrainConfig(seed=5).to_dict()) == TrainConfig(seed=5)


def test_read_qrels(tmp_path):
    p = tmp_path / "q.tsv"
    p.write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t2\nq2\td3\t0\n")
    assert read_qrels(p) == {"q1": {"d1": 1.0, "d2": 2.0}, "q2": {"d3": 0.0}}
    p.write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\n")
    with pytest.raises(DataError, match="line 3"):
        read_qrels(p)
    p.write_text("query-id\tcorpus-id\tscore\nq1\td1\thigh\n")
    with pytest.raises(DataError, match="line 2"):
        read_qrels(p)
    with pytest.raises(DataError, match="cannot read"):
        read_qrels(tmp_path / "absent.tsv")


def test_build_ranking_examples_candidates_are_judged_plus_hard_negatives():
    docs = np.eye(4, dtype=np.float32)
    docs[3] = [0.9, 0.1, 0, 0]  # nearest to q1 after d0
    queries = np.array([[1.0, 0.0, 0.0, 0.0]], np.float32)
    ex = build_ranking_examples(queries, docs, {"q1": {"d1": 1, "unknown": 2}, "q9": {"d0": 1}}, ["q1"],
                                ["d0", "d1", "d2", "d3"], hard_negatives=2)
    assert ex.query_ids == ("q1",)
    assert ex.candidates[0][ex.mask[0]].tolist() == [1, 0, 3]  # judged d1, then d0 and d3 by cosine
    assert ex.grades[0][ex.mask[0]].tolist() == [1.0, 0.0, 0.0]
    with pytest.raises(DataError, match="no qrel"):
        build_ranking_examples(queries, docs, {"qx": {"d0": 1}}, ["q1"], ["d0", "d1", "d2", "d3"])
    with pytest.raises(DataError, match="doc ids"):
        build_ranking_examples(queries, docs, {"q1": {"d0": 1}}, ["q1"], ["d0"])


def test_order_loss_hand_computed_and_zero_for_the_same_ranking():
    from smec_vdb.train.similarity_loss import NeighbourOrderLoss

    teacher = torch.tensor([[0.9, 0.5, 0.1]])
    student = torch.tensor([[0.5, 0.9, 0.1]])
    valid = torch.tensor([[True, True, False]])
    loss = NeighbourOrderLoss(temperature=0.5)
    p = torch.softmax(torch.tensor([1.8, 1.0]), 0)
    q = torch.softmax(torch.tensor([1.0, 1.8]), 0)
    assert loss(teacher, student, valid).item() == pytest.approx(float((p * (p / q).log()).sum()), rel=1e-5)
    assert loss(teacher, teacher, valid).item() == pytest.approx(0.0, abs=1e-7)
    with pytest.raises(ValueError):
        NeighbourOrderLoss(temperature=0.0)


def test_the_objectives_similarity_part_is_eq7_over_the_s_xbm_neighbours(vectors):
    """The step takes the teacher cosines from the memory search and the student cosines from one
    (B, U) product: the same figure as eq. 7 over gathered full and compressed neighbours."""
    from smec_vdb.train.data import TrainingData
    from smec_vdb.train.memory import CrossBatchMemory
    from smec_vdb.train.objective import LossTerms, Objective, Outputs

    config = TrainConfig(batch_size=64, memory_size=200, memory_topk=8, device="cpu")
    data = TrainingData.build(vectors, config)
    weight = torch.randn(6, vectors.shape[1], generator=torch.Generator().manual_seed(0))
    objective = Objective(data, config, LossTerms(similarity=1.0))
    shadow = CrossBatchMemory(vectors.shape[1], config.memory_size)
    for step in range(4):
        anchors = data.train_rows[step * 64 : (step + 1) * 64]
        parts = objective(lambda rows, q: Outputs([data.corpus[rows] @ weight.T]), anchors, None)
        shadow.enqueue(data.teacher[anchors], anchors)
        neighbours = shadow.topk(data.teacher[anchors], config.memory_topk, query_ids=anchors)[1]
        low = data.corpus @ weight.T
        expected = SimilarityPreservationLoss()(data.teacher[anchors], data.teacher[neighbours], low[anchors], low[neighbours])
        assert torch.allclose(parts["similarity"], expected, atol=1e-5)
