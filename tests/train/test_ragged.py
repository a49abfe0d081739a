"""Ragged labelled candidates: the rank loss of eq. 8 without padding to the widest query."""

import torch

from smec_vdb.train.config import TrainConfig
from smec_vdb.train.data import TrainingData
from smec_vdb.train.labels import RankingExamples
from smec_vdb.train.objective import LossTerms, Objective, Outputs
from smec_vdb.train.ragged import RaggedCandidates, ragged_arange
from smec_vdb.train.rank_loss import RankLoss


def _padded(queries: int = 9, width: int = 12, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    candidates = torch.randint(0, 300, (queries, width), generator=g)
    grades = torch.randint(0, 3, (queries, width), generator=g).float()
    mask = torch.rand(queries, width, generator=g) > 0.4
    mask[0] = True   # one full-width query, one with a single candidate, one with none
    mask[1] = False
    mask[1, 3] = True
    mask[2] = False
    return candidates, grades, mask


def test_ragged_arange_concatenates_ranges():
    assert ragged_arange(torch.tensor([5, 0, 9]), torch.tensor([2, 0, 3])).tolist() == [5, 6, 9, 10, 11]


def test_a_step_holds_each_querys_real_candidates_sorted_by_grade_and_only_their_ordered_pairs():
    candidates, grades, mask = _padded()
    ragged = RaggedCandidates.from_padded(candidates, grades, mask)
    rows = torch.tensor([4, 0, 1, 2])
    step = ragged.step(rows)
    expected_docs, expected_pairs = [], 0
    for q in rows.tolist():
        real = [(float(grades[q, c]), int(candidates[q, c])) for c in range(candidates.shape[1]) if mask[q, c]]
        expected_docs += [doc for _, doc in sorted(real, key=lambda gd: -gd[0])]
        expected_pairs += sum(1 for a, _ in real for b, _ in real if a > b)
    assert step.docs.tolist() == expected_docs
    assert step.gain.numel() == expected_pairs and bool((step.gain > 0).all())
    assert bool((step.owner[step.better] == step.owner[step.worse]).all())


def test_ragged_rank_loss_equals_the_dense_rank_loss_of_the_padded_rows():
    candidates, grades, mask = _padded()
    scores = torch.rand(candidates.shape, generator=torch.Generator().manual_seed(1))
    rows = torch.tensor([3, 0, 7, 1, 2, 8])
    dense = RankLoss(scale=5.0)(scores[rows], grades[rows], mask[rows])
    ragged = RaggedCandidates.from_padded(candidates, grades, mask)
    order = torch.sort(torch.where(mask, grades, float("-inf")), dim=1, descending=True, stable=True).indices
    flat = torch.cat([scores[q].gather(0, order[q])[: int(mask[q].sum())] for q in rows.tolist()])
    assert torch.allclose(ragged.step(rows).rank_loss(flat, 5.0), dense)
    assert ragged.step(torch.tensor([2])).rank_loss(torch.zeros(0), 5.0).item() == 0.0


def test_the_objectives_rank_part_equals_the_dense_rank_loss_on_the_padded_examples(vectors):
    """The supervised step scores each query's real candidates in the compressed space: the same
    figure as eq. 8 over the padded rows, with one query far wider than the rest."""
    g = torch.Generator().manual_seed(2)
    n_docs, width = len(vectors), 60
    candidates = torch.randint(0, n_docs, (20, width), generator=g)
    grades = (torch.rand(20, width, generator=g) < 0.2).float()
    mask = torch.zeros(20, width, dtype=torch.bool)
    mask[:, :6] = True
    mask[0] = True  # the widest query
    queries = torch.from_numpy(vectors[:20]) + 0.05 * torch.randn(20, vectors.shape[1], generator=g)
    ex = RankingExamples(queries.numpy(), candidates.numpy(), grades.numpy(), mask.numpy(), tuple(f"q{i}" for i in range(20)))
    config = TrainConfig(batch_size=64, memory_topk=8, val_fraction=0.1, device="cpu")
    data = TrainingData.build(vectors, config, ex, ex.subset(list(range(5))))
    weight = torch.randn(6, vectors.shape[1], generator=g)

    def model(doc_rows, query_rows):
        return Outputs([data.corpus[doc_rows] @ weight.T], [data.queries[query_rows] @ weight.T])

    objective = Objective(data, config, LossTerms(similarity=0.0))
    query_rows = torch.arange(20)
    parts = objective(model, torch.arange(64), query_rows)
    low_q = torch.nn.functional.normalize(data.queries[query_rows] @ weight.T, dim=1)
    low_d = torch.nn.functional.normalize(data.corpus @ weight.T, dim=1)
    dense = RankLoss(config.rank_scale)(torch.einsum("qd,qcd->qc", low_q, low_d[candidates]), grades, mask)
    assert torch.allclose(parts["rank"], dense, atol=1e-6)


def test_a_supervised_step_allocates_for_real_candidates_not_for_the_widest_query(vectors):
    """64 queries, one with 1,500 candidates (1 relevant), the rest with 4: no tensor of the step may be
    sized by queries × widest² (64 × 1,500² floats = 576 MB when padded); the real pairs are 1,499 + 63·3."""
    from torch.profiler import ProfilerActivity, profile

    g = torch.Generator().manual_seed(3)
    n_docs, width, queries = len(vectors), 1500, 64
    candidates = torch.randint(0, n_docs, (queries, width), generator=g)
    grades = torch.zeros(queries, width)
    grades[:, 0] = 1.0
    mask = torch.zeros(queries, width, dtype=torch.bool)
    mask[:, :4] = True
    mask[0] = True
    ex = RankingExamples((torch.from_numpy(vectors[:queries]) + 0.05).numpy(), candidates.numpy(), grades.numpy(),
                         mask.numpy(), tuple(f"q{i}" for i in range(queries)))
    config = TrainConfig(batch_size=64, memory_size=200, memory_topk=8, device="cpu")
    data = TrainingData.build(vectors, config, ex, ex.subset(list(range(4))))
    weight = torch.randn(6, vectors.shape[1], generator=g, requires_grad=True)

    def model(doc_rows, query_rows):
        return Outputs([data.corpus[doc_rows] @ weight.T], [data.queries[query_rows] @ weight.T])

    objective = Objective(data, config, LossTerms())
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        parts = objective(model, torch.arange(64), torch.arange(queries))
        sum(parts.values()).backward()
    largest = max(e.cpu_memory_usage for e in prof.events())
    assert largest < 4 * 1024 * 1024, f"a step allocated {largest / 2**20:.1f} MB at once"
