"""Layout dataclasses: validation, parsing, JSON round trip, and the bytes-per-point model."""

from __future__ import annotations

import pytest

from smec_vdb.errors import ConfigError
from smec_vdb.layout import (
    GRAPH_BYTES_PER_LINK,
    LAYOUTS,
    Layout,
    Quantization,
    VectorLayout,
    check_engine_support,
    default_layout,
    footprint,
    parse_layout,
    parse_quantization,
)

WIDTHS = {"full": 384, "d128": 128}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"kind": "pq"}, "kind must be"),
        ({"kind": "binary", "bits": 3.0}, "bits must be one of"),
        ({"kind": "turbo"}, "bits must be one of"),
        ({"kind": "int8", "bits": 8.0}, "takes no bits"),
        ({"kind": "int8", "query_bits": 8}, "query_bits applies to binary"),
        ({"kind": "binary", "bits": 1.0, "query_bits": 2}, "query_bits applies to binary"),
        ({"kind": "int8", "oversampling": 0.5}, "oversampling must be within"),
        ({"kind": "none", "rescore": True}, "need a quantization kind"),
    ],
)
def test_quantization_rejects_bad_settings(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Quantization(**kwargs)


def test_vector_layout_and_layout_validate():
    with pytest.raises(ConfigError, match="tier must be ram or disk"):
        VectorLayout(graph=True, tier="ssd")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="coarse resolution needs"):
        Layout(coarse=VectorLayout(graph=False, tier="disk"))


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("int8", Quantization("int8")),
        ("binary1.5", Quantization("binary", 1.5)),
        ("binary2:q8", Quantization("binary", 2.0, 8)),
        ("TURBO4", Quantization("turbo", 4.0)),
        ("none", Quantization()),
    ],
)
def test_parse_quantization(spec, expected):
    assert parse_quantization(spec) == expected


@pytest.mark.parametrize("spec", ["binary3", "int4", "turbo", "binary2:x8", "int8:q8", ""])
def test_parse_quantization_rejects(spec):
    with pytest.raises(ConfigError):
        parse_quantization(spec)


def test_parse_layout_places_quantized_coarse_floats_on_disk():
    layout = parse_layout("tiered", quantize="int8")
    assert layout.coarse == VectorLayout(graph=True, tier="disk", quantization=Quantization("int8"))
    assert layout.rescore == LAYOUTS["tiered"].rescore
    assert parse_layout("all-ram", quantize="int8").coarse.tier == "ram"
    assert parse_layout("tiered", quantize="none") == LAYOUTS["tiered"]
    with pytest.raises(ConfigError, match="layout must be one of"):
        parse_layout("fastest")


def test_placement_is_by_width_not_by_name():
    layout = LAYOUTS["tiered"]
    assert layout.placement(WIDTHS, "d128") is layout.coarse
    assert layout.placement(WIDTHS, "full") is layout.rescore
    assert layout.placement({"full": 384}, "full") is layout.coarse  # a lone vector is searched first
    with pytest.raises(ConfigError, match="no vector named 'd64'"):
        layout.placement(WIDTHS, "d64")


def test_carried_vectors_keep_engine_defaults():
    """A migrated source's other vectors (narrower or not) are not placed by the compressor's layout."""
    layout = LAYOUTS["tiered"].governing(["full", "d128"])
    widths = {**WIDTHS, "image": 64}
    assert layout.placement(widths, "d128") is layout.coarse  # the narrowest *governed* vector
    assert layout.placement(widths, "full") is layout.rescore
    assert layout.placement(widths, "image") == VectorLayout(graph=True, tier="ram")
    assert Layout.from_json(layout.to_json()).vectors == ("full", "d128")
    assert LAYOUTS["tiered"].placement(widths, "image") is LAYOUTS["tiered"].coarse  # ungoverned: all vectors


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_layout_json_round_trip(name):
    layout = parse_layout(name, quantize="binary2:q8")
    assert Layout.from_json(layout.to_json()) == layout
    with pytest.raises(ConfigError, match="malformed layout record"):
        Layout.from_json({"coarse": layout.to_json()["coarse"]})


def test_footprint_of_tiered_and_all_ram():
    graph = 2 * 16 * GRAPH_BYTES_PER_LINK
    tiered = footprint(LAYOUTS["tiered"], WIDTHS, m=16)
    assert tiered.ram == pytest.approx(128 * 4 + graph)  # full vector on disk, no graph
    assert tiered.disk == pytest.approx((384 + 128) * 4 + graph)
    all_ram = footprint(LAYOUTS["all-ram"], WIDTHS, m=16)
    assert all_ram.ram == pytest.approx((384 + 128) * 4 + 2 * graph) == all_ram.disk
    flat = footprint(LAYOUTS["all-ram"], WIDTHS, m=16, graphs=False)
    assert flat.ram == (384 + 128) * 4


@pytest.mark.parametrize(
    "spec, code", [("int8", 128 + 4), ("binary1", 16), ("binary1.5", 24), ("binary2", 32), ("turbo4", 64 + 4)]
)
def test_footprint_counts_codes_not_floats_for_a_quantized_coarse(spec, code):
    fp = footprint(parse_layout("tiered", quantize=spec), WIDTHS, m=0)
    assert fp.ram == code
    assert fp.parts["d128"] == {"floats": 512, "codes": code, "graph": 0.0, "ram": code}
    assert fp.disk == (384 + 128) * 4 + code


@pytest.mark.parametrize(
    "target, quantize, index_kind, message",
    [
        ("milvus-lite", "binary2", "hnsw", "no index over binary2 codes; use quantization none or int8"),
        ("milvus-server", "turbo4", "hnsw", "no index over turbo4 codes"),
        ("milvus-lite", "int8", "flat", "quantizes only inside an HNSW graph"),
    ],
)
def test_engine_support_refuses_what_milvus_cannot_index(target, quantize, index_kind, message):
    with pytest.raises(ConfigError, match=message):
        check_engine_support(target, parse_layout("tiered", quantize=quantize), index_kind)


def test_engine_support_accepts_the_defaults_and_qdrant():
    for target in ("qdrant-edge", "qdrant-local", "qdrant-server", "milvus-lite"):
        for kind in ("flat", "hnsw"):
            check_engine_support(target, default_layout(target, kind), kind)
            check_engine_support(target, None, kind)
    check_engine_support("qdrant-edge", parse_layout("tiered", quantize="binary1"), "flat")
    check_engine_support("milvus-lite", parse_layout("tiered", quantize="int8"), "hnsw")
    assert default_layout("milvus-lite", "flat") == LAYOUTS["tiered"]
    assert default_layout("qdrant-edge") == parse_layout("tiered", quantize="int8")
