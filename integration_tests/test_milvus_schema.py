"""Milvus schemas across a migration (issue 21 §1-2): a Milvus → Milvus target is a drop-in replacement
(key, typed columns, nullability, defaults, scalar indexes, dynamic field, partitions), Milvus columns
become Qdrant payload keys with payload indexes, and Qdrant payload keys become Milvus typed columns
where every point agrees on a type.

Sources are built with pymilvus / qdrant-client as their docs show; targets are read back with the
target engine's own client and asked the application's own queries. Each test fails on the code
before issue 21 (it kept every column and dynamic key in one JSON field ``payload``, partitions and
scalar indexes were dropped).
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pytest
from test_foreign_layouts import WIDTH, opts, vectors

from smec_vdb.adapters import open_backend
from smec_vdb.collection import SmecCollection
from smec_vdb.migrate import migrate

N = 300


def milvus_custom_source(path: Path, *, auto_id: bool = False) -> None:
    """A custom schema as pymilvus's docs build one: a ``doc_id`` VARCHAR key (or an auto_id INT64 ``pk``),
    a nullable ``title`` with an INVERTED index, ``year`` with a default, a DOUBLE, an ARRAY, the dynamic
    field (``n``, ``extra``), and two partitions besides the default one."""
    from pymilvus import DataType, MilvusClient

    client = MilvusClient(str(path))
    schema = MilvusClient.create_schema(auto_id=auto_id, enable_dynamic_field=True)
    if auto_id:
        schema.add_field("pk", DataType.INT64, is_primary=True)
    else:
        schema.add_field("doc_id", DataType.VARCHAR, is_primary=True, max_length=64)
    schema.add_field("dense", DataType.FLOAT_VECTOR, dim=WIDTH)
    schema.add_field("title", DataType.VARCHAR, max_length=64, nullable=True)
    schema.add_field("year", DataType.INT64, default_value=1999)
    schema.add_field("score", DataType.DOUBLE)
    schema.add_field("tags", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=4, max_length=16)
    index = client.prepare_index_params()
    index.add_index("dense", index_type="FLAT", metric_type="COSINE")
    index.add_index("title", index_type="INVERTED")
    client.create_collection("src", schema=schema, index_params=index)
    client.create_partition("src", "archive")
    client.create_partition("src", "recent")
    x = vectors(N)
    rows = [{**({} if auto_id else {"doc_id": f"doc-{i}"}), "dense": x[i].tolist(),
             "title": None if i % 10 == 0 else f"t{i}", "year": 2000 + i % 40, "score": i / 3, "tags": [f"g{i % 3}"],
             "n": i, **({"extra": {"k": [i]}} if i % 2 else {})} for i in range(N)]
    client.insert("src", rows[:100])
    client.insert("src", rows[100:200], partition_name="archive")
    client.insert("src", rows[200:], partition_name="recent")
    client.close()


def migrate_in_place(tmp_path: Path, **kw) -> dict:
    """``migrate`` the Milvus Lite source ``src`` of ``tmp_path / m.db`` into ``src_smec`` beside it."""
    b = open_backend("milvus", path=str(tmp_path / "m.db"))
    try:
        return migrate(b, opts(tmp_path, **kw))
    finally:
        b.close()


@contextmanager
def loaded(path: Path, *names: str) -> Iterator[Any]:
    """pymilvus's own client on ``path`` with ``names`` loaded."""
    from pymilvus import MilvusClient

    client = MilvusClient(str(path))
    try:
        for name in names:
            client.load_collection(name)
        yield client
    finally:
        client.close()


def by_partition(client, name: str, key: str) -> dict[str, set]:
    return {p: {r[key] for r in client.query(name, filter="", partition_names=[p], output_fields=[key], limit=16384)}
            for p in ("_default", "archive", "recent")}


def test_milvus_to_milvus_keeps_the_schema_the_application_queries(tmp_path):
    """Before: title, year, n… sat inside one JSON field ``payload``; ``query(filter="year > 2020",
    output_fields=["title"])`` no longer worked; partitions became ['_default']; the INVERTED index was gone."""
    milvus_custom_source(tmp_path / "m.db")
    report = migrate_in_place(tmp_path)
    assert report["verification"]["passed"], report["verification"]["summary"]
    b = open_backend("milvus", path=str(tmp_path / "m.db"))
    try:
        hits = SmecCollection.open(b, "src_smec").search(vectors(N)[5], k=5, filter={"year": {"$gt": 2020}})
        assert hits and all(h.payload["year"] > 2020 for h in hits)
    finally:
        b.close()
    with loaded(tmp_path / "m.db", "src", "src_smec") as client:
        described = {n: client.describe_collection(n) for n in ("src", "src_smec")}
        scalar = {n: {f["name"]: (f["type"], f.get("nullable"), f.get("params"), str(f.get("default_value")))
                      for f in d["fields"] if "VECTOR" not in f["type"].name} for n, d in described.items()}
        assert scalar["src_smec"] == scalar["src"] and "payload" not in scalar["src_smec"]
        assert described["src_smec"]["enable_dynamic_field"]
        assert client.describe_index("src_smec", "title")["index_type"] == "INVERTED"
        assert by_partition(client, "src_smec", "doc_id") == by_partition(client, "src", "doc_id")
        for query in (dict(filter="year > 2020", output_fields=["title"]), dict(filter="n < 7", output_fields=["extra"]),
                      dict(filter='title == "t5" or title is null', output_fields=["year", "tags"])):
            answers = [sorted(map(str, client.query(name, limit=16384, **query))) for name in ("src", "src_smec")]
            assert answers[0] == answers[1] and answers[0], query
    assert all(m["how"] == "kept" for m in report["schema_mapping"] if not m["item"].startswith("vector"))


def test_a_point_moved_between_partitions_is_found_and_moved(tmp_path):
    milvus_custom_source(tmp_path / "m.db")
    migrate_in_place(tmp_path)
    with loaded(tmp_path / "m.db", "src") as client:  # the application moves doc-7 into "archive"
        (row,) = client.query("src", filter='doc_id == "doc-7"', output_fields=["*"])
        client.delete("src", ids=["doc-7"])
        client.insert("src", [row], partition_name="archive")
    check = migrate_in_place(tmp_path, check=True)
    assert check["drift"]["differences"] == {"partition differs": 1}
    assert migrate_in_place(tmp_path)["resync"]["rewritten"] == 1
    assert migrate_in_place(tmp_path, check=True)["in_sync"]
    with loaded(tmp_path / "m.db", "src_smec") as client:
        assert "doc-7" in by_partition(client, "src_smec", "doc_id")["archive"]


def test_an_auto_id_key_keeps_the_sources_ids(tmp_path):
    milvus_custom_source(tmp_path / "m.db", auto_id=True)
    report = migrate_in_place(tmp_path)
    assert report["verification"]["passed"]
    with loaded(tmp_path / "m.db", "src", "src_smec") as client:
        ids = [{r["pk"] for r in client.query(name, filter="pk >= 0", output_fields=["pk"], limit=16384)}
               for name in ("src", "src_smec")]
    assert ids[0] == ids[1] and len(ids[0]) == N
    mapping = {m["item"]: m["how"] for m in report["schema_mapping"]}
    assert mapping["primary key 'pk' (auto_id)"].startswith("kept, its ids written explicitly")


def test_milvus_columns_become_qdrant_payload_keys_with_payload_indexes(tmp_path):
    """Before: the INVERTED index on ``title`` had no counterpart in the target; nothing said partitions were dropped."""
    import qdrant_edge

    milvus_custom_source(tmp_path / "m.db")
    source = open_backend("milvus", path=str(tmp_path / "m.db"))
    target = open_backend("qdrant-edge", path=str(tmp_path / "edge"))
    try:
        report = migrate(source, opts(tmp_path), target_backend=target)
        assert report["verification"]["passed"]
    finally:
        source.close()
        target.close()
    shard = qdrant_edge.EdgeShard.load(str(tmp_path / "edge" / "src_smec" / "shard"))
    try:
        assert {k: str(v.data_type) for k, v in shard.info().payload_schema.items()} == {
            "title": "PayloadSchemaType.Keyword"}
        records, _ = shard.scroll(qdrant_edge.ScrollRequest(offset=None, limit=10, with_payload=True))
    finally:
        shard.close()
    assert {"title", "year", "score", "tags", "n"} <= set(records[0].payload)
    mapping = {m["item"]: m["how"] for m in report["schema_mapping"]}
    assert mapping["column 'title' varchar(64) nullable, INVERTED index"] == "payload key with a keyword payload index"
    assert mapping["partitions ['archive', 'recent']"].startswith("not kept")


def test_qdrant_payload_keys_every_point_agrees_on_become_typed_milvus_columns(tmp_path):
    """Before: every key sat in one JSON field; ``query(filter="year > 2020", output_fields=["title"])`` failed."""
    from pymilvus import DataType, MilvusClient
    from qdrant_client import QdrantClient, models

    client = QdrantClient(path=str(tmp_path / "q"))
    client.create_collection("src", vectors_config=models.VectorParams(size=WIDTH, distance=models.Distance.COSINE))
    x = vectors(N)
    client.upsert("src", [models.PointStruct(id=i, vector=x[i].tolist(), payload={
        "year": 2000 + i % 40, "title": f"t{i}", "score": i / 3, "tags": [i % 3], "mixed": i if i % 2 else i / 2,
        **({"opt": i} if i % 3 else {})}) for i in range(N)])
    client.close()
    report = migrate_into_milvus(tmp_path)
    assert report["verification"]["passed"], report["verification"]["summary"]
    milvus = MilvusClient(str(tmp_path / "mt.db"))
    try:
        milvus.load_collection("src_smec")
        types = {f["name"]: f["type"] for f in milvus.describe_collection("src_smec")["fields"]}
        assert types["year"] == DataType.INT64 and types["title"] == DataType.VARCHAR
        assert types["score"] == DataType.DOUBLE and "payload" not in types and "mixed" not in types
        got = milvus.query("src_smec", filter="year > 2035", output_fields=["title"], limit=16384)
        assert sorted(r["title"] for r in got) == sorted(f"t{i}" for i in range(N) if 2000 + i % 40 > 2035)
        (row,) = milvus.query("src_smec", filter="id == 4", output_fields=["mixed", "tags", "opt"])
        assert row["mixed"] == 2.0 and isinstance(row["mixed"], float) and row["tags"] == [1] and row["opt"] == 4
    finally:
        milvus.close()
    mapping = {m["item"]: m["how"] for m in report["schema_mapping"]}
    assert mapping["payload key 'opt'"] == "typed column 'opt' int64 nullable"
    assert mapping["payload keys ['mixed']"] == "dynamic field (points hold it as float and int)"
    # the plan over the existing target (was: KeyError 'mixed'), checking and re-syncing
    assert migrate_into_milvus(tmp_path, check=True)["in_sync"]
    again = migrate_into_milvus(tmp_path)
    assert again["resync"]["rewritten"] == 0 and again["verification"]["passed"]
    mapping = {m["item"]: m["how"] for m in again["schema_mapping"]}
    assert mapping.get("payload keys ['mixed', 'tags']") == "dynamic field (as the existing target was laid out)", mapping


def migrate_into_milvus(tmp_path: Path, **kw) -> dict:
    source = open_backend("qdrant", path=str(tmp_path / "q"))
    target = open_backend("milvus", path=str(tmp_path / "mt.db"))
    try:
        return migrate(source, opts(tmp_path, **kw), target_backend=target)
    finally:
        source.close()
        target.close()


def test_a_key_that_changed_type_since_its_column_was_made_is_refused_in_the_plan(tmp_path):
    """A key that became a column cannot take another type later: the re-sync's plan refuses the point."""
    from qdrant_client import QdrantClient, models

    from smec_vdb.errors import DataError

    client = QdrantClient(path=str(tmp_path / "q"))
    client.create_collection("src", vectors_config=models.VectorParams(size=WIDTH, distance=models.Distance.COSINE))
    x = vectors(N)
    client.upsert("src", [models.PointStruct(id=i, vector=x[i].tolist(), payload={"year": 2000 + i}) for i in range(N)])
    client.close()
    assert migrate_into_milvus(tmp_path)["verification"]["passed"]
    client = QdrantClient(path=str(tmp_path / "q"))
    client.set_payload("src", {"year": "two thousand"}, points=[3])
    client.close()
    with pytest.raises(DataError, match=r"point 3 holds a str in key 'year'.*int64 column 'year' cannot hold.*restart"):
        migrate_into_milvus(tmp_path)
