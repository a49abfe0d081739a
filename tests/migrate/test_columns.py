"""Payload keys ↔ typed columns (issue 21 §2): which keys every point agrees on, and why the others stay dynamic."""

from __future__ import annotations

from smec_vdb.backend import Column
from smec_vdb.migrate.columns import columns_from_payloads, describe, indexes_from_columns
from smec_vdb.migrate.plan import KeyStats


def stats(values: list) -> KeyStats:
    s = KeyStats()
    for v in values:
        s.note(v, 0)
    return s


def test_keys_every_point_agrees_on_become_typed_columns_the_rest_stay_dynamic():
    keys = {"year": stats([2020, 2021, 1999]), "title": stats(["a", "b", "c"]), "score": stats([0.5, 1.0, 2.5]),
            "flag": stats([True, False, True]), "mixed": stats([1, 1.5, 2]), "tags": stats([["a"], [], ["b"]]),
            "meta": stats([{}, {"a": 1}, {}]), "bad-name": stats([1, 2, 3]), "full": stats([1, 2, 3]),
            "sometimes": stats([1, 2]), "nulls": stats([None, "x", "y"]), "both": stats([None, "x"])}
    columns, dynamic = columns_from_payloads(keys, 3, reserved={"id", "full"}, indexed={"title": "keyword"},
                                             nullable=True)
    by_name = {c.name: c for c in columns}
    assert by_name["year"] == Column("year", "int64")
    assert by_name["title"] == Column("title", "varchar", max_length=65535, index="INVERTED")
    assert by_name["score"].type == "double" and by_name["flag"].type == "bool"
    assert by_name["sometimes"] == Column("sometimes", "int64", nullable=True, absent_when_null=True)
    assert by_name["nulls"] == Column("nulls", "varchar", nullable=True, max_length=65535)
    assert set(dynamic) == {"mixed", "tags", "meta", "bad-name", "full", "both"}
    assert dynamic["mixed"] == "points hold it as float and int" and "tell the two apart" in dynamic["both"]


def test_without_nullable_columns_optional_keys_stay_dynamic():
    columns, dynamic = columns_from_payloads({"a": stats([1, 2]), "b": stats([1, 2, 3])}, 3, reserved=set(),
                                             indexed={}, nullable=False)
    assert [c.name for c in columns] == ["b"] and "Milvus < 2.5" in dynamic["a"]


def test_indexed_columns_become_payload_indexes_of_the_matching_type():
    columns = (Column("t", "varchar", max_length=8, index="INVERTED"), Column("y", "int32", index="STL_SORT"),
               Column("s", "double"), Column("j", "json", index="INVERTED"))
    assert indexes_from_columns(columns) == {"t": "keyword", "y": "integer"}
    assert describe(Column("t", "varchar", nullable=True, max_length=64, index="INVERTED")) == \
        "column 't' varchar(64) nullable, INVERTED index"


def test_before_milvus_2_4_an_indexed_key_gets_the_index_that_server_has():
    columns, _ = columns_from_payloads({"t": stats(["a"]), "y": stats([1]), "b": stats([True])}, 1, reserved=set(),
                                       indexed={"t": "keyword", "y": "integer", "b": "bool"}, nullable=False,
                                       inverted=False)
    assert {c.name: c.index for c in columns} == {"t": "Trie", "y": "STL_SORT", "b": None}
