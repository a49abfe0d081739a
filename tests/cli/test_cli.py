"""The command line end to end: every command run as a user would (subprocess) or through Typer's CliRunner."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from smec_vdb.cli.app import _register_commands, app
from smec_vdb.eval.beir import shared_data_dir
from tests.cli.shell import one_line_error, smec

COMMANDS = ("train", "eval", "demo", "migrate", "search", "inspect", "calibrate")
SHARED = shared_data_dir()


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    _register_commands()
    return CliRunner()


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(runner, command):
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Example: smec-vdb " + command in result.output.replace("\n", " ")


@pytest.mark.parametrize("command, shown", [
    ("search", "[default: the collection's calibrated count (smec-vdb calibrate), else k × clamp(2048 / coarse dim, "
               "4, 64), twice that for coarse codes of ≤ 2 bits"),
    ("search", "[default: the one the collection records]"),
    ("migrate", "[default: <collection>_smec]"),
])
def test_help_keeps_bracketed_defaults(runner, command, shown):
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert shown in " ".join(result.output.split())


def test_inspect_of_a_mistyped_path_fails_and_creates_nothing(tmp_path):
    typo = tmp_path / "typo"
    line = one_line_error(smec("inspect", "--path", f"{typo}/"))
    assert "no qdrant-edge store" in line and not typo.exists()
    line = one_line_error(smec("search", "-c", "docs", "-q", "[1, 2]", "--path", str(typo)))
    assert not typo.exists()


@pytest.mark.parametrize("text", ["[1,2]", "null", "false", "{}", "1", '{"k": []}', '{"k": {"$gt": "a"}}', "{not json"])
def test_a_bad_filter_is_a_one_line_error_before_the_store_is_opened(tmp_path, text):
    line = one_line_error(smec("search", "-c", "docs", "-q", "[1, 2]", "--filter", text, "--path", str(tmp_path / "none")))
    assert "filter" in line and "internal error" not in line


def test_logging_still_reaches_stderr_one_line_each(tmp_path):
    (tmp_path / "store").mkdir()
    code = ("import logging, sys; sys.argv = ['smec-vdb', 'inspect', '--path', sys.argv[1]]\n"
            "from smec_vdb.cli import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "logging.getLogger('smec_vdb.test').warning('disk nearly full\\nsecond line')")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "store")], capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip().splitlines() == ["warning: smec_vdb.test: disk nearly full"]


def test_unknown_backend_is_a_one_line_error(tmp_path):
    line = one_line_error(smec("inspect", "--backend", "nope", "--path", str(tmp_path)))
    assert "known backends: qdrant-edge, qdrant, milvus" in line


def test_demo_migrate_search_inspect_end_to_end(tmp_path):
    """The README's main job on a small demo, then the commands it suggests."""
    store = str(tmp_path / "store")
    demo = smec("demo", "--limit", "60", "--path", store)
    assert demo.returncode == 0, demo.stderr
    assert demo.stdout.startswith("created 'docs': 60 points, 384-d") and "created" not in demo.stderr
    assert "pass --replace" in one_line_error(smec("demo", "--limit", "60", "--path", store))
    migrated = smec("migrate", "--collection", "docs", "--dim", "64", "--epochs", "2", "--min-recall", "0",
                    "--swap-alias", "docs_live",
                    "--verify-queries", "20", "--path", store, "--compressor-store", str(tmp_path / "models"),
                    "--report", str(tmp_path / "report.json"))
    assert migrated.returncode == 0, migrated.stderr
    # the result on stdout, progress on stderr (a line per phase when stderr is not a terminal)
    assert "verification passed" in migrated.stdout and "docs_live → docs_smec" in migrated.stdout
    assert migrated.stderr.splitlines() == ["survey…", "train…", "copy…", "verify…", "recall…", "calibrate…"]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["target"]["collection"] == "docs_smec" and report["points_written"] == 60
    assert report["alias"] == {"name": "docs_live", "collection": "docs_smec"}

    # bad dims are reported as such, not as a clash with the target this run would not match
    assert "dim must be a positive number of dimensions, found 0" in one_line_error(
        smec("migrate", "--collection", "docs", "--dim", "0", "--path", store))
    assert "dim must be below the source width 384, found 384" in one_line_error(
        smec("migrate", "--collection", "docs", "--dim", "384", "--path", store))

    inspected = smec("inspect", "--json", "--path", store)
    assert inspected.returncode == 0, inspected.stderr
    rows = {r["collection"]: r for r in json.loads(inspected.stdout)}
    assert rows["docs"]["points"] == 60 and rows["docs_smec"]["vectors"] == {"full": 384, "d64": 64}
    assert rows["docs_smec"]["compressor"]["method"] == "smec" and not rows["docs_smec"]["migration_in_progress"]
    assert rows["docs_smec"]["aliases"] == ["docs_live"] and rows["docs"]["aliases"] == []
    verification = rows["docs_smec"]["verification"]
    assert verification["passed"] and verification["recall_at_10"] == report["verification"]["recall_at_10"]
    assert rows["docs"]["verification"] is None
    table = smec("inspect", "--path", store)
    assert table.returncode == 0 and table.stderr == ""
    row = next(line for line in table.stdout.splitlines() if "docs_smec" in line)  # piped: one line, not cut
    assert "docs_live" in row and f"passed, recall@10 {verification['recall_at_10']}" in row and len(row) > 80, row

    from smec_vdb.adapters import open_backend

    backend = open_backend("qdrant-edge", path=store)
    point = backend.scroll("docs", limit=1)[0][0]
    backend.close()
    np.save(tmp_path / "q.npy", point.vectors[next(iter(point.vectors))][None, :])
    hits = smec("search", "--collection", "docs_smec", "--query", str(tmp_path / "q.npy"), "-k", "5", "--json",
                "--path", store)
    assert hits.returncode == 0, hits.stderr
    found = json.loads(hits.stdout)
    assert len(found) == 5 and found[0]["id"] == point.id and hits.stderr == ""
    kind = point.payload["kind"]
    filtered = smec("search", "-c", "docs_smec", "-q", "-", "-k", "3", "--json", "--filter", json.dumps({"kind": kind}),
                    "--path", store, stdin=json.dumps(point.vectors[next(iter(point.vectors))].tolist()))
    assert filtered.returncode == 0, filtered.stderr
    assert all(h["payload"]["kind"] == kind for h in json.loads(filtered.stdout))
    readme = smec("search", "-c", "docs_smec", "-q", str(tmp_path / "q.npy"), "--json", "--path", store,
                  "--filter", '{"kind": ["class", "function"]}')  # the README's example
    assert readme.returncode == 0, readme.stderr
    assert all(h["payload"]["kind"] in ("class", "function") for h in json.loads(readme.stdout))
    one = smec("inspect", "--collection", "docs_smec", "--json", "--path", store)  # inspect --help's example
    assert [r["collection"] for r in json.loads(one.stdout)] == ["docs_smec"]
    shown = smec("search", "-c", "docs_smec", "-q", str(tmp_path / "q.npy"), "-k", "3", "--path", store)
    assert shown.returncode == 0 and "docs_smec: top 3" in shown.stdout


@pytest.mark.shared_data
def test_eval_on_a_beir_set(tmp_path):
    if not (SHARED / "beir" / "scifact").exists():
        pytest.skip(f"needs {SHARED}/beir/scifact")
    proc = smec("eval", "--dataset", "scifact", "--methods", "truncate", "--dims", "64", "--rerank-candidates", "0",
                "--data-dir", str(SHARED), "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "eval.json").exists() and "truncate" in (tmp_path / "eval.md").read_text()


def test_the_candidates_help_states_the_rule_the_code_uses(runner):
    """The help once said max(100, 10k), a rule the code had dropped: read the rule from the help and
    check it against smec_vdb.search.default_candidates (floats and 1-bit codes, several widths)."""
    import math
    import re

    from smec_vdb.layout import parse_quantization
    from smec_vdb.search import default_candidates

    text = " ".join(runner.invoke(app, ["search", "--help"], env={"COLUMNS": "200"}).output.split())
    budget, low, high = map(int, re.search(r"k × clamp\((\d+) / coarse dim, (\d+), (\d+)\), twice that", text).groups())
    binary = parse_quantization("binary1")
    for k in (1, 10, 25):
        for coarse in (16, 64, 128, 384, 1024):
            stated = k * min(high, max(low, math.ceil(budget / coarse)))
            assert default_candidates(k, 4096, coarse) == stated
            assert default_candidates(k, 4096, coarse, binary) == 2 * stated
        assert default_candidates(k, 384, 384) == k


def test_train_prints_its_result_on_stdout_and_its_progress_on_stderr(tmp_path, vectors):
    np.save(tmp_path / "x.npy", vectors)
    proc = smec("train", "--vectors", "x.npy", "--dims", "12,6", "--out", "m", "--epochs", "2", "--device", "cpu",
                cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == ["training smec 24 → (12, 6) on 400 vectors (unsupervised, device cpu)",
                                        "stage 1 → 12d…", "stage 2 → 6d…"]
    assert "epochs used" in proc.stdout and proc.stdout.strip().splitlines()[-1].startswith("saved to m (id ")


def test_a_failed_command_leaves_no_store_behind(tmp_path):
    """A --path that does not exist is an error for the source (nothing created); a new target store,
    parents and all, is removed again when the run fails before anything is written to it."""
    from smec_vdb.adapters import open_backend
    from smec_vdb.backend import Batch, CollectionSchema, Resolution

    assert "no qdrant-edge store" in one_line_error(smec("migrate", "-c", "docs", "--dim", "8", "--path", "new/store",
                                                         cwd=tmp_path))
    assert list(tmp_path.iterdir()) == []
    source = open_backend("qdrant-edge", path=str(tmp_path / "store"))
    source.create_collection("docs", CollectionSchema((Resolution("emb", 16),)))
    source.upsert("docs", Batch(ids=[1, 2, 3], vectors={"emb": np.eye(3, 16, dtype=np.float32)}))
    source.close()
    line = one_line_error(smec("migrate", "-c", "docs", "--dim", "16", "--path", "store", "--target-backend", "qdrant",
                               "--target-path", "new/target", cwd=tmp_path))
    assert "dim must be below the source width 16" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]


@pytest.mark.parametrize("args", [
    ["train", "--vectors", "absent.npy", "--dims", "8", "--out", "afile/model"],
    ["eval", "--dataset", "scifact", "--methods", "truncate", "--dims", "16", "--out", "afile"],
    ["migrate", "--collection", "docs", "--dim", "8", "--compressor-store", "afile", "--path", "absent"],
], ids=["train", "eval", "migrate"])
def test_an_output_folder_blocked_by_a_file_is_refused_before_any_work(tmp_path, args):
    (tmp_path / "afile").write_text("")
    line = one_line_error(smec(*args, cwd=tmp_path))
    assert "afile is a file, not a directory" in line and sorted(p.name for p in tmp_path.iterdir()) == ["afile"]
