"""`train --out`, `extend --out` and `compressors list|gc` (issue 22, finding 3): a saved compressor is never
overwritten, so a collection keeps working with the compressor it records; gc deletes only what no
collection records."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from typer.testing import CliRunner

import smec_vdb
from smec_vdb.adapters import open_backend
from smec_vdb.cli.app import _register_commands, app
from smec_vdb.collection import SmecCollection
from smec_vdb.compress.store import CompressorStore
from smec_vdb.errors import ArtifactError, CompressorInUseError

_register_commands()


@pytest.fixture
def in_use(tmp_path, vectors):
    """A compressor saved in models/a and the collection docs (qdrant-edge) that records it."""
    from smec_vdb.train import train
    from smec_vdb.train.config import TrainConfig

    comp = train(vectors, [12, 6], method="smec", config=TrainConfig(epochs=1, device="cpu"))
    comp.save(tmp_path / "models" / "a")
    np.save(tmp_path / "x.npy", vectors)
    b = open_backend("qdrant-edge", path=str(tmp_path / "edge"))
    col = SmecCollection.create(b, "docs", smec_vdb.load(tmp_path / "models" / "a"), dims=[6])
    col.upsert(list(range(len(vectors))), vectors)
    b.close()
    return comp.manifest_hash


def still_searchable(tmp_path, vectors, comp_hash: str) -> None:
    """docs opens with the compressor it records (loaded from its folder) and finds a point's own vector."""
    b = open_backend("qdrant-edge", path=str(tmp_path / "edge"))
    try:
        col = SmecCollection.open(b, "docs")
        assert col.compressor.manifest_hash == comp_hash
        assert col.search(vectors[7], k=1)[0].id == 7
    finally:
        b.close()


def test_train_out_over_an_existing_compressor_is_refused_before_training(tmp_path, vectors, in_use):
    started = time.perf_counter()
    result = CliRunner().invoke(app, ["train", "--vectors", str(tmp_path / "x.npy"), "--dims", "12,6",
                                      "--out", str(tmp_path / "models" / "a"), "--epochs", "1", "--device", "cpu"])
    assert isinstance(result.exception, ArtifactError) and f"holds compressor {in_use}" in str(result.exception)
    assert "training" not in result.output and time.perf_counter() - started < 5
    still_searchable(tmp_path, vectors, in_use)


def test_extend_needs_a_new_out_and_leaves_the_recorded_compressor_working(tmp_path, vectors, in_use):
    base = ["extend", "--compressor", str(tmp_path / "models" / "a"), "--vectors", str(tmp_path / "x.npy"),
            "--dim", "3", "--epochs", "1", "--device", "cpu"]
    result = CliRunner().invoke(app, base)  # in place, as before: now a usage error
    assert result.exit_code == 2 and "Missing option '--out'" in result.output
    result = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "models" / "a")])
    assert isinstance(result.exception, ArtifactError)
    result = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "models" / "b")])
    assert result.exit_code == 0, result.output
    extended = smec_vdb.load(tmp_path / "models" / "b")
    assert extended.dims == (12, 6, 3) and extended.manifest_hash != in_use
    still_searchable(tmp_path, vectors, in_use)


KILLED_EXTEND = r"""
import os, signal, sys
real_fsync = os.fsync
def fsync(fd):
    if "manifest.json" in os.path.basename(os.readlink(f"/proc/self/fd/{fd}")):
        os.kill(os.getpid(), signal.SIGKILL)  # between the weights write and the manifest write
    real_fsync(fd)
os.fsync = fsync
from smec_vdb.cli.app import main
sys.argv = ["smec-vdb", "extend", *sys.argv[1:]]
main()
"""


@pytest.mark.parametrize("out", [None, "b"])
def test_extend_killed_between_weights_and_manifest_loses_neither(tmp_path, vectors, in_use, out):
    args = ["--compressor", str(tmp_path / "models" / "a"), "--vectors", str(tmp_path / "x.npy"), "--dim", "3",
            "--epochs", "1", "--device", "cpu", *(["--out", str(tmp_path / "models" / out)] if out else [])]
    proc = subprocess.run([sys.executable, "-c", KILLED_EXTEND, *args], capture_output=True, text=True)
    assert proc.returncode in (2, -signal.SIGKILL), proc.stderr[-500:]
    assert smec_vdb.load(tmp_path / "models" / "a").manifest_hash == in_use
    assert not (tmp_path / "models" / "b").exists(), "a half-written compressor was left under its name"
    still_searchable(tmp_path, vectors, in_use)


def test_compressors_gc_keeps_the_recorded_one_says_what_it_checked_and_refuses_to_delete_it(tmp_path, vectors, in_use):
    store = CompressorStore(tmp_path / "store")
    used = store.put(smec_vdb.load(tmp_path / "models" / "a"))
    b = open_backend("qdrant-edge", path=str(tmp_path / "edge"))
    SmecCollection.create(b, "docs2", smec_vdb.load(used), dims=[6])
    location = b.location
    b.close()
    from smec_vdb.train import train
    from smec_vdb.train.config import TrainConfig

    unused = store.put(train(vectors, [12, 6], method="pca", config=TrainConfig(device="cpu")))
    common = ["--compressor-store", str(store.root), "--collections-in", f"qdrant-edge:{tmp_path / 'edge'}"]

    result = CliRunner().invoke(app, ["compressors", "gc", used.name, *common])
    # docs records the same compressor at models/a: kept by hash, whatever folder a collection names
    refs = f"docs (collection) in qdrant-edge {location}, docs2 (collection) in qdrant-edge {location}"
    assert isinstance(result.exception, CompressorInUseError)
    assert str(result.exception) == f"compressor {used.name} is recorded by {refs}: nothing was deleted"
    assert used.is_dir() and unused.is_dir()

    result = CliRunner().invoke(app, ["compressors", "gc", *common, "--min-age", "0"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"checked 2 collection(s) in qdrant-edge {location}"
    assert f"kept {used.name}: recorded by {refs}" in lines
    assert any(line.startswith(f"deleted {unused.name} (pca") for line in lines)
    assert used.is_dir() and not unused.exists()

    result = CliRunner().invoke(app, ["compressors", "list", *common, "--json"])
    rows = json.loads(result.output)
    assert [(r["hash"], ", ".join(r["recorded_by"])) for r in rows] == [(used.name, refs)]


def test_compressors_gc_without_stores_to_check_deletes_nothing(tmp_path):
    CompressorStore(tmp_path / "store").put(smec_vdb.compress.smec.SMECCompressor(16, [8, 4]))
    result = CliRunner().invoke(app, ["compressors", "gc", "--compressor-store", str(tmp_path / "store"), "--min-age", "0"])
    assert "needs --collections-in" in str(result.exception)
    assert len(CompressorStore(tmp_path / "store").entries()) == 1
