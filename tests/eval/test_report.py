"""Markdown table, JSON and PNG outputs of a comparison."""

import json

import pytest

from smec_vdb.errors import ConfigError
from smec_vdb.eval.report import ResultRow, markdown_table, plot_ndcg_vs_dims, write_json


@pytest.fixture
def rows():
    return [
        ResultRow("scifact", "m", "full", 384, {"ndcg@10": [0.645]}),
        ResultRow("scifact", "m", "pca", 64, {"ndcg@10": [0.540]}),
        ResultRow("scifact", "m", "pca", 32, {"ndcg@10": [0.453]}),
        ResultRow("scifact", "m", "smec", 64, {"ndcg@10": [0.60, 0.62]}, [10.0, 14.0], "overlap 181/283"),
        ResultRow("nfcorpus", "m", "pca", 64, {"ndcg@10": [0.236]}),
    ]


def test_markdown_pivots_methods_by_dims_with_mean_std_time_and_note(rows):
    text = markdown_table(rows)
    assert "### scifact · m · ndcg@10" in text and "### nfcorpus · m · ndcg@10" in text
    assert "| method | 384-d | 64-d | 32-d | train s (mean per run) | note |" in text
    assert "| pca |  | 0.540 | 0.453 |  |  |" in text
    assert "| smec |  | 0.610 ± 0.014 |  | 12.0 | overlap 181/283 |" in text


def test_json_keeps_seeds_and_summary(rows, tmp_path):
    path = write_json(rows, tmp_path / "out" / "q.json", {"command": "x"})
    data = json.loads(path.read_text())
    assert data["meta"] == {"command": "x"}
    smec = data["rows"][3]
    assert smec["metrics"]["ndcg@10"] == [0.60, 0.62]
    assert smec["mean"]["ndcg@10"] == pytest.approx(0.61)
    assert smec["std"]["ndcg@10"] == pytest.approx(0.0141421, abs=1e-6)


def test_plot_writes_a_png(rows, tmp_path):
    path = plot_ndcg_vs_dims(rows, tmp_path / "q.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rows_without_the_metric_are_left_out_and_none_at_all_is_an_error(rows):
    rows[1].metrics["recall@100"] = [0.9]
    assert markdown_table(rows, metric="recall@100").count("| pca |") == 1
    with pytest.raises(ConfigError, match="no result row has 'mrr@10' values"):
        markdown_table(rows, metric="mrr@10")
