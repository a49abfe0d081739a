"""What `migrate`, `inspect`, `calibrate` and `search` show about the saving and the search, end to end as a
user runs them (a subprocess per command, on qdrant-edge and Milvus Lite).

The migration reuses a prebuilt compressor (no training), so each run is a copy, a calibration and a
verification: its report and summary give the modelled RAM and disk bytes per point of the source (as
configured) and of the target with their ratio, and the calibrated candidates with recall@10 and p50 on
held-out queries; `inspect` shows the same; `calibrate` re-calibrates for another target and refuses
one it cannot reach, writing nothing; `search` then uses the calibrated count without importing torch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from smec_vdb.adapters import open_backend
from smec_vdb.backend import Batch, CollectionSchema, Resolution
from smec_vdb.collection import COMPRESSOR_KEY
from smec_vdb.compress.smec import SMECCompressor
from smec_vdb.layout import collection_footprint, configured_footprint

D, N = 32, 2500
TARGETS = {"qdrant-edge": lambda tmp: ["--backend", "qdrant-edge", "--path", str(tmp / "edge")],
           "milvus-lite": lambda tmp: ["--backend", "milvus", "--path", str(tmp / "m.db")]}


def corpus() -> np.ndarray:
    """Clustered unit vectors with a fast-decaying spectrum: SMEC d8 reaches recall 0.99 with few candidates."""
    rng = np.random.default_rng(5)
    basis, _ = np.linalg.qr(rng.normal(size=(D, D)))
    spectrum = np.geomspace(3.0, 0.02, D)
    x = (rng.normal(size=(60, D))[rng.integers(0, 60, N)] * spectrum + 0.6 * rng.normal(size=(N, D)) * spectrum) @ basis.T
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def smec(*args: str, expect: int = 0, env: dict | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "smec_vdb.cli.app", *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200", **(env or {})})
    assert proc.returncode == expect, f"exit {proc.returncode}\nstdout:{proc.stdout}\nstderr:{proc.stderr}"
    return proc


@pytest.fixture(scope="module", params=sorted(TARGETS))
def migrated(request, tmp_path_factory):
    """A source ``src`` migrated to ``src_smec`` (full, d16, d8) with a prebuilt SMEC compressor; (cli args, report).
    Module-scoped: the report test only reads; the next test re-calibrates."""
    tmp_path = tmp_path_factory.mktemp(request.param)
    args = TARGETS[request.param](tmp_path)
    x = corpus()
    b = open_backend(args[1], path=args[3])
    b.create_collection("src", CollectionSchema((Resolution("emb", D),)))
    b.upsert("src", Batch(ids=list(range(N)), vectors={"emb": x}, payloads=[{"i": i} for i in range(N)]))
    b.close()
    SMECCompressor.from_pca(torch.from_numpy(x), [16, 8]).eval().save(tmp_path / "comp")
    smec("migrate", "--collection", "src", "--dims", "16,8", "--compressor", str(tmp_path / "comp"),
         "--verify-queries", "100", "--report", str(tmp_path / "r.json"), *args, "--compressor-store", str(tmp_path / "store"))
    return args, json.loads((tmp_path / "r.json").read_text()), tmp_path


def test_migrate_reports_the_modelled_saving_and_the_calibrated_search(migrated):
    args, report, _ = migrated
    b = open_backend(args[1], path=args[3])
    try:
        source, target = b.schema("src"), b.schema("src_smec")
        record = b.get_metadata("src_smec", COMPRESSOR_KEY)
    finally:
        b.close()
    fp, before, after = report["footprint"], configured_footprint(source)[0], collection_footprint(target)
    assert fp["source"]["ram_bytes_per_point"] == round(before.ram, 1) and fp["target"]["ram_bytes_per_point"] == round(after.ram, 1)
    assert fp["ram_ratio"] == round(after.ram / before.ram, 4) < 1 and fp["disk_ratio"] == round(after.disk / before.disk, 4)
    search = report["search"]
    assert search["reached"] and record["search"]["candidates"] == search["candidates"] < search["rule"]
    held = search["held_out"]  # a sample: it scatters around the expected recall the margin bounds
    assert held["recall"] >= 0.99 - 3 * held["recall_se"] and held["p50_ms"] > 0, json.dumps(search)


def test_inspect_calibrate_and_search_use_the_record(migrated):
    args, report, tmp = migrated
    row = json.loads(smec("inspect", "--collection", "src_smec", "--json", *args).stdout)[0]
    assert row["search"]["candidates"] == report["search"]["candidates"]
    assert row["source_footprint"] == {k: v for k, v in report["footprint"]["source"].items()}
    shown = smec("inspect", *args).stdout
    assert f"{report['search']['candidates']} cand." in shown and "bytes/point" not in shown.replace("B/pt", "")

    # against its own full vectors, or against the source: the same truth
    own = json.loads(smec("calibrate", "-c", "src_smec", "--recall", "0.95", "--queries", "60", "--json", *args).stdout)
    redone = json.loads(smec("calibrate", "-c", "src_smec", "--source", "src", "--recall", "0.95", "--queries", "60", "--json", *args).stdout)
    assert own["candidates"] == redone["candidates"] <= report["search"]["candidates"]
    assert redone["held_out"]["recall"] >= 0.95 - 3 * redone["held_out"]["recall_se"] and "over src.emb" in redone["reference"]
    refused = smec("calibrate", "-c", "src_smec", "--source", "src", "-k", "240", "--queries", "20", *args, expect=1)  # 10% of N: 249
    assert refused.stderr.count("\n") == 1 and "at 249 coarse candidates" in refused.stderr and "below the target 0.99" in refused.stderr
    row = json.loads(smec("inspect", "--collection", "src_smec", "--json", *args).stdout)[0]
    assert row["search"]["candidates"] == redone["candidates"]  # the refused run wrote nothing

    np.save(tmp / "q.npy", corpus()[5])
    probe = ("import sys, runpy; sys.argv = ['smec-vdb', *sys.argv[1:]]; "
             "from smec_vdb.cli.app import main\ntry:\n    main()\nfinally:\n    print('torch' in sys.modules, file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", probe, "search", "-c", "src_smec", "-q", str(tmp / "q.npy"), "-k", "3",
                           "--json", *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)[0]["id"] == 5 and proc.stderr.strip().splitlines()[-1] == "False"


def test_a_target_calibration_cannot_reach_keeps_the_rule_and_says_why(migrated):
    args, _, tmp = migrated
    SMECCompressor.from_pca(torch.from_numpy(corpus()), [2]).eval().save(tmp / "comp2")
    proc = smec("migrate", "--collection", "src", "--target", "src_d2", "--dim", "2", "--compressor", str(tmp / "comp2"),
                "--verify-queries", "60", "--min-recall", "0", "--report", str(tmp / "r2.json"), *args,
                "--compressor-store", str(tmp / "store"))
    search = json.loads((tmp / "r2.json").read_text())["search"]
    assert not search["reached"] and "below the target 0.99" in search["reason"]
    assert f"{search['default']} candidates (the rule:" in " ".join(proc.stdout.split())
    b = open_backend(args[1], path=args[3])
    try:
        assert "search" not in b.get_metadata("src_d2", COMPRESSOR_KEY)
    finally:
        b.close()
