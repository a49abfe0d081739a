"""The compressor store on real engines (issue 22, findings 2 and 3).

Two qdrant-edge stores migrating a collection named ``docs`` with the same options used to write one
``./smec_compressors/docs_smec-<plan>``, so the first store's search, re-run and ``check`` failed
afterwards; and an extended compressor replaced the one its collections record. Now compressors are
content-addressed and never overwritten: each store keeps its own, a collection keeps working with its
compressor until it is migrated to a new one, and gc deletes a compressor only once nothing records it.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest

from smec_vdb.adapters import open_backend
from smec_vdb.backend import Batch, CollectionSchema, Resolution
from smec_vdb.collection import SmecCollection
from smec_vdb.compress.artifact import load
from smec_vdb.compress.store import CompressorStore, collect_garbage
from smec_vdb.errors import CompressorInUseError
from smec_vdb.migrate import MigrationOptions, migrate

N, WIDTH = 400, 24


def clustered(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(10, WIDTH))
    x = centres[rng.integers(0, 10, N)] + 0.3 * rng.normal(size=(N, WIDTH))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


#: embedded engine → the store path under a folder
STORES = {"qdrant-edge": "edge", "milvus": "milvus.db"}


def docs_store(engine: str, root: Path, seed: int):
    """An embedded store holding a collection ``docs`` (as ``smec-vdb demo`` makes one)."""
    b = open_backend(engine, path=str(root / STORES[engine]))
    b.create_collection("docs", CollectionSchema((Resolution("emb", WIDTH),)))
    b.upsert("docs", Batch(list(range(N)), {"emb": clustered(seed)}, [{"i": i} for i in range(N)]))
    return b


def options(compressors: Path, **kw) -> MigrationOptions:
    return MigrationOptions(**{**dict(source="docs", dims=(12,), train_options={"epochs": 2}, verify_queries=20,
                                      min_recall=0.3, compressor_store=str(compressors)), **kw})


@pytest.mark.parametrize("engine", sorted(STORES))
def test_two_stores_migrating_docs_with_the_same_options_keep_their_own_compressor(tmp_path, engine):
    compressors = tmp_path / "smec_compressors"
    first, second = docs_store(engine, tmp_path / "a", seed=1), docs_store(engine, tmp_path / "b", seed=2)
    try:
        one = migrate(first, options(compressors))
        two = migrate(second, options(compressors))
        col = SmecCollection.open(first, "docs_smec")  # the compressor the first store records, from its folder
        assert col.compressor.manifest_hash == one["compressor"]["hash"]
        x = clustered(1)
        assert col.search(x[5], k=1)[0].id == 5
        again = migrate(first, options(compressors))  # the re-run re-syncs, with the recorded compressor
        assert again["already_complete"] and again["verification"]["passed"] and not again["compressor"]["trained_now"]
        assert migrate(first, options(compressors, check=True))["in_sync"]
        assert one["plan"] != two["plan"] and one["compressor"]["path"] != two["compressor"]["path"]
        assert one["target"]["store"] == f"{first.target} {(tmp_path / 'a' / STORES[engine]).resolve()}"
    finally:
        first.close()
        second.close()


def test_a_collection_keeps_its_compressor_until_migrated_to_an_extended_one_then_gc_may_delete_it(tmp_path):
    from smec_vdb.train.config import TrainConfig
    from smec_vdb.train.smrl import extend_smec

    compressors = tmp_path / "smec_compressors"
    b = docs_store("qdrant-edge", tmp_path, seed=3)
    try:
        first = migrate(b, options(compressors, swap_alias="live"))
        old_path = Path(first["compressor"]["path"])
        extended = extend_smec(load(old_path), clustered(3), 6, TrainConfig(epochs=2, device="cpu"))
        new_path = CompressorStore(compressors).put(extended)
        assert load(old_path).manifest_hash == first["compressor"]["hash"]  # the old one is untouched
        x = clustered(3)
        assert SmecCollection.open(b, "live").search(x[9], k=1)[0].id == 9

        second = migrate(b, options(compressors, dims=(6,), compressor=str(new_path), target="docs_v2",
                                    swap_alias="live"))
        live = SmecCollection.open(b, "live")
        assert live.compressor.manifest_hash == second["compressor"]["hash"] != first["compressor"]["hash"]
        assert live.search(x[9], k=1)[0].id == 9

        store = CompressorStore(compressors)
        with pytest.raises(CompressorInUseError, match="docs_smec .collection."):
            collect_garbage(store, [b], hashes=[old_path.name])
        b.drop("docs_smec")
        report = collect_garbage(store, [b], min_age_s=0)
        assert [e.hash for e in report.deleted] == [old_path.name] and new_path.is_dir() and not old_path.exists()
        assert SmecCollection.open(b, "live").search(x[9], k=1)[0].id == 9
    finally:
        b.close()


@pytest.mark.server
@pytest.mark.parametrize("uri_fixture", ["milvus_server_uri", "milvus_lite_server_uri"])
def test_gc_pointed_at_a_milvus_server_keeps_and_refuses_what_its_collections_record(request, uri_fixture, tmp_path):
    from smec_vdb.cli.app import _register_commands, app
    from smec_vdb.compress.smec import SMECCompressor
    from typer.testing import CliRunner

    uri = request.getfixturevalue(uri_fixture)
    store = CompressorStore(tmp_path / "store")
    used, unused = store.put(SMECCompressor(WIDTH, [12])), store.put(SMECCompressor(WIDTH, [12], use_ads=False))
    b = open_backend("milvus", url=uri)
    name = f"smectest_{uuid.uuid4().hex[:12]}"
    try:
        SmecCollection.create(b, name, load(used), keep_full=False)  # one vector field: the 2.3.5 server's limit
        where = f"{b.target} {b.location}"
        _register_commands()
        common = ["--compressor-store", str(store.root), "--collections-in", f"milvus:{uri}"]
        refused = CliRunner().invoke(app, ["compressors", "gc", used.name[:8], *common])
        assert isinstance(refused.exception, CompressorInUseError)
        assert f"{name} (collection) in {where}" in str(refused.exception) and used.is_dir()
        result = CliRunner().invoke(app, ["compressors", "gc", *common, "--min-age", "0"])
        assert result.exit_code == 0, result.output
        assert result.output.startswith("checked ") and f" in {where}" in result.output.splitlines()[0]
        assert f"deleted {unused.name}" in result.output and used.is_dir() and not unused.exists()
    finally:
        b.drop(name)
        b.close()
