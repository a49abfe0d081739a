"""Migrating collections the way users have them (issue 10): sources built with each engine's OWN
client as its quickstart shows, results read back with that engine's own client.

Each test is a regression test for a bug listed in issue 10 (or issue 15) and fails on the code
before this change.
"""

from __future__ import annotations

import json
import multiprocessing
import uuid
from pathlib import Path

import numpy as np
import pytest

from smec_vdb import engines
from smec_vdb.adapters import open_backend
from smec_vdb.backend import Batch, CollectionSchema, Resolution
from smec_vdb.collection import SmecCollection
from smec_vdb.errors import CollectionExistsError, CorruptStoreError, UnsupportedSourceError, VerificationError
from smec_vdb.migrate import MigrationOptions, migrate

from faults import StopInCopy

N = 400
WIDTH = 24


def vectors(n: int = N, width: int = WIDTH, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(10, width))
    x = centres[rng.integers(0, 10, n)] + 0.3 * rng.normal(size=(n, width))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def payload(i: int) -> dict:
    """Awkward payloads: int vs float, nested, null, and keys smec-vdb used to treat as its own."""
    return {"n": i, "f": float(i), "third": i / 3, "nested": {"a": [i, None, {"b": "x"}]}, "none": None,
            "_smec_id": f"user-{i}", "_smec_note": i % 3}


def opts(tmp_path: Path, **kw) -> MigrationOptions:
    base = dict(source="src", dims=(12,), train_options={"epochs": 2}, verify_queries=20, min_recall=0.3,
                compressor_store=str(tmp_path / "compressors"))
    return MigrationOptions(**{**base, **kw})


# -- Qdrant sources made with qdrant-client ---------------------------------------------------------
def qdrant_quickstart(path: Path, ids: list, distance: str = "Cosine", named: bool = False, sparse: bool = False,
                      x: np.ndarray | None = None) -> None:
    """qdrant-client's quickstart: ``create_collection(name, vectors_config=VectorParams(size, distance))``."""
    from qdrant_client import QdrantClient, models

    client = QdrantClient(path=str(path))
    d = models.Distance(distance)
    if named:
        config = {"text": models.VectorParams(size=WIDTH, distance=d),
                  "image": models.VectorParams(size=6, distance=models.Distance.DOT)}
    else:
        config = models.VectorParams(size=WIDTH, distance=d)
    client.create_collection("src", vectors_config=config,
                             sparse_vectors_config={"bm25": models.SparseVectorParams()} if sparse else None)
    x = vectors(len(ids)) if x is None else x
    points = []
    for i, (pid, row) in enumerate(zip(ids, x)):
        if named:
            vector = {"text": row.tolist(), "image": [float(i % 5)] * 6}
        else:
            vector = row.tolist() if not sparse else {"": row.tolist()}
        if sparse:
            vector["bm25"] = models.SparseVector(indices=[i % 7, 100 + i], values=[0.5, 0.25])
        points.append(models.PointStruct(id=pid, vector=vector, payload=payload(i)))
    client.upsert("src", points)
    client.close()


def qdrant_read(path: Path, name: str) -> dict:
    from qdrant_client import QdrantClient

    client = QdrantClient(path=str(path))
    try:
        records, _ = client.scroll(name, limit=100_000, with_payload=True, with_vectors=True)
        return {str(r.id): r for r in records}
    finally:
        client.close()


#: the embedded targets of the engine registry that have a native reader below: name -> (engine, store)
TARGETS = {name: (engines.target(name).engine, str(engines.target(name).test_store))
           for name in ("qdrant-edge", "qdrant-local", "milvus-lite")}


def open_target(kind: str, root: Path):
    backend, where = TARGETS[kind]
    return open_backend(backend, path=str(root / where))


def read_native(kind: str, root: Path, name: str) -> dict:
    """{str(id): (payload, {vector: list or {index: value}})} read with the target engine's own client."""
    where = root / TARGETS[kind][1]
    if kind == "qdrant-local":
        return {k: (r.payload, _plain(r.vector)) for k, r in qdrant_read(where, name).items()}
    if kind == "milvus-lite":
        from pymilvus import MilvusClient

        client = MilvusClient(str(where))
        try:
            client.load_collection(name)
            rows = client.query(name, filter="", output_fields=["*"], limit=16384)
            vectors = {f["name"] for f in client.describe_collection(name)["fields"] if "VECTOR" in f["type"].name}
        finally:
            client.close()
        # the payload: typed columns and dynamic keys at top level (issue 21)
        return {str(r["id"]): ({k: v for k, v in r.items() if k not in vectors and k != "id"},
                               {k: v for k, v in r.items() if k in vectors}) for r in rows}
    import qdrant_edge

    shard = qdrant_edge.EdgeShard.load(str(where / name / "shard"))
    try:
        records, _ = shard.scroll(qdrant_edge.ScrollRequest(offset=None, limit=100_000, with_payload=True,
                                                            with_vector=True))
    finally:
        shard.close()
    return {str(r.id): (r.payload, _plain(r.vector)) for r in records}


def _plain(vector) -> dict:
    return {k: (dict(zip(v.indices, v.values)) if hasattr(v, "indices") else list(v)) for k, v in vector.items()}


def mixed_ids(n: int = N) -> list:
    return [i if i % 2 else str(uuid.UUID(int=i + 1)) for i in range(n)]


def migrate_into(kind: str, tmp_path: Path, source_engine: str, source_path: Path, **kw) -> dict:
    source = open_backend(source_engine, path=str(source_path))
    target = open_target(kind, tmp_path)
    try:
        return migrate(source, opts(tmp_path, **kw), target_backend=target)
    finally:
        source.close()
        target.close()


def same_payload(a: dict, b: dict) -> bool:
    """Equal, types included; floats within 1 ulp (qdrant-edge-py 0.9 rounds some doubles when storing)."""
    from smec_vdb.migrate.verify import same_content

    return same_content(a, b, ulps=1)


@pytest.mark.parametrize("kind", ["qdrant-edge", "qdrant-local"])
def test_qdrant_quickstart_unnamed_vector_with_int_and_uuid_ids_keeps_every_field(tmp_path, kind):
    ids = mixed_ids()
    qdrant_quickstart(tmp_path / "q", ids)
    report = migrate_into(kind, tmp_path, "qdrant", tmp_path / "q")
    assert report["verification"]["passed"] and report["target"]["id_type"] == "any"
    got = read_native(kind, tmp_path, "src_smec")
    assert set(got) == {str(i) for i in ids}
    for i, pid in enumerate(ids):
        stored, vectors_ = got[str(pid)]
        assert same_payload(stored, payload(i))
        assert isinstance(stored["n"], int) and isinstance(stored["f"], float)
        assert set(vectors_) == {"full", "d12"}


@pytest.mark.parametrize("kind", ["qdrant-local", "qdrant-edge", "milvus-lite"])
def test_qdrant_named_and_sparse_vectors_are_carried_unchanged(tmp_path, kind):
    qdrant_quickstart(tmp_path / "q", list(range(N)), named=True, sparse=True)
    report = migrate_into(kind, tmp_path, "qdrant", tmp_path / "q", vector="text")
    assert report["verification"]["passed"]
    got = read_native(kind, tmp_path, "src_smec")
    for i in range(N):
        stored, v = got[str(i)]
        assert same_payload(stored, payload(i))
        assert v["image"] == [float(i % 5)] * 6
        assert {int(k): val for k, val in v["bm25"].items()} == {i % 7: 0.5, 100 + i: 0.25}
        assert set(v) == {"full", "d12", "image", "bm25"}


@pytest.mark.parametrize("distance", ["Dot", "Euclid", "Manhattan"])
def test_non_cosine_sources_are_compressed_only_when_faithful(tmp_path, distance):
    x = vectors() * 3.0  # not unit length: dot/euclid rankings differ from cosine ones
    qdrant_quickstart(tmp_path / "q", list(range(N)), distance=distance, x=x)
    b = open_backend("qdrant", path=str(tmp_path / "q"))
    try:
        with pytest.raises(UnsupportedSourceError, match=f"(?i){distance}"):
            migrate(b, opts(tmp_path))
        assert not b.exists("src_smec") and not (tmp_path / "compressors").exists()  # nothing trained or written
    finally:
        b.close()


def test_dot_source_of_unit_vectors_is_compressed(tmp_path):
    qdrant_quickstart(tmp_path / "q", list(range(N)), distance="Dot")
    b = open_backend("qdrant", path=str(tmp_path / "q"))
    try:
        assert migrate(b, opts(tmp_path))["verification"]["passed"]
    finally:
        b.close()


# -- Milvus sources made with pymilvus ----------------------------------------------------------------
def milvus_quick_setup(path: Path) -> None:
    """``MilvusClient.create_collection(name, dimension=...)``: pk ``id``, vector ``vector``, dynamic fields."""
    from pymilvus import MilvusClient

    client = MilvusClient(str(path))
    client.create_collection("src", dimension=WIDTH)
    client.insert("src", [{"id": i, "vector": row.tolist(), **{k: v for k, v in payload(i).items()}}
                          for i, row in enumerate(vectors())])
    client.close()


def milvus_doc_id_layout(path: Path) -> None:
    """A ``doc_id`` VARCHAR key, scalar columns, two dense vector fields, a sparse field, two partitions."""
    from pymilvus import DataType, MilvusClient

    client = MilvusClient(str(path))
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=True)
    schema.add_field("doc_id", DataType.VARCHAR, is_primary=True, max_length=64)
    schema.add_field("dense", DataType.FLOAT_VECTOR, dim=WIDTH)
    schema.add_field("img", DataType.FLOAT_VECTOR, dim=4)
    schema.add_field("sp", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_field("year", DataType.INT64)
    schema.add_field("score", DataType.DOUBLE)
    index = client.prepare_index_params()
    index.add_index("dense", index_type="FLAT", metric_type="COSINE")
    index.add_index("img", index_type="FLAT", metric_type="L2")
    index.add_index("sp", index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
    client.create_collection("src", schema=schema, index_params=index)
    client.create_partition("src", "archive")
    rows = [{"doc_id": f"doc-{i}", "dense": row.tolist(), "img": [float(i % 3), 1.0, 2.0, 3.0],
             "sp": {i % 5: 0.5, 50 + i: 0.25}, "year": 2000 + i, "score": i / 2, "extra": {"k": [i]}}
            for i, row in enumerate(vectors())]
    client.insert("src", rows[: N // 2])
    client.insert("src", rows[N // 2:], partition_name="archive")
    client.close()


def milvus_rows(path: Path, name: str, key: str) -> dict:
    from pymilvus import MilvusClient

    client = MilvusClient(str(path))
    try:
        client.load_collection(name)
        rows = client.query(name, filter=f"{key} >= 0" if key == "id" else f'{key} != ""', output_fields=["*"],
                            limit=16384)
        return {r[key]: r for r in rows}
    finally:
        client.close()


@pytest.mark.parametrize("kind", ["milvus-lite", "qdrant-edge", "qdrant-local"])
def test_milvus_quick_setup_dynamic_fields_are_kept(tmp_path, kind):
    milvus_quick_setup(tmp_path / "m.db")
    assert migrate_into(kind, tmp_path, "milvus", tmp_path / "m.db")["verification"]["passed"]
    got = read_native(kind, tmp_path, "src_smec")
    assert len(got) == N
    for i in range(N):
        assert same_payload(got[str(i)][0], payload(i))


def test_milvus_quick_setup_migrated_in_place(tmp_path):
    milvus_quick_setup(tmp_path / "m.db")
    b = open_backend("milvus", path=str(tmp_path / "m.db"))
    try:
        assert migrate(b, opts(tmp_path))["verification"]["passed"]
    finally:
        b.close()
    got = milvus_rows(tmp_path / "m.db", "src_smec", "id")
    assert len(got) == N and all(same_payload({k: v for k, v in got[i].items() if k not in ("id", "vector", "full",
                                                                                           "d12")}, payload(i))
                                 for i in range(N))


def test_milvus_doc_id_key_several_vectors_sparse_and_partitions_into_qdrant_edge(tmp_path):
    milvus_doc_id_layout(tmp_path / "m.db")
    source = open_backend("milvus", path=str(tmp_path / "m.db"))
    target = open_backend("qdrant-edge", path=str(tmp_path / "edge"))
    try:
        report = migrate(source, opts(tmp_path, vector="dense"), target_backend=target)
        assert report["verification"]["passed"] and report["target"]["id_type"] == "str"
        assert report["target"]["carried"] == {"img": 4} and report["target"]["sparse"] == ["sp"]
    finally:
        source.close()
        target.close()
    import qdrant_edge

    shard = qdrant_edge.EdgeShard.load(str(tmp_path / "edge" / "src_smec" / "shard"))
    try:
        records, _ = shard.scroll(qdrant_edge.ScrollRequest(offset=None, limit=10_000, with_payload=True,
                                                            with_vector=True))
    finally:
        shard.close()
    assert len(records) == N
    by_doc = {r.payload["_smec_id"]: r for r in records}  # non-UUID string ids keep their original here
    for i in range(N):
        r = by_doc[f"doc-{i}"]
        assert {k: v for k, v in r.payload.items() if k != "_smec_id"} == {"year": 2000 + i, "score": i / 2,
                                                                          "extra": {"k": [i]}}
        assert r.vector["img"] == [float(i % 3), 1.0, 2.0, 3.0]
        assert dict(zip(r.vector["sp"].indices, r.vector["sp"].values)) == {i % 5: 0.5, 50 + i: 0.25}


def test_mixed_ids_into_milvus_are_refused_before_anything_is_written(tmp_path):
    qdrant_quickstart(tmp_path / "q", mixed_ids())
    source = open_backend("qdrant", path=str(tmp_path / "q"))
    target = open_backend("milvus", path=str(tmp_path / "m.db"))
    try:
        with pytest.raises(Exception, match="one type"):
            migrate(source, opts(tmp_path), target_backend=target)
        assert not target.exists("src_smec") and not (tmp_path / "compressors").exists()
    finally:
        source.close()
        target.close()


# -- verification that can fail, re-sync ------------------------------------------------------------
def plain_payload(i: int) -> dict:
    return {"n": i, "f": float(i), "nested": {"a": [i, None]}}


def edge_source(tmp_path: Path):
    """A smec-vdb-made source with plain payloads, so each test below fails only for the bug it targets."""
    b = open_backend("qdrant-edge", path=str(tmp_path / "edge"))
    b.create_collection("src", CollectionSchema((Resolution("emb", WIDTH),)))
    b.upsert("src", Batch(list(range(N)), {"emb": vectors()}, [plain_payload(i) for i in range(N)]))
    return b


def test_source_changes_after_a_run_are_found_and_resynced(tmp_path):
    b = edge_source(tmp_path)
    try:
        migrate(b, opts(tmp_path))
        x = vectors(seed=5)
        b.upsert("src", Batch([3, 7], {"emb": x[:2]}, [{"changed": 1}, plain_payload(7)]))  # 3: payload+vector, 7: vector
        b.upsert("src", Batch([N + 1], {"emb": x[2:3]}, [{"new": True}]))
        b.delete("src", [11])
        check = migrate(b, opts(tmp_path, check=True))
        assert not check["in_sync"] and check["drift"]["differences"] == {
            "missing": 1, "payload or sparse vectors differ": 1, "full vector differs": 1, "unexpected (not in source)": 1}
        report = migrate(b, opts(tmp_path))
        assert report["resync"]["rewritten"] == 3 and report["resync"]["deleted"] == 1
        assert report["verification"]["passed"]
        assert migrate(b, opts(tmp_path, check=True))["in_sync"]
    finally:
        b.close()


@pytest.mark.parametrize("corruption", ["payload", "vector", "encoding", "delete", "extra"])
def test_each_verification_check_fails_on_a_corrupted_target_and_a_rerun_repairs_it(tmp_path, corruption):
    b = edge_source(tmp_path)
    try:
        migrate(b, opts(tmp_path))
        point = b.retrieve("src_smec", [5])[0]
        vectors_ = {n: v[None] for n, v in point.vectors.items()}
        if corruption == "payload":
            b.upsert("src_smec", Batch([5], vectors_, [{**point.payload, "n": 5.0}]))  # int became float
        elif corruption == "vector":
            vectors_["full"] = vectors_["full"][:, ::-1].copy()
            b.upsert("src_smec", Batch([5], vectors_, [point.payload]))
        elif corruption == "encoding":
            vectors_["d12"] = vectors_["d12"][:, ::-1].copy()
            b.upsert("src_smec", Batch([5], vectors_, [point.payload]))
        elif corruption == "delete":
            b.delete("src_smec", [5])
        else:
            b.upsert("src_smec", Batch([N + 50], vectors_, [point.payload]))
        col = SmecCollection.open(b, "src_smec")
        from smec_vdb.migrate.plan import inspect_source
        from smec_vdb.migrate.verify import verify

        result = verify(b, b, inspect_source(b, "src", None), col, min_recall=0.3, n_queries=10, seed=0, batch=128)
        assert not result["passed"] and ([5] in result["first_ids"].values() or [N + 50] in result["first_ids"].values())
        assert "run the same migrate command again" in result["summary"]
        assert migrate(b, opts(tmp_path))["verification"]["passed"]  # the re-run repairs it, no restart
    finally:
        b.close()


def test_constant_compressor_is_refused_and_budget_is_a_small_fraction(tmp_path):
    from smec_vdb.compress.artifact import load
    from smec_vdb.migrate.verify import recall_budget
    import torch

    b = edge_source(tmp_path)
    try:
        report = migrate(b, opts(tmp_path))
        assert report["verification"]["recall_candidates"] < 0.1 * N
        assert recall_budget(N, 10, WIDTH, 12) < 0.1 * N
        comp = load(report["compressor"]["path"])
        with torch.no_grad():
            for p in comp.parameters():
                p.zero_()
        comp.save(tmp_path / "zero")
        with pytest.raises(Exception, match="compressor encodes"):
            migrate(b, opts(tmp_path, target="other", compressor=str(tmp_path / "zero"), dims=None))
        assert not b.exists("other")
    finally:
        b.close()


def test_trained_now_is_false_on_a_resume(tmp_path):
    from smec_vdb.migrate import MigrationInterrupted

    b = edge_source(tmp_path)
    try:
        stop = StopInCopy(2)
        with pytest.raises(MigrationInterrupted):
            migrate(b, opts(tmp_path, batch_size=100), progress=stop.progress, should_stop=stop)
        report = migrate(b, opts(tmp_path, batch_size=100))
        assert report["resumed"] and report["compressor"]["trained_now"] is False
    finally:
        b.close()


# -- stores, aliases -----------------------------------------------------------------------------
def test_a_target_named_compressors_does_not_destroy_trained_compressors(tmp_path):
    b = edge_source(tmp_path)
    store = tmp_path / "edge" / "compressors"  # the old default put compressors inside the edge store
    try:
        report = migrate(b, opts(tmp_path, compressor_store=str(store)))
        assert Path(report["compressor"]["path"]).is_dir()
        with pytest.raises(CollectionExistsError, match="not a smec-vdb collection"):
            migrate(b, opts(tmp_path, target="compressors", compressor=report["compressor"]["path"], dims=None))
        b.drop("compressors")
        assert Path(report["compressor"]["path"]).is_dir()
    finally:
        b.close()


def test_default_compressor_store_is_beside_the_engine_data_dir():
    from smec_vdb.adapters import DEFAULT_STORE
    from smec_vdb.migrate import DEFAULT_COMPRESSOR_STORE

    assert not Path(DEFAULT_COMPRESSOR_STORE).resolve().is_relative_to(Path(DEFAULT_STORE).resolve())


def test_corrupt_sidecar_json_is_a_typed_error_naming_the_file(tmp_path):
    b = edge_source(tmp_path)
    b.close()
    (tmp_path / "edge" / "src" / "metadata.json").write_text("{not json")
    b = open_backend("qdrant-edge", path=str(tmp_path / "edge"))
    try:
        with pytest.raises(CorruptStoreError, match="metadata.json"):
            b.get_metadata("src", "compressor")
    finally:
        b.close()


def test_reader_opened_through_an_alias_follows_a_swap(tmp_path):
    b = edge_source(tmp_path)
    try:
        first = migrate(b, opts(tmp_path, target="a", swap_alias="live"))
        reader = SmecCollection.open(b, "live")
        migrate(b, opts(tmp_path, target="b", dims=(6,), swap_alias="live"))
        q = vectors()[9]
        hits = reader.search(q, k=5)
        assert reader.bound_to == "b" and reader.compressor.manifest_hash != first["compressor"]["hash"]
        assert hits[0].id == 9
    finally:
        b.close()


def test_milvus_metadata_follows_aliases(tmp_path):
    milvus_quick_setup(tmp_path / "m.db")
    b = open_backend("milvus", path=str(tmp_path / "m.db"))
    try:
        migrate(b, opts(tmp_path, swap_alias="live"))
        assert b.get_metadata("live", "compressor") == b.get_metadata("src_smec", "compressor") is not None
        assert SmecCollection.open(b, "live").search(vectors()[4], k=3)[0].id == 4
    finally:
        b.close()


def _add_aliases(store: str, prefix: str, n: int) -> None:
    b = open_backend("qdrant-edge", path=store)
    for i in range(n):
        b.create_alias(f"{prefix}{i}", "src")


def test_qdrant_edge_alias_updates_from_two_processes_are_all_kept(tmp_path):
    edge_source(tmp_path).close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_add_aliases, args=(str(tmp_path / "edge"), p, 40)) for p in ("x", "y")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    aliases = json.loads((tmp_path / "edge" / "aliases.json").read_text())
    assert len(aliases) == 80


def test_credentials_in_urls_are_masked():
    from smec_vdb.errors import BackendError

    assert "s3cret" not in str(BackendError("cannot reach http://admin:s3cret@db:6333"))


def test_unwritable_report_is_refused_before_work_starts(tmp_path):
    import subprocess
    import sys

    edge_source(tmp_path).close()
    proc = subprocess.run([sys.executable, "-m", "smec_vdb.cli.app", "migrate", "--collection", "src", "--dims", "12",
                           "--report", str(tmp_path / "no" / "such" / "dir" / "r.json"), "--backend", "qdrant-edge",
                           "--path", str(tmp_path / "edge"), "--compressor-store", str(tmp_path / "c")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "--report" in proc.stderr and not (tmp_path / "c").exists()


def test_user_payload_keys_starting_with_smec_survive_on_every_engine(tmp_path):
    for name, kw in (("qdrant-edge", {"path": str(tmp_path / "e")}), ("qdrant", {"path": str(tmp_path / "q")}),
                     ("milvus", {"path": str(tmp_path / "m.db")})):
        b = open_backend(name, **kw)
        try:
            b.create_collection("c", CollectionSchema((Resolution("v", 4),)))
            b.upsert("c", Batch([1, 2], {"v": np.eye(2, 4)}, [{"_smec_id": 99}, {"_smec_x": "y"}]))
            got = {p.id: p.payload for p in b.retrieve("c", [1, 2], with_vectors=False)}
            assert got == {1: {"_smec_id": 99}, 2: {"_smec_x": "y"}}, name
        finally:
            b.close()


def test_verification_error_carries_what_differs(tmp_path):
    b = edge_source(tmp_path)
    try:
        with pytest.raises(VerificationError, match="min_recall"):
            migrate(b, opts(tmp_path, dims=(1,), min_recall=1.0, keep_full=False))
    finally:
        b.close()


def test_writes_to_the_source_during_a_run_are_caught_then_resynced(tmp_path):
    """A point changed behind the copy cursor fails the final verification (naming it); one changed ahead
    of the cursor is copied in its new state; the next run re-syncs and passes."""
    from smec_vdb.migrate import MigrationInterrupted

    b = edge_source(tmp_path)
    try:
        stop = StopInCopy(1)
        with pytest.raises(MigrationInterrupted):  # stops after the first batch of 100 (ids 0..99)
            migrate(b, opts(tmp_path, batch_size=100), progress=stop.progress, should_stop=stop)
        b.upsert("src", Batch([5, 300], {"emb": vectors(seed=9)[:2]}, [{"during": 1}, {"during": 2}]))
        with pytest.raises(VerificationError, match=r"first ids \[5\]") as failed:
            migrate(b, opts(tmp_path, batch_size=100))
        assert "run the same migrate command again" in str(failed.value)
        assert b.retrieve("src_smec", [300], with_vectors=False)[0].payload == {"during": 2}
        report = migrate(b, opts(tmp_path, batch_size=100))
        assert report["verification"]["passed"] and report["resync"]["rewritten"] == 1
    finally:
        b.close()


def test_points_a_target_cannot_hold_are_refused_before_training(tmp_path):
    """Ids above Milvus's signed 64-bit range, and a ``_smec_id`` payload key on a string id bound for
    Qdrant, are found by the survey and refused before anything is trained or written."""
    from qdrant_client import QdrantClient, models
    from pymilvus import DataType, MilvusClient

    from smec_vdb.errors import DataError

    client = QdrantClient(path=str(tmp_path / "q"))
    client.create_collection("src", vectors_config=models.VectorParams(size=WIDTH, distance=models.Distance.COSINE))
    client.upsert("src", [models.PointStruct(id=i if i else 2**63 + 5, vector=row.tolist(), payload={})
                          for i, row in enumerate(vectors(20))])
    client.close()
    milvus = MilvusClient(str(tmp_path / "m.db"))
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=True)
    schema.add_field("doc_id", DataType.VARCHAR, is_primary=True, max_length=64)
    schema.add_field("dense", DataType.FLOAT_VECTOR, dim=WIDTH)
    index = milvus.prepare_index_params()
    index.add_index("dense", index_type="FLAT", metric_type="COSINE")
    milvus.create_collection("src", schema=schema, index_params=index)
    milvus.insert("src", [{"doc_id": f"d{i}", "dense": row.tolist(), **({"_smec_id": "x"} if i == 7 else {})}
                          for i, row in enumerate(vectors(20))])
    milvus.close()
    for source_args, target_kind, match in ((("qdrant", tmp_path / "q"), "milvus-lite", "64-bit"),
                                            (("milvus", tmp_path / "m.db"), "qdrant-edge", "_smec_id")):
        with pytest.raises(DataError, match=match):
            migrate_into(target_kind, tmp_path, *source_args)
        target = open_target(target_kind, tmp_path)
        try:
            assert not target.exists("src_smec")
        finally:
            target.close()
        assert not (tmp_path / "compressors").exists()
