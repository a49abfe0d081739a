"""benchmarks/layouts.py: the settings it sweeps and how it picks the best native and SMEC rows (no timing)."""

from __future__ import annotations

import pytest
from benchmark_scripts import load_benchmark


@pytest.fixture(scope="module")
def layouts():
    return load_benchmark("layouts")


def row(family, ram, p50, recall, name=None):
    return {"family": family, "variant": name or f"{family}-{ram}", "setting": {}, "ram_model_B": ram,
            "p50_ms": p50, "p50_min_ms": p50, "p50_max_ms": p50, "recall@10": recall}


def test_smec_settings_keep_ef_at_least_the_candidates(layouts):
    grid = layouts.Grid(smec_ef=(32, 64), candidates=(20, 64, 100))
    assert grid.smec_settings() == [{"candidates": 20, "ef": 32}, {"candidates": 20, "ef": 64},
                                    {"candidates": 64, "ef": 64}, {"candidates": 100, "ef": 100}]


def test_best_native_is_its_fastest_row_at_the_recall_and_smec_the_least_ram_within_it(layouts):
    rows = [row("native", 800, 0.20, 0.995), row("native", 240, 0.30, 0.992), row("native", 100, 0.10, 0.90),
            row("smec", 300, 0.19, 0.999), row("smec", 180, 0.20, 0.994), row("smec", 120, 0.15, 0.98)]
    a = layouts.analyse({"rows": rows})
    assert (a["best_native"]["ram_model_B"], a["best_smec"]["ram_model_B"]) == (800, 180)
    assert a["smec_within_native_p50"] and a["ram_ratio"] == 0.225
    assert a["smec_on_front"] and len(a["front"]) == 2  # smec 180 @ .20 dominates native 800 @ .20; smec 300 @ .19
    slow = layouts.analyse({"rows": [rows[0], row("smec", 180, 0.5, 0.999), row("smec", 90, 0.9, 0.999)]})
    assert not slow["smec_within_native_p50"] and slow["best_smec"]["p50_ms"] == 0.5  # fastest SMEC when none is as fast
