"""Pure logic of the plan's checks (issue 21/22): payload limits, the engine probe's arithmetic, the
batch validation of the new point shapes."""

from __future__ import annotations

import numpy as np
import pytest

from smec_vdb.adapters.validation import check_batch
from smec_vdb.backend import Batch, CollectionSchema, PayloadLimits, Resolution
from smec_vdb.errors import DimensionError, InvalidVectorError
from smec_vdb.migrate.probe import Fidelity, ulps_apart


@pytest.mark.parametrize("payload, limits, found", [
    ({"a": 10**30}, PayloadLimits(), "'a' holds the integer 1000000000000000000000000000000, beyond signed 64 bits"),
    ({"a": [1, -(2**63) - 1]}, PayloadLimits(), "'a.1' holds the integer"),
    ({"a": {"b": float("inf")}}, PayloadLimits(), "'a.b' holds inf, which JSON cannot hold"),
    ({"a": {"b": {"c": 1}}}, PayloadLimits(max_depth=2), "'a.b' nests 3 levels deep (limit 2)"),
    ({"s": "é" * 40}, PayloadLimits(max_string_bytes=64), "'s' holds a string of 80 bytes (limit 64)"),
    ({"s": "x" * 100}, PayloadLimits(max_json_bytes=100), "the payload is 108 bytes of JSON (limit 100)"),
])
def test_a_payload_beyond_the_limits_is_named_by_key(payload, limits, found):
    assert found in limits.problem(payload)


@pytest.mark.parametrize("payload, limits", [
    ({"a": 2**63 - 1, "b": -(2**63), "c": True, "d": None}, PayloadLimits()),
    ({"a": {"b": 1}}, PayloadLimits(max_depth=2)),
    ({"s": "x" * 91}, PayloadLimits(max_json_bytes=100, max_string_bytes=91)),
])
def test_a_payload_within_the_limits_passes(payload, limits):
    assert limits.problem(payload) is None


def test_ulps_apart_counts_doubles_between():
    x = 361.59505490948476
    assert ulps_apart(x, x) == 0 and ulps_apart(x, np.nextafter(x, 1e9)) == 1
    assert ulps_apart(-0.0, 0.0) == 0 and ulps_apart(-5e-324, 5e-324) == 2


def test_fidelity_names_its_classes_and_round_trips():
    f = Fidelity(floats_probed=10, floats_rounded=2, payload_float_ulps=1, normalises_cosine=True, cosine_atol=1e-7)
    assert set(f.classes()) == {"payload floats rounded by the engine", "cosine vectors normalised by the engine"}
    assert Fidelity.from_dict(f.as_dict()) == f and Fidelity().classes() == {}


def test_batches_of_multivectors_datatypes_and_absent_vectors_are_validated():
    schema = CollectionSchema((Resolution("d", 4), Resolution("u8", 2, datatype="uint8"),
                               Resolution("m", 3, multivector=True)))
    ok = Batch([1, 2], {"d": np.ones((2, 4)), "u8": [[0, 255], [9, 9]], "m": [np.ones((2, 3)), np.ones((1, 3))]},
               absent={"d": [False, True]})
    checked = check_batch(schema, Batch(ok.ids, {**ok.vectors, "d": np.array([[1.0] * 4, [np.nan] * 4])}, absent=ok.absent))
    assert checked.has("d", 0) and not checked.has("d", 1) and checked.vectors["m"][1].shape == (1, 3)
    with pytest.raises(InvalidVectorError, match="uint8 vector cannot hold"):
        check_batch(schema, Batch(ok.ids, {**ok.vectors, "u8": [[0, 256], [1, 1]]}))
    with pytest.raises(InvalidVectorError, match="uint8 vector cannot hold"):
        check_batch(schema, Batch(ok.ids, {**ok.vectors, "u8": [[0.5, 1], [1, 1]]}))
    with pytest.raises(DimensionError, match="multivector 'm' of id 2"):
        check_batch(schema, Batch(ok.ids, {**ok.vectors, "m": [np.ones((2, 3)), np.ones((0, 3))]}))
    with pytest.raises(InvalidVectorError, match="'d' of id 1 has NaN"):
        check_batch(schema, Batch(ok.ids, {**ok.vectors, "d": np.array([[np.nan] * 4, [1.0] * 4])}, absent=ok.absent))
