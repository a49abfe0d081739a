"""Milvus adapter: expression building, URI parsing, and Milvus-only behaviour on a real Milvus Lite."""

from __future__ import annotations

import json

import numpy as np
import pytest

from smec_vdb.adapters.milvus import MilvusBackend
from smec_vdb.adapters.milvus_connection import target_of
from smec_vdb.adapters.milvus_filters import filter_expression, literal
from smec_vdb.adapters.milvus_metadata import META_SUFFIX
from smec_vdb.adapters.milvus_schema import column_value
from smec_vdb.backend import Batch, CollectionSchema, IndexParams, Resolution, SearchStage
from smec_vdb.errors import BackendError, ConfigError
from smec_vdb.filters import parse

TRICKY_IDS = ["b", "a", "é", "x y", "9", "10", "q'\"\\x\n", "\\"]


def test_target_from_uri():
    assert target_of("http://host:19530") == "milvus-server"
    assert target_of("https://cloud.example:443") == "milvus-server"
    assert target_of("tcp://host:19530") == "milvus-server"
    assert target_of("./data/vectors.db") == "milvus-lite"
    assert target_of("/tmp/x.db/") == "milvus-lite"
    with pytest.raises(ConfigError, match=r"\.db"):
        target_of("./data/vectors")
    with pytest.raises(ConfigError, match="ftp"):
        target_of("ftp://host/x.db")


def test_literals_escape_strings_and_keep_types():
    assert literal(True) == "true" and literal(False) == "false"
    assert literal(7) == "7" and literal(np.int64(7)) == "7"
    assert literal(0.5) == "0.5"
    assert literal('a"b\\c') == '"a\\"b\\\\c"'
    assert json.loads(literal("é\n'")) == "é\n'"


def test_filter_expression_is_a_superset_that_the_exact_check_narrows():
    assert filter_expression(None) == ""
    assert filter_expression(parse({"lang": "en"})) == 'payload["lang"] == "en" or json_contains(payload["lang"], "en")'
    assert filter_expression(parse({"meta.g": {"$gte": 1}})) == (
        '(payload["meta"]["g"] >= 1.0) or json_contains_all(payload["meta"]["g"], [])'
    )
    # a $not constrains nothing in the engine (Milvus drops missing keys under not); an or with it neither
    assert filter_expression(parse({"$not": {"g": 1}})) == ""
    assert filter_expression(parse({"$or": [{"$not": {"g": 1}}, {"g": 2}]})) == ""
    assert filter_expression(parse({"$and": [{"$not": {"g": 1}}, {"ok": True}]})) == (
        '(payload["ok"] == true or json_contains(payload["ok"], true))'
    )


def test_column_cells_hold_only_values_of_their_type():
    assert column_value("integer", 3) == 3 and column_value("integer", True) is None
    assert column_value("integer", 2**63) is None and column_value("integer", "3") is None
    assert column_value("float", 3) == 3.0 and column_value("float", float("nan")) is None
    assert column_value("keyword", "x") == "x" and column_value("keyword", 1) is None
    assert column_value("bool", False) is False and column_value("bool", 0) is None


@pytest.fixture
def backend(tmp_path):
    b = MilvusBackend(str(tmp_path / "milvus.db"))
    yield b
    b.close()


def test_more_vector_fields_than_milvus_allows_is_a_config_error(backend):
    schema = CollectionSchema(tuple(Resolution(f"v{i}", 4) for i in range(5)))
    with pytest.raises(ConfigError, match="proxy.maxVectorFieldNum"):
        backend.create_collection("five", schema)
    assert not backend.exists("five")


def test_field_names_milvus_cannot_hold_are_config_errors(backend):
    with pytest.raises(ConfigError, match="'payload'"):
        backend.create_collection("c", CollectionSchema((Resolution("payload", 4),)))
    with pytest.raises(ConfigError, match="'64d'"):
        backend.create_collection("c", CollectionSchema((Resolution("64d", 4),)))


def test_string_ids_with_quotes_and_backslashes_scroll_and_retrieve(backend):
    backend.create_collection("s", CollectionSchema((Resolution("v", 3),), id_type="str"))
    vectors = np.arange(3 * len(TRICKY_IDS), dtype=np.float32).reshape(-1, 3)
    backend.upsert("s", Batch(TRICKY_IDS, {"v": vectors}))
    seen, cursor = [], None
    while True:
        points, cursor = backend.scroll("s", cursor=cursor, limit=3, with_vectors=False)
        seen += [p.id for p in points]
        if cursor is None:
            break
        cursor = json.loads(json.dumps(cursor))
    assert seen == sorted(TRICKY_IDS)
    wanted = ["\\", "missing", "q'\"\\x\n", "a"]
    got = backend.retrieve("s", wanted)
    assert [p.id for p in got] == ["\\", "q'\"\\x\n", "a"]
    np.testing.assert_array_equal(got[1].vectors["v"], vectors[TRICKY_IDS.index("q'\"\\x\n")])


def test_metadata_lives_in_a_hidden_collection_dropped_with_its_own(backend):
    backend.create_collection("c", CollectionSchema((Resolution("v", 2),)))
    backend.set_metadata("c", "compressor", {"hash": "abc", "dims": [2]})
    assert backend.list_collections() == ["c"]
    assert backend.exists("c" + META_SUFFIX)
    assert backend.count("c") == 0
    backend.drop("c")
    assert not backend.exists("c" + META_SUFFIX)


def test_schema_extras_survive_reopen(tmp_path):
    path = str(tmp_path / "milvus.db")
    schema = CollectionSchema(
        (Resolution("full", 8), Resolution("d4", 4)), distance="euclid", id_type="str",
        payload_indexes={"lang": "keyword"}, index=IndexParams("hnsw", m=8, ef_construct=40, ef_search=60),
    )
    first = MilvusBackend(path)
    first.create_collection("c", schema)
    first.close()
    second = MilvusBackend(path)
    try:
        assert second.schema("c") == schema
    finally:
        second.close()


def test_euclid_scores_are_negative_distances_not_squared(backend):
    backend.create_collection("e", CollectionSchema((Resolution("full", 2), Resolution("d1", 1)), distance="euclid"))
    backend.upsert("e", Batch([1, 2], {"full": np.array([[3.0, 4.0], [1.0, 0.0]]), "d1": np.array([[3.0], [1.0]])}))
    hits = backend.search("e", "full", np.zeros(2, dtype=np.float32), 2)
    assert [(h.id, round(h.score, 5)) for h in hits] == [(2, -1.0), (1, -5.0)]
    staged = backend.search_stages(
        "e", [SearchStage("d1", np.zeros(1, dtype=np.float32), 2), SearchStage("full", np.zeros(2, dtype=np.float32), 1)]
    )
    assert [(h.id, round(h.score, 5)) for h in staged] == [(2, -1.0)]


def test_unreachable_server_is_retriable():
    with pytest.raises(BackendError) as caught:
        MilvusBackend("http://127.0.0.1:1", timeout=2).list_collections()
    assert caught.value.retriable


def test_close_frees_the_lite_path_for_another_process(tmp_path):
    import subprocess
    import sys

    path = str(tmp_path / "sub" / "milvus.db")  # the parent directory is created on open
    first = MilvusBackend(path)
    second = MilvusBackend(path)  # same process, same path: one shared in-process server
    first.create_collection("c", CollectionSchema((Resolution("v", 2),)))
    first.upsert("c", Batch([1, 2], {"v": np.eye(2, dtype=np.float32)}))
    first.close()
    assert second.count("c") == 2  # closing one client leaves the other working
    second.close()
    second.close()
    script = (
        "import sys; from smec_vdb.adapters.milvus import MilvusBackend; "
        "b = MilvusBackend(sys.argv[1]); print(b.count('c')); b.close()"
    )
    done = subprocess.run([sys.executable, "-c", script, path], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "2"


def test_filters_give_the_same_hits_with_and_without_typed_columns(backend):
    rng = np.random.default_rng(0)
    n = 60
    vectors = rng.normal(size=(n, 4)).astype(np.float32)
    # values of the declared type, of another type, or missing (Milvus's JSON path also equates true
    # with 1 and 1.0 with 1, the typed columns do not: those mixes are left out here)
    payloads = [{"g": [i % 3, str(i % 3)][i % 2], "lang": ["en", "de", 7][i % 3]} for i in range(n)]
    for p in payloads[::7]:
        del p["g"]
    for name, indexes in (("plain", {}), ("typed", {"g": "integer", "lang": "keyword"})):
        backend.create_collection(name, CollectionSchema((Resolution("v", 4),), payload_indexes=indexes))
        backend.upsert(name, Batch(list(range(n)), {"v": vectors}, payloads))
    for flt in ({"g": 1}, {"g": [0, 2]}, {"g": "1"}, {"lang": "de"}, {"lang": 7}, {"g": 2, "lang": ["en", "de"]}):
        hits = {name: [h.id for h in backend.search(name, "v", vectors[0], n, filter=flt)] for name in ("plain", "typed")}
        expected = {i for i, p in enumerate(payloads) if all(
            any(k in p and p[k] == v for v in (vs if isinstance(vs, list) else [vs]))
            for k, vs in flt.items())}
        assert hits["typed"] == hits["plain"], flt
        assert set(hits["typed"]) == expected, flt
    assert backend.retrieve("typed", [5])[0].payload == payloads[5]


def test_a_foreign_layout_is_read_with_its_own_key_fields_and_metrics():
    from pymilvus import DataType

    from smec_vdb.adapters.milvus_schema import fields_from_description

    described = {"collection_name": "docs", "enable_dynamic_field": True, "properties": {}, "fields": [
        {"name": "doc_id", "type": DataType.VARCHAR, "params": {"max_length": 64}, "is_primary": True},
        {"name": "dense", "type": DataType.FLOAT_VECTOR, "params": {"dim": 8}},
        {"name": "img", "type": DataType.FLOAT_VECTOR, "params": {"dim": 2}},
        {"name": "sp", "type": DataType.SPARSE_FLOAT_VECTOR, "params": {}},
        {"name": "year", "type": DataType.INT64, "params": {}}]}
    layout = fields_from_description(described, {"dense": "COSINE", "img": "L2"})
    assert layout.foreign and layout.pk == "doc_id" and [c.name for c in layout.schema.columns] == ["year"]
    assert layout.schema.dynamic_field and layout.schema.primary is not None
    assert layout.schema.id_type == "str" and layout.schema.sparse == ("sp",)
    assert [(r.name, r.dim, r.distance) for r in layout.schema.resolutions] == [("dense", 8, "cosine"), ("img", 2, "euclid")]
    assert layout.output_fields(True) == ["doc_id", "year", "$meta", "dense", "img", "sp"]
    point = layout.point({"doc_id": "a", "year": 2020, "extra": {"k": 1}, "dense": [0.0] * 8, "img": [1.0, 2.0],
                          "sp": {3: 0.5}}, ["dense", "img", "sp"])
    assert point.id == "a" and point.payload == {"year": 2020, "extra": {"k": 1}}
    assert point.sparse["sp"].as_dict() == {3: 0.5}


def test_mixed_id_types_and_manhattan_are_refused_before_creating(backend):
    with pytest.raises(ConfigError, match="one type"):
        backend.check_schema(CollectionSchema((Resolution("v", 4),), id_type="any"))
    with pytest.raises(ConfigError, match="Manhattan"):
        backend.check_schema(CollectionSchema((Resolution("v", 4, "manhattan"),)))


def test_server_versions_decide_what_a_collection_may_hold():
    from smec_vdb.adapters.milvus_version import capabilities

    old = capabilities("v2.3.5-lite")  # what the PyPI milvus==2.3.5 server reports
    assert old.release == (2, 3, 5) and not old.multi_vector and not old.nullable_columns
    assert "v2.3.5" in old.describe()
    mid = capabilities("v2.4.15")
    assert mid.multi_vector and not mid.nullable_columns
    assert capabilities("2.5.0").multi_vector and capabilities("2.5.0").nullable_columns
    assert capabilities("v3.0").release == (3, 0, 0)
    lite = capabilities("milvus_lite-3.2.2")  # what `milvus-lite server` reports: the current engine
    assert lite.release is None and lite.multi_vector and lite.nullable_columns


def test_milvus_lite_holds_several_vector_fields_and_typed_columns(tmp_path):
    backend = MilvusBackend(str(tmp_path / "caps.db"))
    try:
        assert backend.target == "milvus-lite" and backend.capabilities.release is None and backend.max_vector_fields == 4
        backend.check_schema(CollectionSchema((Resolution("full", 8), Resolution("d4", 4))))
        backend.create_collection("c", CollectionSchema((Resolution("full", 8),), payload_indexes={"g": "keyword"}))
        assert backend._fields_of("c").columns == {"g": ("payload_g", "keyword")}
    finally:
        backend.close()
