"""The coarse-candidate rule and how SmecCollection.search applies it (pure logic: an in-memory fake backend)."""

from __future__ import annotations

import numpy as np
import pytest

from smec_vdb.backend import CollectionSchema
from smec_vdb.collection import COMPRESSOR_KEY, SmecCollection, compressor_record, plan_resolutions
from smec_vdb.search import default_candidates
from smec_vdb.layout import parse_layout, parse_quantization
from smec_vdb.train import TrainConfig, train


def test_rule_depends_on_the_coarse_width_not_the_ratio():
    # the same coarse width asks the same budget whatever the input width
    assert default_candidates(10, 384, 128) == default_candidates(10, 3584, 128) == 160
    assert default_candidates(10, 3584, 128) < 1400  # the former rule's figure at 3584 -> 128
    assert default_candidates(10, 384, 64) == 320
    assert default_candidates(10, 3584, 256) == 80


def test_rule_is_monotone_and_bounded():
    widths = [8, 16, 32, 64, 96, 128, 192, 256, 512, 1024]
    budgets = [default_candidates(10, 4096, d) for d in widths]
    assert budgets == sorted(budgets, reverse=True)  # narrower coarse -> more candidates
    assert min(budgets) == 10 * 4 and max(budgets) == 10 * 64
    assert [default_candidates(k, 384, 128) for k in (1, 10, 100)] == [16, 160, 1600]  # linear in k


def test_rule_doubles_for_coarse_codes_of_two_bits_or_less():
    plain = default_candidates(10, 384, 128)
    assert default_candidates(10, 384, 128, parse_quantization("binary2:q8")) == 2 * plain
    assert default_candidates(10, 384, 128, parse_quantization("binary1")) == 2 * plain
    assert default_candidates(10, 384, 128, parse_quantization("int8")) == plain
    assert default_candidates(10, 384, 128, parse_quantization("turbo4")) == plain
    assert default_candidates(10, 384, 128, parse_quantization("none")) == plain


def test_no_rescoring_needed_when_the_coarse_is_the_input():
    assert default_candidates(10, 384, 384) == 10


class FakeBackend:
    """Records the stages a search sends; holds one schema and its metadata."""

    target = "fake"
    supports_aliases = False

    def __init__(self) -> None:
        self.schemas: dict[str, CollectionSchema] = {}
        self.metadata: dict[tuple[str, str], dict] = {}
        self.stages: list = []

    def create_collection(self, name, schema):
        self.schemas[name] = schema

    def schema(self, name):
        return self.schemas[name]

    def set_metadata(self, name, key, value):
        self.metadata[(name, key)] = value

    def get_metadata(self, name, key):
        return self.metadata.get((name, key))

    def search_stages(self, name, stages, *, filter=None, with_payload=True):
        self.stages = list(stages)
        return []


@pytest.fixture(scope="module")
def compressor():
    x = np.random.default_rng(0).standard_normal((300, 64)).astype(np.float32)
    return train(x / np.linalg.norm(x, axis=1, keepdims=True), [16], method="pca", config=TrainConfig(seed=0))


@pytest.mark.parametrize("quantize, factor", [(None, 1), ("int8", 1), ("binary2", 2)])
def test_search_uses_the_rule_with_the_layouts_quantization(compressor, quantize, factor):
    backend = FakeBackend()
    col = SmecCollection.create(backend, "c", compressor, layout=parse_layout("tiered", quantize=quantize))
    col.search(np.ones(64, dtype=np.float32), k=10)
    coarse, last = backend.stages
    assert (coarse.name, last.name) == ("d16", "full")
    assert coarse.limit == factor * default_candidates(10, 64, 16) and last.limit == 10
    col.search(np.ones(64, dtype=np.float32), k=10, candidates=33)  # an explicit budget wins
    assert backend.stages[0].limit == 33


def test_search_without_a_recorded_layout_uses_the_float_rule(compressor):
    backend = FakeBackend()
    resolutions = plan_resolutions(compressor, None, True)
    backend.create_collection("c", CollectionSchema(resolutions))
    backend.set_metadata("c", COMPRESSOR_KEY, compressor_record(compressor, resolutions, None))
    SmecCollection(backend, "c", compressor).search(np.ones(64, dtype=np.float32), k=5)
    assert backend.stages[0].limit == default_candidates(5, 64, 16)
