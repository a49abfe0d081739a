"""How a Qdrant collection smec-vdb did not create is read (issue 21): from the ``get_collection`` answer a
Qdrant server gives, parsed by qdrant-client's own models (no server runs here; local mode never reports
payload indexes)."""

from __future__ import annotations

from qdrant_client import models

from smec_vdb.adapters.qdrant import foreign_schema
from smec_vdb.adapters.qdrant_common import schema_from_json, schema_to_json
from smec_vdb.backend import Resolution

#: the JSON of GET /collections/{name} on a Qdrant 1.16 server (trimmed to what the reader uses)
SERVER_ANSWER = {
    "status": "green", "optimizer_status": "ok", "segments_count": 2, "points_count": 10,
    "config": {
        "params": {
            "vectors": {
                "dense": {"size": 384, "distance": "Cosine"},
                "u8": {"size": 16, "distance": "Dot", "datatype": "uint8"},
                "colbert": {"size": 128, "distance": "Cosine", "multivector_config": {"comparator": "max_sim"}},
            },
            "sparse_vectors": {"bm25": {}},
            "shard_number": 3, "replication_factor": 2, "write_consistency_factor": 1,
        },
        "hnsw_config": {"m": 16, "ef_construct": 100, "full_scan_threshold": 10000},
        "optimizer_config": {"deleted_threshold": 0.2, "vacuum_min_vector_number": 1000, "default_segment_number": 0,
                             "flush_interval_sec": 5},
        "wal_config": {"wal_capacity_mb": 32, "wal_segments_ahead": 0},
    },
    "payload_schema": {
        "title": {"data_type": "keyword", "points": 10},
        "year": {"data_type": "integer", "points": 10},
        "body": {"data_type": "text", "params": {"type": "text", "tokenizer": "word"}, "points": 10},
        "created": {"data_type": "datetime", "points": 4},
    },
}


def test_a_server_collections_payload_indexes_storage_and_sharding_are_read():
    schema = foreign_schema("docs", models.CollectionInfo(**SERVER_ANSWER))
    assert dict(schema.payload_indexes) == {"body": "text", "created": "datetime", "title": "keyword", "year": "integer"}
    assert schema.resolution("u8") == Resolution("u8", 16, "dot", datatype="uint8")
    assert schema.resolution("colbert").multivector and schema.resolution("dense").plain
    assert dict(schema.sharding) == {"shard_number": 3, "replication_factor": 2, "write_consistency_factor": 1}
    assert schema.sparse == ("bm25",) and schema.id_type == "any"


def test_the_schema_record_keeps_storage_and_sharding_and_reads_older_records():
    schema = foreign_schema("docs", models.CollectionInfo(**SERVER_ANSWER))
    assert schema_from_json(schema_to_json(schema)) == schema
    old = {"resolutions": [["full", 8], ["d4", 4, "dot"]], "distance": "cosine", "id_type": "int"}
    assert [r.plain for r in schema_from_json(old).resolutions] == [True, True]
