"""The vectorised per-point comparison: each kind of difference found on its row, and only there; the
engine's own changes counted by class only within the probe's bounds."""

from __future__ import annotations

import numpy as np
import pytest

from smec_vdb.backend import Point, SparseVector
from smec_vdb.migrate.compare import (
    CARRIED, CONTENT, ENCODING, FULL_DIFFERS, NO_SOURCE_VECTOR, PARTITION, Expected, Rules, compare, unit_rows,
)
from smec_vdb.migrate.probe import COSINE_VECTORS, PAYLOAD_FLOATS, Fidelity

RNG = np.random.default_rng(0)
N = 8
UNIT = unit_rows(RNG.normal(size=(N, 6)).astype(np.float32))
LOW = RNG.normal(size=(N, 3)).astype(np.float32)
CARRY = RNG.normal(size=(N, 4)).astype(np.float32)
TOKENS = [RNG.normal(size=(1 + i % 3, 2)).astype(np.float32) for i in range(N)]
HAS = np.array([i != 6 for i in range(N)])  # point 6: a sparse-only point, no migrated vector


def source_points() -> list[Point]:
    return [Point(i, {**({"emb": UNIT[i]} if HAS[i] else {}), "img": CARRY[i], "colbert": TOKENS[i]},
                  {"n": i, "x": 0.1 * i, "tags": ["a"], "none": None}, {"s": SparseVector.of([1, 5], [0.5, 0.25])},
                  partition=f"p{i % 2}") for i in range(N)]


def stored_points() -> list[Point]:
    return [Point(i, {**({"full": UNIT[i].copy(), "d3": LOW[i].copy()} if HAS[i] else {}), "img": CARRY[i].copy(),
                      "colbert": TOKENS[i].copy()},
                  {"n": i, "x": 0.1 * i, "tags": ["a"], "none": None}, {"s": SparseVector.of([1, 5], [0.5, 0.25])},
                  partition=f"p{i % 2}") for i in range(N)]


def expected() -> Expected:
    low = np.where(HAS[:, None], LOW, 0.0)
    return (Expected.of(source_points(), ["s"], partitioned=True)
            .expect("img", CARRY, cosine=True, kind=CARRIED)
            .expect("colbert", TOKENS, cosine=True, kind=CARRIED)
            .expect("full", UNIT, present=HAS, cosine=True, kind=FULL_DIFFERS, unexpected=NO_SOURCE_VECTOR)
            .expect("d3", low, present=HAS, exact=False, kind=ENCODING, unexpected=NO_SOURCE_VECTOR))


EXACT = Rules()


def kinds_of(stored: list[Point], rules: Rules = EXACT) -> list[str | None]:
    return compare(expected(), stored, ["s"], rules)[0]


def test_an_exact_copy_has_no_difference_and_no_class():
    assert compare(expected(), stored_points(), ["s"], Rules()) == ([None] * N, {})


@pytest.mark.parametrize("edit, kind", [
    (lambda p: setattr(p, "partition", "other"), PARTITION),
    (lambda p: p.payload.update(n=float(p.payload["n"])), CONTENT),  # 1 → 1.0: the type counts
    (lambda p: p.payload.pop("none"), CONTENT),
    (lambda p: p.payload.update(tags=["a", "b"]), CONTENT),
    (lambda p: p.sparse.update(s=SparseVector.of([1, 5], [0.5, 0.3])), CONTENT),
    (lambda p: p.vectors.update(img=p.vectors["img"] * 2.0), CARRIED),  # exact: a scaled cosine vector differs
    (lambda p: p.vectors.update(img=np.nextafter(p.vectors["img"], np.float32(9))), CARRIED),  # 1 float32 ulp
    (lambda p: p.vectors.pop("img"), CARRIED),
    (lambda p: p.vectors.update(colbert=p.vectors["colbert"][:1] + 1e-3), CARRIED),
    (lambda p: p.vectors.update(full=-p.vectors["full"]), FULL_DIFFERS),
    (lambda p: p.vectors.update(full=np.nextafter(p.vectors["full"], np.float32(9))), FULL_DIFFERS),
    (lambda p: p.vectors.pop("full"), FULL_DIFFERS),
    (lambda p: p.vectors.update(d3=p.vectors["d3"][:2]), ENCODING),
    (lambda p: p.vectors.update(d3=p.vectors["d3"] + 2e-4), ENCODING),
])
def test_each_difference_is_found_on_its_row_only(edit, kind):
    stored = stored_points()
    edit(stored[3])
    kinds = kinds_of(stored)
    assert kinds[3] == kind and kinds[:3] + kinds[4:] == [None] * (N - 1)


def test_a_point_without_the_migrated_vector_must_have_no_compressed_vector():
    stored = stored_points()
    stored[6].vectors["d3"] = np.zeros(3, np.float32)
    assert kinds_of(stored)[6] == NO_SOURCE_VECTOR


def test_the_first_difference_in_order_is_reported():
    stored = stored_points()
    stored[5].payload["n"] = -1
    stored[5].vectors["d3"] = stored[5].vectors["d3"] * 0
    assert kinds_of(stored)[5] == CONTENT
    stored[5].partition = "elsewhere"
    assert kinds_of(stored)[5] == PARTITION


def test_payload_floats_rounded_within_the_probe_bound_are_a_class_and_beyond_a_difference():
    stored = stored_points()
    stored[2].payload["x"] = float(np.nextafter(0.2, 1.0))  # what qdrant-edge-py 0.9 does to some doubles
    assert kinds_of(stored)[2] == CONTENT  # exact by default
    rules = Rules.of(Fidelity(floats_probed=10, floats_rounded=1, payload_float_ulps=1))
    assert compare(expected(), stored, ["s"], rules) == ([None] * N, {PAYLOAD_FLOATS: 1})
    stored[2].payload["x"] = 0.2 + 1e-12
    assert kinds_of(stored, rules)[2] == CONTENT


def test_cosine_vectors_normalised_by_the_engine_are_a_class_within_its_bound_only():
    stored = stored_points()
    stored[4].vectors["img"] = unit_rows(CARRY[4])  # Qdrant stores a cosine vector normalised
    stored[1].vectors["colbert"] = unit_rows(TOKENS[1])
    assert kinds_of(stored)[4] == CARRIED
    rules = Rules.of(Fidelity(normalises_cosine=True, cosine_atol=1e-6))
    assert compare(expected(), stored, ["s"], rules) == ([None] * N, {COSINE_VECTORS: 2})
    stored[4].vectors["img"] = unit_rows(CARRY[4]) + 1e-5  # beyond the probe's bound
    assert kinds_of(stored, rules)[4] == CARRIED


def test_the_encode_tolerance_is_a_rule():
    stored = stored_points()
    stored[1].vectors["d3"] = stored[1].vectors["d3"] + 5e-5
    assert kinds_of(stored)[1] is None
    assert kinds_of(stored, Rules(encode_atol=0.0))[1] == ENCODING
