"""A migrated collection is a drop-in replacement (issue 21): every layout a source has is carried or
refused in the plan, before anything is trained or written, and re-sync handles the edge cases.

Sources are built with each engine's own client as its docs show; targets are read back with the
target engine's own client, with the queries the application ran on the source. Each test fails on
the code before issue 21 (named in its docstring).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_foreign_layouts import TARGETS, WIDTH, migrate_into, open_target, opts, vectors

from smec_vdb.adapters import open_backend
from smec_vdb.errors import DataError, InvalidVectorError, MigrationError, UnsupportedSourceError
from smec_vdb.migrate import MigrationOptions, migrate

N = 300


def store(kind: str, root: Path) -> Path:
    """Where :func:`open_target` keeps target ``kind`` under ``root``."""
    return root / TARGETS[kind][1]


def run(tmp_path: Path, kind: str, source_path: Path, **kw) -> dict:
    """``migrate`` from the qdrant-client source at ``source_path`` into a fresh ``kind`` store."""
    return migrate_into(kind, tmp_path, "qdrant", source_path, **kw)


def nothing_left(tmp_path: Path, kind: str) -> None:
    """A refusal leaves no target, no scratch collection and no trained compressor behind."""
    target = open_target(kind, tmp_path)
    try:
        assert target.list_collections() == []
    finally:
        target.close()
    assert not (tmp_path / "compressors").exists()


# -- Qdrant sources made with qdrant-client --------------------------------------------------------------
def qdrant_rich_source(path: Path, sparse_only: set[int] = frozenset(), payloads: dict | None = None,
                       extras: bool = True) -> None:
    """Named vectors as qdrant-client's docs make them: a cosine ``dense`` vector, a sparse ``bm25`` and (with
    ``extras``) a uint8 and a float16 vector and a ColBERT multivector (``MultiVectorConfig(MAX_SIM)``); the
    points in ``sparse_only`` have only the sparse vector (a hybrid collection's keyword-only documents)."""
    from qdrant_client import QdrantClient, models

    client = QdrantClient(path=str(path))
    config = {"dense": models.VectorParams(size=WIDTH, distance=models.Distance.COSINE)}
    if extras:
        config.update(
            u8=models.VectorParams(size=6, distance=models.Distance.DOT, datatype=models.Datatype.UINT8),
            f16=models.VectorParams(size=6, distance=models.Distance.DOT, datatype=models.Datatype.FLOAT16),
            colbert=models.VectorParams(size=8, distance=models.Distance.COSINE, multivector_config=models.MultiVectorConfig(
                comparator=models.MultiVectorComparator.MAX_SIM)))
    client.create_collection("src", vectors_config=config, sparse_vectors_config={"bm25": models.SparseVectorParams()})
    x = vectors(N)
    points = []
    for i in range(N):
        vector = {"bm25": models.SparseVector(indices=[i % 11, 200 + i], values=[0.5, 0.25])}
        if i not in sparse_only:
            vector["dense"] = x[i].tolist()
        if i not in sparse_only and extras:
            vector.update(u8=[float((i * k) % 256) for k in range(6)],
                          f16=[0.25 * ((i + k) % 9) - 1.0 for k in range(6)],  # float16 holds these exactly
                          colbert=token_vectors(i).tolist())
        points.append(models.PointStruct(id=i, vector=vector, payload=(payloads or {}).get(i, {"n": i, "f": i / 7})))
    client.upsert("src", points)
    client.close()


def token_vectors(i: int) -> np.ndarray:
    rng = np.random.default_rng(i)
    return rng.normal(size=(2 + i % 3, 8)).astype(np.float32)


@pytest.mark.parametrize("kind", ["qdrant-edge", "qdrant-local"])
def test_qdrant_datatypes_and_multivector_are_carried_as_the_source_has_them(tmp_path, kind):
    """Before: uint8/float16 vectors became float32, and a multivector failed the copy after the target
    was made (``all input arrays must have the same shape``), leaving a half-made target."""
    qdrant_rich_source(tmp_path / "q")
    report = run(tmp_path, kind, tmp_path / "q", vector="dense")
    assert report["verification"]["passed"], report["verification"]["summary"]
    mapping = {m["item"]: m["how"] for m in report["schema_mapping"]}
    assert mapping["vector 'colbert' 8-d multivector cosine"] == "kept"
    assert mapping["vector 'u8' 6-d uint8 dot"] == "kept" and mapping["vector 'f16' 6-d float16 dot"] == "kept"
    stored = read_qdrant_target(kind, tmp_path)
    assert stored["config"] == {"u8": ("uint8", None), "f16": ("float16", None), "colbert": (None, "max_sim")}
    for i in (0, 7, N - 1):
        v = stored["points"][i]
        assert v["u8"] == [float((i * k) % 256) for k in range(6)]
        assert v["f16"] == [0.25 * ((i + k) % 9) - 1.0 for k in range(6)]
        tokens = token_vectors(i)  # qdrant-edge stores cosine tokens normalised, local mode as given
        expected = tokens / np.linalg.norm(tokens, axis=1, keepdims=True) if kind == "qdrant-edge" else tokens
        np.testing.assert_allclose(v["colbert"], expected, atol=1e-6)
    # the application's late-interaction query answers on the target as on the source
    assert colbert_top(kind, tmp_path, token_vectors(42)[:2]) == 42


def read_qdrant_target(kind: str, root: Path) -> dict:
    """The target's vector storage (datatype, multivector comparator) and points, read with the engine's own client."""
    if kind == "qdrant-local":
        from qdrant_client import QdrantClient

        client = QdrantClient(path=str(store("qdrant-local", root)))
        try:
            params = client.get_collection("src_smec").config.params.vectors
            records, _ = client.scroll("src_smec", limit=10_000, with_vectors=True)
        finally:
            client.close()
        config = {n: (p.datatype.value if p.datatype else None,
                      p.multivector_config.comparator.value if p.multivector_config else None)
                  for n, p in params.items() if n in ("u8", "f16", "colbert")}
        return {"config": config, "points": {r.id: r.vector for r in records}}
    import qdrant_edge

    shard_dir = store("qdrant-edge", root) / "src_smec" / "shard"
    engine_config = json.loads((shard_dir / "edge_config.json").read_text())["vectors"]
    config = {n: ((engine_config[n].get("datatype") or "").lower() or None,
                  ((engine_config[n].get("multivector_config") or {}).get("comparator") or "").lower() or None)
              for n in ("u8", "f16", "colbert")}
    shard = qdrant_edge.EdgeShard.load(str(shard_dir))
    try:
        records, _ = shard.scroll(qdrant_edge.ScrollRequest(offset=None, limit=10_000, with_vector=True))
    finally:
        shard.close()
    return {"config": config, "points": {r.id: {k: [float(x) if not isinstance(x, list) else x for x in v]
                                                for k, v in r.vector.items() if not hasattr(v, "indices")}
                                         for r in records}}


def colbert_top(kind: str, root: Path, query: np.ndarray) -> int:
    """The best hit of a max-sim query on the multivector, asked with the target engine's own client."""
    if kind == "qdrant-local":
        from qdrant_client import QdrantClient

        client = QdrantClient(path=str(store("qdrant-local", root)))
        try:
            return client.query_points("src_smec", query=query.tolist(), using="colbert", limit=1).points[0].id
        finally:
            client.close()
    import qdrant_edge as e

    shard = e.EdgeShard.load(str(store("qdrant-edge", root) / "src_smec" / "shard"))
    try:
        return shard.query(e.QueryRequest(limit=1, query=e.Query.Nearest(query.tolist(), using="colbert")))[0].id
    finally:
        shard.close()


def test_a_multivector_milvus_cannot_hold_is_refused_in_the_plan_and_can_be_left_out(tmp_path):
    """Before: the plan accepted it, made the target, then the copy failed (``expected width 16, found shape
    (512, 4, 16)``) leaving a target with a checkpoint; choosing it as the migrated vector was an internal
    TypeError."""
    qdrant_rich_source(tmp_path / "q")
    with pytest.raises(UnsupportedSourceError, match=r"'colbert' 8-d multivector.*leave_out"):
        run(tmp_path, "milvus-lite", tmp_path / "q", vector="dense")
    nothing_left(tmp_path, "milvus-lite")
    with pytest.raises(UnsupportedSourceError, match="multivector"):
        run(tmp_path, "milvus-lite", tmp_path / "q", vector="colbert")
    nothing_left(tmp_path, "milvus-lite")
    report = run(tmp_path, "milvus-lite", tmp_path / "q", vector="dense", leave_out=("colbert", "u8", "f16"))
    assert report["verification"]["passed"]
    assert {m["item"]: m["how"] for m in report["schema_mapping"]}["vector 'colbert'"] == "left out (leave_out)"
    from pymilvus import MilvusClient

    client = MilvusClient(str(store("milvus-lite", tmp_path)))
    try:
        fields = {f["name"] for f in client.describe_collection("src_smec")["fields"]}
    finally:
        client.close()
    assert "colbert" not in fields and {"full", "d12", "bm25"} <= fields


@pytest.mark.parametrize("kind", ["qdrant-edge", "qdrant-local"])
def test_sparse_only_points_of_a_hybrid_collection_are_carried_without_compressed_vectors(tmp_path, kind):
    """Before: ``internal error: KeyError: 'dense'`` in the survey, also with ``--on-bad-vector skip``."""
    lonely = {3, 50, 51, 299}
    qdrant_rich_source(tmp_path / "q", sparse_only=lonely, extras=False)
    report = run(tmp_path, kind, tmp_path / "q", vector="dense")
    assert report["verification"]["passed"], report["verification"]["summary"]
    assert report["points_without_vector"]["count"] == len(lonely) and report["skipped_ids"] == []
    assert report["verification"]["points_checked"] == N
    stored = read_qdrant_target(kind, tmp_path)["points"] if kind == "qdrant-local" else None
    if stored is not None:
        assert set(stored[3]) == {"bm25"} and {"full", "d12", "bm25"} <= set(stored[4])


def test_sparse_only_points_are_refused_by_milvus_in_the_plan_or_skipped_and_counted(tmp_path):
    lonely = {3, 50}
    qdrant_rich_source(tmp_path / "q", sparse_only=lonely, extras=False)
    kw = dict(vector="dense")
    with pytest.raises(InvalidVectorError, match=r"2 source point\(s\) have no 'dense' vector.*on_bad_vector"):
        run(tmp_path, "milvus-lite", tmp_path / "q", **kw)
    nothing_left(tmp_path, "milvus-lite")
    report = run(tmp_path, "milvus-lite", tmp_path / "q", on_bad_vector="skip", **kw)
    assert report["verification"]["passed"] and sorted(report["skipped_ids"]) == sorted(lonely)


@pytest.mark.parametrize("kind", ["qdrant-edge", "milvus-lite"])
def test_payload_integers_beyond_64_bits_are_refused_in_the_plan_or_skipped(tmp_path, kind):
    """Before: into qdrant-edge 10**30 was stored as the float 1e+30 and verification failed on every run
    ("run the same command again", forever); into Milvus it was refused only in the copy, after training
    and after the target existed."""
    qdrant_rich_source(tmp_path / "q", payloads={17: {"n": 17, "big": 10**30}}, extras=False)
    kw = dict(vector="dense")
    with pytest.raises(DataError, match=r"first ids \[17\].*'big'.*beyond signed 64 bits.*on_bad_payload"):
        run(tmp_path, kind, tmp_path / "q", **kw)
    nothing_left(tmp_path, kind)
    report = run(tmp_path, kind, tmp_path / "q", on_bad_payload="skip", **kw)
    assert report["verification"]["passed"] and report["skipped_ids"] == [17]
    assert report["bad_payloads"]["count"] == 1


def test_a_payload_nested_deeper_than_qdrant_edge_decodes_is_refused_in_the_plan(tmp_path):
    """Before: the copy failed in the engine ("recursion limit exceed") after the target was made."""
    deep: dict = {"leaf": 1}
    for _ in range(140):
        deep = {"a": deep}
    qdrant_rich_source(tmp_path / "q", payloads={9: deep}, extras=False)
    with pytest.raises(DataError, match=r"first ids \[9\].*nests 1\d\d levels deep \(limit 128\)"):
        run(tmp_path, "qdrant-edge", tmp_path / "q", vector="dense")
    nothing_left(tmp_path, "qdrant-edge")


# -- re-sync edge cases -------------------------------------------------------------------------------------
def simple_qdrant_source(path: Path, n: int = N) -> None:
    from qdrant_client import QdrantClient, models

    client = QdrantClient(path=str(path))
    client.create_collection("docs", vectors_config=models.VectorParams(size=WIDTH, distance=models.Distance.COSINE))
    floats = np.random.default_rng(1).normal(size=n) * 1000  # about 1 in 8 such doubles qdrant-edge rounds by 1 ulp
    client.upsert("docs", [models.PointStruct(id=i, vector=row.tolist(), payload={"n": i, "f": float(floats[i])})
                           for i, row in enumerate(vectors(n))])
    client.close()


def test_an_emptied_source_resyncs_the_target_to_empty_only_when_confirmed(tmp_path):
    """Before: ``source 'docs' is empty: nothing to migrate`` and the target kept every stale point."""
    from qdrant_client import QdrantClient, models

    simple_qdrant_source(tmp_path / "q")
    b = open_backend("qdrant", path=str(tmp_path / "q"))
    try:
        assert migrate(b, opts(tmp_path, source="docs"))["verification"]["passed"]
    finally:
        b.close()
    client = QdrantClient(path=str(tmp_path / "q"))
    client.delete("docs", points_selector=models.FilterSelector(filter=models.Filter()))
    client.close()
    b = open_backend("qdrant", path=str(tmp_path / "q"))
    try:
        with pytest.raises(MigrationError, match=f"holds {N} points.*allow_empty_source"):
            migrate(b, opts(tmp_path, source="docs"))
        assert b.count("docs_smec") == N
        report = migrate(b, opts(tmp_path, source="docs", allow_empty_source=True))
        assert report["resync"]["deleted"] == N and report["verification"]["passed"]
    finally:
        b.close()
    client = QdrantClient(path=str(tmp_path / "q"))
    try:
        assert client.count("docs_smec").count == 0
    finally:
        client.close()


def test_a_source_alias_swapped_onto_its_own_target_is_recognised_and_the_error_says_what_to_run(tmp_path):
    """Before: re-running a migration whose --swap-alias moved the source's own alias failed with
    ``source 'docs_live' has several dense vectors``, not saying the alias now points at the target."""
    from qdrant_client import QdrantClient, models

    simple_qdrant_source(tmp_path / "q")
    client = QdrantClient(path=str(tmp_path / "q"))
    client.update_collection_aliases(change_aliases_operations=[models.CreateAliasOperation(
        create_alias=models.CreateAlias(collection_name="docs", alias_name="docs_live"))])
    client.close()
    b = open_backend("qdrant", path=str(tmp_path / "q"))
    try:
        first = migrate(b, opts(tmp_path, source="docs_live", swap_alias="docs_live"))
        assert first["alias"] == {"name": "docs_live", "collection": "docs_live_smec"}
        with pytest.raises(MigrationError, match="alias that now points at this migration's target 'docs_live_smec'"
                                                 ".*collection='docs', target='docs_live_smec'") as refused:
            migrate(b, opts(tmp_path, source="docs_live", swap_alias="docs_live"))
        assert "several dense vectors" not in str(refused.value)
        again = migrate(b, opts(tmp_path, source="docs", target="docs_live_smec", swap_alias="docs_live"))
        assert again["already_complete"] and again["verification"]["passed"]
    finally:
        b.close()


def test_a_refusal_on_restart_keeps_the_target_that_was_there(tmp_path):
    """Before: --restart dropped the target before a refusal found in the copy, losing it."""
    from qdrant_client import QdrantClient, models

    simple_qdrant_source(tmp_path / "q")
    source = open_backend("qdrant", path=str(tmp_path / "q"))
    target = open_target("qdrant-edge", tmp_path)
    try:
        migrate(source, opts(tmp_path, source="docs"), target_backend=target)
    finally:
        source.close()
        target.close()
    client = QdrantClient(path=str(tmp_path / "q"))
    client.upsert("docs", [models.PointStruct(id=5, vector=vectors(1)[0].tolist(), payload={"n": float("nan")})])
    client.close()
    source = open_backend("qdrant", path=str(tmp_path / "q"))
    target = open_target("qdrant-edge", tmp_path)
    try:
        with pytest.raises(DataError, match="JSON cannot hold"):
            migrate(source, opts(tmp_path, source="docs", restart=True), target_backend=target)
        assert target.count("docs_smec") == N and target.list_collections() == ["docs_smec"]
    finally:
        source.close()
        target.close()


def test_options_name_what_they_change():
    with pytest.raises(Exception, match="on_bad_payload must be fail or skip"):
        MigrationOptions(source="s", dim=4, on_bad_payload="drop")  # type: ignore[arg-type]
    a = MigrationOptions(source="s", dim=4)
    stores = ("v", "qdrant-edge:/a", "qdrant-edge:/a")
    assert a.plan_id(*stores) == MigrationOptions(source="s", dim=4, on_bad_payload="skip").plan_id(*stores)
    assert a.plan_id(*stores) != MigrationOptions(source="s", dim=4, leave_out=("x",)).plan_id(*stores)


# -- exact where the engine is exact ------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["milvus-lite", "qdrant-edge"])
def test_check_finds_a_one_ulp_payload_edit_and_a_1e_6_vector_edit(tmp_path, kind):
    """Before: tolerances of 2 ulp and 1e-4 hid both edits from --check, even on targets that store values
    exactly. qdrant-edge rounds some payload doubles by 1 ulp itself: the probe names that class and
    verification counts it; a 1-ulp edit there is indistinguishable from it (see README)."""
    from qdrant_client import QdrantClient, models

    simple_qdrant_source(tmp_path / "q")
    source = open_backend("qdrant", path=str(tmp_path / "q"))
    target = open_target(kind, tmp_path)
    try:
        report = migrate(source, opts(tmp_path, source="docs"), target_backend=target)
    finally:
        source.close()
        target.close()
    client = QdrantClient(path=str(tmp_path / "q"))
    (p5,) = client.retrieve("docs", [5], with_vectors=False)
    (p9,) = client.retrieve("docs", [9], with_vectors=True)
    client.set_payload("docs", {"f": float(np.nextafter(p5.payload["f"], 1.0))}, points=[5])
    edited = np.asarray(p9.vector, dtype=np.float32)
    edited[0] += 1e-6
    client.upsert("docs", [models.PointStruct(id=9, vector=edited.tolist(), payload=p9.payload)])
    client.close()
    source = open_backend("qdrant", path=str(tmp_path / "q"))
    target = open_target(kind, tmp_path)
    try:
        check = migrate(source, opts(tmp_path, source="docs", check=True), target_backend=target)
        differences, first = check["drift"]["differences"], check["drift"]["first_ids"]
        assert first["full vector differs"] == [9]
        if kind == "milvus-lite":
            assert differences == {"payload or sparse vectors differ": 1, "full vector differs": 1}
            assert first["payload or sparse vectors differ"] == [5]
        report = migrate(source, opts(tmp_path, source="docs"), target_backend=target)
        assert report["verification"]["passed"]
        assert report["resync"]["rewritten"] == 2 if kind == "milvus-lite" else report["resync"]["rewritten"] >= 1
        assert migrate(source, opts(tmp_path, source="docs", check=True), target_backend=target)["in_sync"]
    finally:
        source.close()
        target.close()
    classes = report["verification"]["engine_classes"]
    if kind == "qdrant-edge":
        assert report["engine_fidelity"]["payload_float_ulps"] == 1 and classes["payload floats rounded by the engine"] > 0
    else:
        assert report["engine_fidelity"]["classes"] == {} and classes == {}


def test_dry_run_prints_how_each_part_of_the_source_is_held(tmp_path):
    """Before: nothing said that partitions, payload indexes or a vector would not be kept as they were."""
    import os
    import subprocess
    import sys

    qdrant_rich_source(tmp_path / "q")
    proc = subprocess.run(
        [sys.executable, "-m", "smec_vdb.cli.app", "migrate", "--collection", "src", "--vector", "dense", "--dim", "12",
         "--dry-run", "--epochs", "1", "--backend", "qdrant", "--path", str(tmp_path / "q"), "--target-backend",
         "milvus", "--target-path", str(store("milvus-lite", tmp_path)), "--leave-out", "colbert", "--leave-out", "u8",
         "--leave-out", "f16"],
        capture_output=True, text=True, timeout=600, env={**os.environ, "COLUMNS": "250"})
    assert proc.returncode == 0, proc.stderr
    for line in ("vector 'colbert': left out (leave_out)", "sparse vector 'bm25': kept",
                 "payload key 'n': typed column 'n' int64", "payload key 'f': typed column 'f' double",
                 "vector 'dense' 24-d cosine: compressed by SMEC into full 24-d, d12 12-d (cosine)"):
        assert line in proc.stdout, proc.stdout
    nothing_left(tmp_path, "milvus-lite")
