import json

import numpy as np
import pytest
from typer.testing import CliRunner

import smec_vdb
from smec_vdb.cli.app import _register_commands, app

_register_commands()
FAST = ["--epochs", "2", "--batch-size", "64", "--memory-size", "100", "--seed", "1", "--device", "cpu"]


def run(args):
    return CliRunner().invoke(app, ["train", *args])


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_train_end_to_end(vectors, tmp_path, dtype):
    np.save(tmp_path / "x.npy", vectors.astype(dtype))
    result = run(["--vectors", str(tmp_path / "x.npy"), "--dims", "12,6", "--out", str(tmp_path / "m"), *FAST])
    assert result.exit_code == 0, result.output
    assert "epochs used" in result.output
    comp = smec_vdb.load(tmp_path / "m")
    assert comp.dims == (12, 6)
    assert comp.encode(vectors, 6).shape == (len(vectors), 6)


def test_train_supervised_from_files(vectors, tmp_path):
    np.save(tmp_path / "x.npy", vectors)
    np.save(tmp_path / "q.npy", vectors[:20] + 0.01)
    (tmp_path / "q.json").write_text(json.dumps([f"q{i}" for i in range(20)]))
    (tmp_path / "d.json").write_text(json.dumps([f"d{i}" for i in range(len(vectors))]))
    (tmp_path / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(f"q{i}\td{i}\t1\n" for i in range(20)))
    result = run(["--vectors", str(tmp_path / "x.npy"), "--dims", "6", "--out", str(tmp_path / "m"),
                  "--queries", str(tmp_path / "q.npy"), "--query-ids", str(tmp_path / "q.json"),
                  "--doc-ids", str(tmp_path / "d.json"), "--qrels", str(tmp_path / "qrels.tsv"), *FAST])
    assert result.exit_code == 0, result.output
    assert "supervised on 20 queries" in result.output
    assert smec_vdb.load(tmp_path / "m").training_info["supervised"] is True


def test_cli_errors(vectors, tmp_path):
    from smec_vdb.errors import ConfigError, DataError, DimensionError, InvalidVectorError

    out = str(tmp_path / "m")
    np.save(tmp_path / "x.npy", vectors)
    np.save(tmp_path / "flat.npy", vectors[0])
    nan = vectors.copy()
    nan[3, 2] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    cases = [
        (["--vectors", str(tmp_path / "absent.npy"), "--dims", "6"], DataError),
        (["--vectors", str(tmp_path / "flat.npy"), "--dims", "6"], DimensionError),
        (["--vectors", str(tmp_path / "nan.npy"), "--dims", "6"], InvalidVectorError),
        (["--vectors", str(tmp_path / "x.npy"), "--dims", "6,12"], ConfigError),
        (["--vectors", str(tmp_path / "x.npy"), "--dims", "6", "--method", "nope"], ConfigError),
        (["--vectors", str(tmp_path / "x.npy"), "--dims", "6", "--qrels", str(tmp_path / "q.tsv")], ConfigError),
    ]
    for args, error in cases:
        result = run([*args, "--out", out])
        assert isinstance(result.exception, error), (args, result.output)
    (tmp_path / "d.json").write_text(json.dumps(["a", "b"]))
    np.save(tmp_path / "q.npy", vectors[:2])
    (tmp_path / "q.json").write_text(json.dumps(["q0", "q1"]))
    (tmp_path / "q.tsv").write_text("query-id\tcorpus-id\tscore\nq0\ta\t1\n")
    result = run(["--vectors", str(tmp_path / "x.npy"), "--dims", "6", "--out", out, "--queries", str(tmp_path / "q.npy"),
                  "--query-ids", str(tmp_path / "q.json"), "--doc-ids", str(tmp_path / "d.json"), "--qrels", str(tmp_path / "q.tsv")])
    assert isinstance(result.exception, DataError) and "2 ids" in str(result.exception)


def test_console_script_prints_one_line_errors(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "smec_vdb.cli.app", "train", "--vectors", str(tmp_path / "no.npy"),
                           "--dims", "6", "--out", str(tmp_path / "m")], capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("error:") and "does not exist" in proc.stderr


@pytest.mark.parametrize("method", ["pca", "truncate", "matryoshka-adaptor"])
def test_summary_table_has_a_row_per_dim_for_every_method(vectors, tmp_path, method):
    """Bug (issue 15): `train --method pca|mrl` printed an empty summary table."""
    np.save(tmp_path / "x.npy", vectors)
    result = run(["--vectors", str(tmp_path / "x.npy"), "--dims", "12,6", "--out", str(tmp_path / "m"),
                  "--method", method, *FAST])
    assert result.exit_code == 0, result.output
    stages = smec_vdb.load(tmp_path / "m").training_info["stages"]
    assert len(stages) >= 1 and all(s["criterion"] == "recall@10" for s in stages)
    table_rows = [line for line in result.output.splitlines() if "recall@10" in line and "│" in line]
    assert len(table_rows) == len(stages), result.output
