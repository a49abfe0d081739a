"""The command line end to end: every command run as a user would (subprocess) or through Typer's CliRunner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from smec_vdb.cli.app import _register_commands, app
from smec_vdb.eval.beir import shared_data_dir

COMMANDS = ("train", "eval", "demo", "migrate", "search", "inspect", "calibrate")
SHARED = shared_data_dir()


def smec(*args: str, cwd: Path | None = None, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-c", "from smec_vdb.cli import main; main()", *args], cwd=cwd, env=env,
                          input=stdin, capture_output=True, text=True, timeout=600, check=False)


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


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
    ("search", "[default: the collection's calibrated count (smec-vdb calibrate), else k x clamp(2048 / coarse dim, 4, 64)]"),
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
            "from smec_vdb.cli import main; main()\n"
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
    assert "created 'docs': 60 points, 384-d" in demo.stderr
    assert "pass --replace" in one_line_error(smec("demo", "--limit", "60", "--path", store))
    migrated = smec("migrate", "--collection", "docs", "--dim", "64", "--epochs", "2", "--min-recall", "0",
                    "--swap-alias", "docs_live",
                    "--verify-queries", "20", "--path", store, "--compressor-store", str(tmp_path / "models"),
                    "--report", str(tmp_path / "report.json"))
    assert migrated.returncode == 0, migrated.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["target"]["collection"] == "docs_smec" and report["points_written"] == 60
    assert report["alias"] == {"name": "docs_live", "collection": "docs_smec"}

    inspected = smec("inspect", "--json", "--path", store)
    assert inspected.returncode == 0, inspected.stderr
    rows = {r["collection"]: r for r in json.loads(inspected.stdout)}
    assert rows["docs"]["points"] == 60 and rows["docs_smec"]["vectors"] == {"full": 384, "d64": 64}
    assert rows["docs_smec"]["compressor"]["method"] == "smec" and not rows["docs_smec"]["migration_in_progress"]
    table = smec("inspect", "--path", store)
    assert table.returncode == 0 and "docs_smec" in table.stdout

    from smec_vdb.adapters import open_backend

    backend = open_backend("qdrant-edge", path=store)
    point = backend.scroll("docs", limit=1)[0][0]
    backend.close()
    np.save(tmp_path / "q.npy", point.vectors[next(iter(point.vectors))][None, :])
    hits = smec("search", "--collection", "docs_smec", "--query", str(tmp_path / "q.npy"), "-k", "5", "--json",
                "--path", store)
    assert hits.returncode == 0, hits.stderr
    found = json.loads(hits.stdout)
    assert len(found) == 5 and found[0]["id"] == point.id
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
