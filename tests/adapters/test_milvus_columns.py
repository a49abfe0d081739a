"""Typed Milvus columns (issue 21): read from a description as pymilvus gives it, cells of a payload, refusals."""

from __future__ import annotations

import pytest
from pymilvus import DataType
from pymilvus.grpc_gen import schema_pb2

from smec_vdb.adapters.milvus_columns import check_columns, columns_from_fields, payload_of, primary_of, row_of
from smec_vdb.backend import Column, PrimaryKey
from smec_vdb.errors import ConfigError, DataError

#: describe_collection()["fields"] of a custom schema, as pymilvus 3.0.2 returns it from Milvus Lite
FIELDS = [
    {"name": "doc_id", "type": DataType.VARCHAR, "params": {"max_length": 64}, "is_primary": True},
    {"name": "dense", "type": DataType.FLOAT_VECTOR, "params": {"dim": 8}},
    {"name": "title", "type": DataType.VARCHAR, "params": {"max_length": 64}, "nullable": True},
    {"name": "year", "type": DataType.INT64, "params": {}, "default_value": schema_pb2.ValueField(long_data=1999)},
    {"name": "tags", "type": DataType.ARRAY, "params": {"max_capacity": 4, "max_length": 16},
     "element_type": DataType.VARCHAR},
    {"name": "tenant", "type": DataType.VARCHAR, "params": {"max_length": 8}, "is_partition_key": True},
]


def test_columns_and_key_are_read_from_a_description():
    columns = columns_from_fields(FIELDS, {"doc_id", "dense"}, {"title": "INVERTED"})
    assert columns == (
        Column("title", "varchar", nullable=True, max_length=64, index="INVERTED"),
        Column("year", "int64", default=1999),
        Column("tags", "array", max_length=16, element_type="varchar", max_capacity=4),
        Column("tenant", "varchar", max_length=8, partition_key=True),
    )
    assert primary_of(FIELDS[0], auto_id=False) == PrimaryKey("doc_id", max_length=64)
    with pytest.raises(ConfigError, match="'shape' is of type"):
        columns_from_fields([{"name": "shape", "type": DataType.GEOMETRY, "params": {}}], set(), {})


def test_a_payload_is_split_into_cells_and_the_dynamic_field_and_read_back():
    columns = (Column("title", "varchar", nullable=True, max_length=8), Column("year", "int64"),
               Column("opt", "double", nullable=True, absent_when_null=True))
    row = row_of(1, {"title": "a", "year": 2021, "extra": {"k": [1]}}, columns, dynamic=True)
    assert row == {"title": "a", "year": 2021, "opt": None, "extra": {"k": [1]}}
    assert payload_of({"id": 1, **row, "$meta": {}}, columns, skip={"id"}) == {"title": "a", "year": 2021,
                                                                               "extra": {"k": [1]}}
    with pytest.raises(DataError, match="key 'year' holds 2021.0, which a int64 column"):
        row_of(2, {"year": 2021.0}, columns, dynamic=True)
    with pytest.raises(DataError, match="holds 'longer than 8'"):
        row_of(3, {"year": 1, "title": "longer than 8"}, columns, dynamic=True)
    with pytest.raises(DataError, match="no column, and the collection has no dynamic field"):
        row_of(4, {"year": 1, "other": 1}, columns, dynamic=False)


def test_what_an_old_server_cannot_hold_is_refused():
    with pytest.raises(ConfigError, match="no nullable fields.*'title'"):
        check_columns([Column("title", "varchar", nullable=True)], nullable=False, inverted=False, server="Milvus v2.3.5")
    with pytest.raises(ConfigError, match="no INVERTED scalar index.*'year'"):
        check_columns([Column("year", "int64", index="INVERTED")], nullable=False, inverted=False, server="Milvus v2.3.5")
    check_columns([Column("year", "int64", index="STL_SORT")], nullable=False, inverted=False, server="Milvus v2.3.5")
