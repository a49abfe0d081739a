"""The vectorised per-point comparison: each kind of difference found on its row, and only there."""

from __future__ import annotations

import numpy as np
import pytest

from smec_vdb.backend import Point, SparseVector
from smec_vdb.migrate.compare import CARRIED, CONTENT, ENCODING, FULL_DIFFERS, Expected, Rules, compare

RNG = np.random.default_rng(0)
N = 8
X = RNG.normal(size=(N, 6)).astype(np.float32)
LOW = RNG.normal(size=(N, 3)).astype(np.float32)
CARRY = RNG.normal(size=(N, 4)).astype(np.float32)


def source_points() -> list[Point]:
    return [Point(i, {"emb": X[i], "img": CARRY[i]}, {"n": i, "x": 0.1 * i, "tags": ["a"], "none": None},
                  {"s": SparseVector.of([1, 5], [0.5, 0.25])}) for i in range(N)]


def stored_points() -> list[Point]:
    unit = X / np.linalg.norm(X, axis=1, keepdims=True)
    return [Point(i, {"full": unit[i].copy(), "d3": LOW[i].copy(), "img": 2.0 * CARRY[i]},  # cosine: scale is free
                  {"n": i, "x": 0.1 * i, "tags": ["a"], "none": None}, {"s": SparseVector.of([1, 5], [0.5, 0.25])})
            for i in range(N)]


def expected() -> Expected:
    return (Expected.of(source_points(), ["s"])
            .expect("img", CARRY, normalised=True, kind=CARRIED)
            .expect("full", X, normalised=True, kind=FULL_DIFFERS)
            .expect("d3", LOW, normalised=False, kind=ENCODING))


def test_an_exact_copy_has_no_difference():
    assert compare(expected(), stored_points(), ["s"], Rules()) == [None] * N


@pytest.mark.parametrize("edit, kind", [
    (lambda p: p.payload.update(n=float(p.payload["n"])), CONTENT),  # 1 → 1.0: the type counts
    (lambda p: p.payload.pop("none"), CONTENT),
    (lambda p: p.payload.update(tags=["a", "b"]), CONTENT),
    (lambda p: p.sparse.update(s=SparseVector.of([1, 5], [0.5, 0.3])), CONTENT),
    (lambda p: p.vectors.update(img=p.vectors["img"] + 0.01), CARRIED),
    (lambda p: p.vectors.pop("img"), CARRIED),
    (lambda p: p.vectors.update(full=-p.vectors["full"]), FULL_DIFFERS),
    (lambda p: p.vectors.update(d3=p.vectors["d3"][:2]), ENCODING),
    (lambda p: p.vectors.update(d3=p.vectors["d3"] + 2e-4), ENCODING),
])
def test_each_difference_is_found_on_its_row_only(edit, kind):
    stored = stored_points()
    edit(stored[3])
    kinds = compare(expected(), stored, ["s"], Rules())
    assert kinds[3] == kind and kinds[:3] + kinds[4:] == [None] * (N - 1)


def test_the_first_difference_in_order_is_reported():
    stored = stored_points()
    stored[5].payload["n"] = -1
    stored[5].vectors["d3"] = stored[5].vectors["d3"] * 0
    assert compare(expected(), stored, ["s"], Rules())[5] == CONTENT


def test_payload_floats_within_the_rules_ulps_are_equal_and_outside_not():
    stored = stored_points()
    stored[2].payload["x"] = float(np.nextafter(0.2, 1.0))  # what qdrant-edge-py 0.9 does to some doubles
    assert compare(expected(), stored, ["s"], Rules())[2] is None
    assert compare(expected(), stored, ["s"], Rules(payload_ulps=0))[2] == CONTENT
    stored[2].payload["x"] = 0.2 + 1e-12
    assert compare(expected(), stored, ["s"], Rules())[2] == CONTENT


def test_vector_tolerance_is_a_rule():
    stored = stored_points()
    stored[1].vectors["d3"] = stored[1].vectors["d3"] + 5e-5
    assert compare(expected(), stored, ["s"], Rules())[1] is None
    assert compare(expected(), stored, ["s"], Rules(vector_atol=0.0))[1] == ENCODING
