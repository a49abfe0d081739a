"""Engine limits and schemas on the Milvus servers CI starts (issues 21, 22): what a server cannot hold is
refused by the plan, before anything is trained or written, with one line naming the ids and the option.

Sources are built with the engine's own client; targets read back with pymilvus.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from targets import milvus_client
from test_foreign_layouts import WIDTH, vectors

pytestmark = pytest.mark.server
N = 200


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "smec_vdb.cli.app", "migrate", *args], capture_output=True,
                          text=True, env=env, timeout=600)


def qdrant_source_with_a_big_payload(path: Path, big: int) -> None:
    from qdrant_client import QdrantClient, models

    client = QdrantClient(path=str(path))
    client.create_collection("docs", vectors_config=models.VectorParams(size=WIDTH, distance=models.Distance.COSINE))
    client.upsert("docs", [models.PointStruct(id=i, vector=row.tolist(),
                                              payload={"n": i, **({"text": "x" * 70_000} if i == big else {})})
                           for i, row in enumerate(vectors(N))])
    client.close()


def test_a_payload_over_the_servers_json_limit_is_refused_in_the_plan_in_one_line(tmp_path, milvus_server_uri):
    """Before: the copy failed after 1,280 points on the 2.3.5 server, every re-run failed the same way, no
    option skipped the point, and a raw pymilvus ``[ERROR]`` line was printed beside ours."""

    qdrant_source_with_a_big_payload(tmp_path / "q", big=7)
    target = f"smectest_{uuid.uuid4().hex[:12]}"
    args = ["--collection", "docs", "--dim", "12", "--drop-full", "--backend", "qdrant", "--path", str(tmp_path / "q"),
            "--target-backend", "milvus", "--target-url", milvus_server_uri, "--target", target, "--epochs", "2",
            "--compressor-store", str(tmp_path / "c"), "--min-recall", "0.3", "--verify-queries", "20"]
    refused = run_cli(*args)
    assert refused.returncode == 1
    errors = [line for line in refused.stderr.splitlines() if "error" in line.lower() or "Traceback" in line]
    assert len(errors) == 1 and errors[0].startswith("error: "), refused.stderr  # no engine log line beside ours
    assert "first ids [7]" in errors[0] and "(limit 65536)" in errors[0] and "--on-bad-payload skip" in errors[0]
    assert not (tmp_path / "c").exists()
    client = milvus_client(milvus_server_uri)
    try:
        assert not client.has_collection(target)
        done = run_cli(*args, "--on-bad-payload", "skip", "--report", str(tmp_path / "r.json"))
        assert done.returncode == 0, done.stderr
        report = json.loads((tmp_path / "r.json").read_text())
        assert report["skipped_ids"] == [7] and report["bad_payloads"]["count"] == 1
        client.load_collection(target)
        rows = client.query(target, filter="id >= 0", output_fields=["id"], limit=1000, consistency_level="Strong")
        assert sorted(r["id"] for r in rows) == [i for i in range(N) if i != 7]
    finally:
        if client.has_collection(target):
            client.drop_collection(target)
        if client.has_collection(target + "__smec_meta"):
            client.drop_collection(target + "__smec_meta")
        client.close()


def custom_source(uri: str, name: str, *, nullable: bool, index: str, partitions: bool = True) -> None:
    """A custom pymilvus schema on a server: a ``doc_id`` key, a ``title`` column (nullable or not) and ``year``
    with a default, both with a scalar index of type ``index``, the dynamic field, a partition."""
    from pymilvus import DataType, MilvusClient

    client = milvus_client(uri)
    try:
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=True)
        schema.add_field("doc_id", DataType.VARCHAR, is_primary=True, max_length=64)
        schema.add_field("dense", DataType.FLOAT_VECTOR, dim=WIDTH)
        schema.add_field("title", DataType.VARCHAR, max_length=64, **({"nullable": True} if nullable else {}))
        schema.add_field("year", DataType.INT64, default_value=1999)
        params = client.prepare_index_params()
        params.add_index("dense", index_type="FLAT", metric_type="COSINE")
        params.add_index("title", index_type=index)
        params.add_index("year", index_type="STL_SORT" if index == "Trie" else index)  # 2.3.5 or Milvus Lite
        client.create_collection(name, schema=schema, index_params=params, consistency_level="Strong")
        if partitions:
            client.create_partition(name, "archive")
        x = vectors(N)
        rows = [{"doc_id": f"doc-{i}", "dense": x[i].tolist(), "title": f"t{i}", "year": 2000 + i % 40, "n": i}
                for i in range(N)]
        client.insert(name, rows[: N // 2])
        client.insert(name, rows[N // 2:], **({"partition_name": "archive"} if partitions else {}))
    finally:
        client.close()


def migrate_between(source_uri: str, target_uri: str, source: str, target: str, tmp_path: Path) -> dict:
    from smec_vdb.adapters import open_backend
    from smec_vdb.migrate import MigrationOptions, migrate

    src, tgt = open_backend("milvus", url=source_uri), open_backend("milvus", url=target_uri)
    try:
        return migrate(src, MigrationOptions(source=source, target=target, dim=12, keep_full=False, verify_queries=20,
                                             min_recall=0.3, train_options={"epochs": 2},
                                             compressor_store=str(tmp_path / "c")), target_backend=tgt)
    finally:
        src.close()
        tgt.close()


def drop(uri: str, *names: str) -> None:

    client = milvus_client(uri)
    try:
        for name in names:
            for n in (name, name + "__smec_meta"):
                if client.has_collection(n):
                    client.drop_collection(n)
    finally:
        client.close()


@pytest.mark.parametrize("nullable, index, refusal", [(True, "INVERTED", "no nullable fields.*'title'"),
                                                      (False, "INVERTED", "no INVERTED scalar index.*'title'")])
def test_what_milvus_2_3_5_cannot_hold_is_refused_in_the_plan(tmp_path, milvus_server_uri, milvus_lite_server_uri,
                                                              nullable, index, refusal):
    """Before: 2.3.5 silently made a nullable column not nullable, and an INVERTED index failed at create."""

    from smec_vdb.errors import ConfigError

    source, target = (f"smectest_{uuid.uuid4().hex[:12]}" for _ in range(2))
    custom_source(milvus_lite_server_uri, source, nullable=nullable, index=index)
    try:
        with pytest.raises(ConfigError, match=refusal):
            migrate_between(milvus_lite_server_uri, milvus_server_uri, source, target, tmp_path)
        client = milvus_client(milvus_server_uri)
        try:
            assert not client.has_collection(target)
        finally:
            client.close()
        assert not (tmp_path / "c").exists()
    finally:
        drop(milvus_lite_server_uri, source)


def test_milvus_2_3_5_to_2_3_5_keeps_the_schema_it_can_hold(tmp_path, milvus_server_uri):
    """Before: columns, the Trie/STL_SORT indexes and the partition were gone from the target."""

    source, target = (f"smectest_{uuid.uuid4().hex[:12]}" for _ in range(2))
    custom_source(milvus_server_uri, source, nullable=False, index="Trie")
    try:
        report = migrate_between(milvus_server_uri, milvus_server_uri, source, target, tmp_path)
        assert report["verification"]["passed"], report["verification"]["summary"]
        client = milvus_client(milvus_server_uri)
        try:
            client.load_collection(target)
            described = {n: client.describe_collection(n) for n in (source, target)}
            scalar = {n: [(f["name"], f["type"], str(f.get("default_value"))) for f in d["fields"]
                          if "VECTOR" not in f["type"].name] for n, d in described.items()}
            assert scalar[target] == scalar[source]
            assert {client.describe_index(target, f)["index_type"] for f in ("title", "year")} == {"Trie", "STL_SORT"}
            assert "archive" in client.list_partitions(target)
            answers = [sorted(sorted(r.items()) for r in client.query(  # rows as the application reads them: by key
                n, filter="year > 2035", output_fields=["title"], limit=1000, consistency_level="Strong"))
                for n in (source, target)]
            assert answers[0] == answers[1] and answers[0]
            archive = [{r["doc_id"] for r in client.query(n, filter="", partition_names=["archive"], limit=1000,
                                                          output_fields=["doc_id"], consistency_level="Strong")}
                       for n in (source, target)]
            assert archive[0] == archive[1] and len(archive[0]) == N - N // 2
        finally:
            client.close()
    finally:
        drop(milvus_server_uri, source, target)
