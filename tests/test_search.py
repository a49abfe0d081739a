"""Coarse-to-fine planning and the exact cascade (smec_vdb.search)."""

from __future__ import annotations

import numpy as np
import pytest

from smec_vdb.backend import SearchStage
from smec_vdb.errors import ConfigError
from smec_vdb.search import cascade, plan_stages, similarity, stage_limits


def test_stage_limits_and_plan():
    assert stage_limits(1, 10, 300) == [10]
    assert stage_limits(3, 10, 300) == [300, 150, 10]
    q = {"d2": np.ones(2), "full": np.ones(4)}
    stages = plan_stages(q, ["d2", "full"], 5, 50)
    assert [(s.name, s.limit) for s in stages] == [("d2", 50), ("full", 5)]
    with pytest.raises(ConfigError):
        plan_stages(q, ["d2", "full"], 5, 4)


def test_cascade_equals_brute_force_when_the_shortlist_holds_everything():
    rng = np.random.default_rng(0)
    full = rng.normal(size=(200, 8)).astype(np.float32)
    q = rng.normal(size=8).astype(np.float32)
    stages = [SearchStage("d2", q[:2], 200), SearchStage("full", q, 7)]
    rows, scores = cascade(stages, {"d2": full[:, :2], "full": full}, "cosine")
    expected = np.argsort(-similarity("cosine", q, full), kind="stable")[:7]
    assert rows.tolist() == expected.tolist()
    np.testing.assert_allclose(scores, similarity("cosine", q, full)[expected], rtol=1e-6)


def test_cascade_breaks_ties_by_tie_order():
    m = np.ones((4, 2), dtype=np.float32)
    rows, _ = cascade([SearchStage("v", np.ones(2), 2)], {"v": m}, "dot", tie_order=np.array([0, 3, 1, 2]))
    assert rows.tolist() == [1, 3]
