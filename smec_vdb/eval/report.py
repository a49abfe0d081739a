"""Comparison reports: a markdown table, a JSON file and a PNG plot of nDCG@10 against dims.

Each :class:`ResultRow` holds one method at one dim on one dataset, with one value per seed,
so the table can show mean ± std. The plot draws one line per method and one panel per
dataset and model, like the paper's Figure 5. matplotlib is imported only when plotting.

Example::

    rows = [ResultRow("scifact", "minilm-l6-v2", "pca", 64, {"ndcg@10": [0.540]})]
    print(markdown_table(rows))
    write_json(rows, "out/quality.json"); plot_ndcg_vs_dims(rows, "out/quality.png")
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from smec_vdb.errors import ConfigError

NDCG = "ndcg@10"


@dataclass
class ResultRow:
    """Scores of one method at one dim: ``metrics`` maps a metric name to its value for each seed."""

    dataset: str
    model: str
    method: str
    dim: int
    metrics: dict[str, list[float]]
    train_seconds: list[float] = field(default_factory=list)
    note: str = ""

    def mean(self, metric: str) -> float:
        return statistics.fmean(self._values(metric))

    def std(self, metric: str) -> float:
        values = self._values(metric)
        return statistics.stdev(values) if len(values) > 1 else 0.0

    def _values(self, metric: str) -> list[float]:
        values = self.metrics.get(metric)
        if not values:
            raise ConfigError(f"{self.method}@{self.dim} has no '{metric}' values: found {sorted(self.metrics)}")
        return values


def format_score(row: ResultRow, metric: str) -> str:
    """``0.612`` for one seed, ``0.612 ± 0.004`` for several."""
    if len(row.metrics.get(metric, [])) > 1:
        return f"{row.mean(metric):.3f} ± {row.std(metric):.3f}"
    return f"{row.mean(metric):.3f}"


def markdown_table(rows: Sequence[ResultRow], metric: str = NDCG) -> str:
    """One table per (dataset, model): a row per method, a column per dim, then training time and notes.

    Rows without ``metric`` (e.g. the full-dim reference in a rerank table) are left out.
    """
    rows = [r for r in rows if r.metrics.get(metric)]
    if not rows:
        raise ConfigError(f"no result row has '{metric}' values")
    sections = []
    for (dataset, model), group in _groups(rows).items():
        dims = sorted({r.dim for r in group}, reverse=True)
        methods = list(dict.fromkeys(r.method for r in group))
        cell = {(r.method, r.dim): r for r in group}
        header = ["method", *[f"{d}-d" for d in dims], "train s (mean per run)", "note"]
        lines = [f"### {dataset} · {model} · {metric}", "", _md_row(header), _md_row(["---"] * len(header))]
        for method in methods:
            method_rows = [cell[(method, d)] for d in dims if (method, d) in cell]
            scores = [format_score(cell[(method, d)], metric) if (method, d) in cell else "" for d in dims]
            seconds = [s for r in method_rows for s in r.train_seconds]
            train = f"{statistics.fmean(seconds):.1f}" if seconds else ""
            notes = "; ".join(dict.fromkeys(r.note for r in method_rows if r.note))
            lines.append(_md_row([method, *scores, train, notes]))
        sections.append("\n".join(lines))
    return "\n\n".join(sections) + "\n"


def write_json(rows: Sequence[ResultRow], path: str | Path, meta: dict[str, Any] | None = None) -> Path:
    """Write ``{"meta": ..., "rows": [...]}`` with per-seed values and their mean/std."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "meta": meta or {},
        "rows": [
            asdict(r) | {"mean": {m: r.mean(m) for m in r.metrics}, "std": {m: r.std(m) for m in r.metrics}}
            for r in rows
        ],
    }
    path.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    return path


def plot_ndcg_vs_dims(rows: Sequence[ResultRow], path: str | Path, metric: str = NDCG) -> Path:
    """PNG: one panel per (dataset, model), two per row, ``metric`` against dims (log scale), a line per method."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("plotting needs matplotlib: pip install 'smec-vdb[plot]'") from None
    groups = _groups(rows)
    if not groups:
        raise ConfigError("nothing to plot: no result rows")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cols = min(2, len(groups))
    n_rows = -(-len(groups) // cols)
    fig, axes = plt.subplots(n_rows, cols, figsize=(6.5 * cols, 4.8 * n_rows), squeeze=False)
    for ax in axes.flat[len(groups):]:
        ax.set_visible(False)
    palette = [f"C{i}" for i in (0, 1, 2, 3, 4, 5, 6, 8, 9)]  # C7 (grey) is left to the full-dim reference
    trained = [m for m in dict.fromkeys(r.method for r in rows) if len({r.dim for r in rows if r.method == m}) > 1]
    colour = {m: palette[i % len(palette)] for i, m in enumerate(trained)}  # one colour per method in every panel
    for ax, ((dataset, model), group) in zip(axes.flat, groups.items()):
        curves = {m: sorted((r for r in group if r.method == m and metric in r.metrics), key=lambda r: r.dim)
                  for m in dict.fromkeys(r.method for r in group)}
        for method, points in curves.items():
            if len(points) == 1:  # a single reference point (e.g. the full-dim input): a dashed level
                ax.axhline(points[0].mean(metric), linestyle="--", color="grey", label=f"{method} ({points[0].dim}-d)")
            elif points:
                ax.errorbar([r.dim for r in points], [r.mean(metric) for r in points],
                            yerr=[r.std(metric) for r in points], marker="o", capsize=3, label=method,
                            color=colour.get(method))
        ax.set_xscale("log", base=2)
        all_dims = sorted({r.dim for points in curves.values() if len(points) > 1 for r in points})
        ax.set_xticks(all_dims, [str(d) for d in all_dims])
        ax.set_xlabel("dimensions")
        ax.set_ylabel(metric)
        ax.set_title(f"{dataset} · {model}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _groups(rows: Sequence[ResultRow]) -> dict[tuple[str, str], list[ResultRow]]:
    groups: dict[tuple[str, str], list[ResultRow]] = {}
    for r in rows:
        groups.setdefault((r.dataset, r.model), []).append(r)
    return groups


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"
