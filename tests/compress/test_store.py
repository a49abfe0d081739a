"""The compressor store (issue 22, findings 2, 3, 7): content-addressed folders, written by rename, never
modified in place, readable as the umask says; garbage collection only of what no collection records."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import smec_vdb
from smec_vdb.adapters import open_backend
from smec_vdb.collection import SmecCollection
from smec_vdb.compress.artifact import MANIFEST, WEIGHTS, stored_hash
from smec_vdb.compress.smec import SMECCompressor
from smec_vdb.compress.store import CompressorStore, collect_garbage
from smec_vdb.errors import ArtifactError, CompressorInUseError, CompressorMismatchError, ConfigError
from smec_vdb.migrate.options import CHECKPOINT_KEY

HOUR = 3600.0


def compressor(use_ads: bool = True, seed: int = 0) -> SMECCompressor:
    """A small untrained compressor; ``seed`` changes its weights (and so its hash)."""
    import torch

    comp = SMECCompressor(16, [8, 4], use_ads=use_ads)
    with torch.no_grad():
        comp.stages[0].weight.add_(seed)
    return comp


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


# -- content addressing -------------------------------------------------------------------------
def test_put_names_the_folder_by_hash_and_a_second_put_reuses_it(tmp_path):
    store = CompressorStore(tmp_path / "store")
    a, b = compressor(seed=0), compressor(seed=1)
    path_a = store.put(a)
    assert path_a == (tmp_path / "store" / a.manifest_hash).resolve() and stored_hash(path_a) == a.manifest_hash
    written = (path_a / WEIGHTS).stat().st_mtime_ns
    assert store.put(compressor(seed=0)) == path_a and (path_a / WEIGHTS).stat().st_mtime_ns == written
    path_b = store.put(b)
    assert path_b != path_a and smec_vdb.load(path_a).manifest_hash == a.manifest_hash
    assert [e.hash for e in store.entries()] == sorted([a.manifest_hash, b.manifest_hash],
                                                        key=lambda h: (store.path_of(h).stat().st_mtime, h))


def test_saving_over_a_folder_holding_another_compressor_is_refused_and_keeps_it(tmp_path):
    old, new = compressor(seed=0), compressor(seed=1)
    old.save(tmp_path / "m")
    with pytest.raises(ArtifactError, match=f"holds compressor {old.manifest_hash}.*never overwritten"):
        new.save(tmp_path / "m")
    assert smec_vdb.load(tmp_path / "m").manifest_hash == old.manifest_hash
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(ArtifactError, match="is not an empty folder"):
        new.save(tmp_path / "other")
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"


def test_saving_into_an_empty_folder_or_again_to_the_same_one_works(tmp_path):
    comp = compressor()
    (tmp_path / "m").mkdir()
    comp.save(tmp_path / "m")
    written = (tmp_path / "m" / MANIFEST).stat().st_mtime_ns
    comp.save(tmp_path / "m")  # the same compressor: nothing to write
    assert (tmp_path / "m" / MANIFEST).stat().st_mtime_ns == written and comp.path == (tmp_path / "m").resolve()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temporary folder left


@pytest.mark.parametrize("umask, file_mode, dir_mode", [(0o022, 0o644, 0o755), (0o027, 0o640, 0o750)])
def test_files_and_folders_are_as_readable_as_the_umask_says(tmp_path, umask, file_mode, dir_mode):
    from smec_vdb.atomic import atomic_write

    previous = os.umask(umask)
    try:
        path = CompressorStore(tmp_path / "store").put(compressor())
        atomic_write(tmp_path / "sidecar.json", b"{}")  # the qdrant-edge sidecars' writer
    finally:
        os.umask(previous)
    assert {oct(p.stat().st_mode & 0o777) for p in (path / MANIFEST, path / WEIGHTS, tmp_path / "sidecar.json")} == {
        oct(file_mode)}
    assert oct(path.stat().st_mode & 0o777) == oct(dir_mode)


KILL_AT_MANIFEST = r"""
import os, signal, sys
real_fsync = os.fsync
def fsync(fd):
    if "manifest.json" in os.path.basename(os.readlink(f"/proc/self/fd/{fd}")):
        os.kill(os.getpid(), signal.SIGKILL)  # the weights are written, the manifest not yet durable
    real_fsync(fd)
os.fsync = fsync
import torch
from smec_vdb.compress.smec import SMECCompressor
comp = SMECCompressor(16, [8, 4])
with torch.no_grad():
    comp.stages[0].weight.add_(1)
comp.save(sys.argv[1])
"""


def test_a_kill_between_weights_and_manifest_loses_neither_old_nor_new(tmp_path):
    old = compressor(seed=0)
    old.save(tmp_path / "old")
    store = CompressorStore(tmp_path / "store")
    kept = store.put(old)
    new_hash = compressor(seed=1).manifest_hash
    for destination in (tmp_path / "new", store.path_of(new_hash), tmp_path / "old"):
        proc = subprocess.run([sys.executable, "-c", KILL_AT_MANIFEST, str(destination)], capture_output=True, text=True)
        if destination.name == "old":  # saving over the old compressor is refused before anything is written
            assert proc.returncode == 1 and "never overwritten" in proc.stderr, proc.stderr[-500:]
        else:
            assert proc.returncode == -signal.SIGKILL, proc.stderr[-500:]
            assert not destination.exists(), "a half-written compressor folder was left under its name"
    for folder in (tmp_path / "old", kept):
        assert smec_vdb.load(folder).manifest_hash == old.manifest_hash
    assert [p.name.split(".tmp-")[0] for p in store.leftovers()] == [f".{new_hash}"]
    assert store.put(compressor(seed=1)) == store.path_of(new_hash).resolve()  # the retry writes the new one
    assert smec_vdb.load(store.path_of(new_hash)).manifest_hash == new_hash


# -- what a collection records ------------------------------------------------------------------
@pytest.fixture
def edge(tmp_path):
    backend = open_backend("qdrant-edge", path=str(tmp_path / "edge"))
    yield backend
    backend.close()


def test_a_loaded_compressor_is_recorded_with_its_folder_and_reopened_from_it(tmp_path, edge):
    compressor().save(tmp_path / "m")
    comp = smec_vdb.load(tmp_path / "m")
    SmecCollection.create(edge, "docs", comp, dims=[4])
    assert edge.get_metadata("docs", "compressor")["path"] == str((tmp_path / "m").resolve())
    assert SmecCollection.open(edge, "docs").compressor.manifest_hash == comp.manifest_hash


def test_a_folder_that_no_longer_holds_the_compressor_is_not_recorded_or_is_refused(tmp_path, edge):
    compressor(seed=0).save(tmp_path / "m")
    comp = smec_vdb.load(tmp_path / "m")
    comp.extend(2)  # changed in memory: the folder holds what it was
    SmecCollection.create(edge, "docs", comp, dims=[4])
    assert edge.get_metadata("docs", "compressor")["path"] is None
    compressor(seed=1).save(tmp_path / "other")
    with pytest.raises(CompressorMismatchError, match="holds compressor"):
        SmecCollection.create(edge, "docs2", comp, dims=[4], compressor_path=tmp_path / "other")
    assert not edge.exists("docs2")


# -- garbage collection -------------------------------------------------------------------------
def stocked(tmp_path: Path, edge) -> tuple[CompressorStore, dict[str, str]]:
    """A store holding: ``used`` (recorded by collection docs), ``resuming`` (in a migration's checkpoint),
    ``unused`` and ``fresh`` (recorded by nothing; fresh written just now), plus an old leftover."""
    store = CompressorStore(tmp_path / "store")
    names = {}
    for seed, name in enumerate(("used", "resuming", "unused", "fresh")):
        comp = compressor(seed=seed)
        path = store.put(comp)
        names[name] = comp.manifest_hash
        if name != "fresh":
            age(path, 2 * HOUR)
        if name == "used":
            SmecCollection.create(edge, "docs", smec_vdb.load(path), dims=[4])
        if name == "resuming":
            SmecCollection.create(edge, "half", smec_vdb.load(path), dims=[4])
            edge.set_metadata("half", "compressor", None)
            edge.set_metadata("half", CHECKPOINT_KEY, {"compressor_hash": comp.manifest_hash, "compressor_path": str(path)})
    leftover = store.root / f".{names['unused']}.tmp-0123ab"
    leftover.mkdir()
    age(leftover, 2 * HOUR)
    return store, names


def test_gc_deletes_only_what_no_collection_records_and_is_old_enough(tmp_path, edge):
    store, names = stocked(tmp_path, edge)
    dry = collect_garbage(store, [edge], dry_run=True)
    assert [e.hash for e in dry.deleted] == [names["unused"]] and store.path_of(names["unused"]).is_dir()
    report = collect_garbage(store, [edge])
    assert report.checked == {f"qdrant-edge {edge.location}": 2}
    assert [e.hash for e in report.deleted] == [names["unused"]] and not store.path_of(names["unused"]).exists()
    assert {h: [str(r) for r in refs] for h, refs in report.kept.items()} == {
        names["used"]: [f"docs (collection) in qdrant-edge {edge.location}"],
        names["resuming"]: [f"half (checkpoint) in qdrant-edge {edge.location}"]}
    assert [e.hash for e in report.too_young] == [names["fresh"]] and not store.leftovers()
    for name in ("used", "resuming", "fresh"):
        assert smec_vdb.load(store.path_of(names[name])).manifest_hash == names[name]


def test_gc_refuses_a_named_compressor_a_collection_records_and_deletes_nothing(tmp_path, edge):
    store, names = stocked(tmp_path, edge)
    with pytest.raises(CompressorInUseError, match=f"compressor {names['used']} is recorded by docs .collection. in "
                                                   f"qdrant-edge .*nothing was deleted"):
        collect_garbage(store, [edge], hashes=[names["unused"][:6], names["used"]])
    assert {e.hash for e in store.entries()} == set(names.values())
    assert [e.hash for e in collect_garbage(store, [edge], hashes=[names["fresh"][:6]]).deleted] == [names["fresh"]]


def test_gc_needs_the_stores_it_checks_and_unique_prefixes(tmp_path, edge):
    store, names = stocked(tmp_path, edge)
    with pytest.raises(ConfigError, match="needs the engine stores"):
        collect_garbage(store, [])
    with pytest.raises(ConfigError, match="no stored compressor match"):
        collect_garbage(store, [edge], hashes=["abc"])
    assert {e.hash for e in store.entries()} == set(names.values())
