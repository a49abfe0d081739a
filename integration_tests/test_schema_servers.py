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
    from pymilvus import MilvusClient

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
    client = MilvusClient(uri=milvus_server_uri)
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
