import pytest
import torch

from smec_vdb.train.memory import CrossBatchMemory


def test_fifo_keeps_the_newest_items_oldest_first():
    mem = CrossBatchMemory(dim=2, size=3)
    for i in range(5):
        mem.enqueue(torch.tensor([[1.0, float(i)]]), torch.tensor([i]))
    vectors, ids = mem.contents()
    assert len(mem) == 3 and ids.tolist() == [2, 3, 4]
    assert torch.allclose(vectors[0], torch.nn.functional.normalize(torch.tensor([1.0, 2.0]), dim=0))


def test_a_batch_larger_than_the_memory_keeps_its_last_rows():
    mem = CrossBatchMemory(dim=2, size=2)
    mem.enqueue(torch.eye(2).repeat(2, 1), torch.tensor([7, 8, 9, 10]))
    assert mem.contents()[1].tolist() == [9, 10]


def test_topk_returns_most_similar_stored_items_and_excludes_self():
    mem = CrossBatchMemory(dim=2, size=10)
    angles = torch.tensor([0.0, 0.1, 0.3, 1.5, 3.0])
    x = torch.stack([angles.cos(), angles.sin()], dim=1)
    mem.enqueue(x, torch.arange(5))
    sims, ids = mem.topk(x[:1], 2, query_ids=torch.tensor([0]))
    assert ids.tolist() == [[1, 2]]
    assert torch.allclose(sims, torch.cos(torch.tensor([[0.1, 0.3]])), atol=1e-6)
    _, ids = mem.topk(x[:1], 2)  # no query ids: self is a legitimate neighbour
    assert ids.tolist() == [[0, 1]]


def test_topk_excludes_every_copy_of_self_and_shrinks_k_to_what_is_available():
    mem = CrossBatchMemory(dim=2, size=10)
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    mem.enqueue(x, torch.tensor([0, 1]))
    mem.enqueue(x[:1], torch.tensor([0]))  # item 0 enqueued again (next epoch)
    sims, ids = mem.topk(x[:1], 5, query_ids=torch.tensor([0]))
    assert ids.tolist() == [[1]]


def test_memory_stores_detached_inputs():
    mem = CrossBatchMemory(dim=3, size=4)
    x = torch.randn(2, 3, requires_grad=True)
    mem.enqueue(x * 2)
    assert not mem.contents()[0].requires_grad


def test_empty_memory_cannot_answer():
    with pytest.raises(ValueError):
        CrossBatchMemory(dim=2, size=2).topk(torch.ones(1, 2), 1)
