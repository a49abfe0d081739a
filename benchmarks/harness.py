"""What the query-path and layout benchmarks share: one core, interleaved rounds, stores, compressors, tables.

Timing rules (the machine is shared): every variant is timed in the same process, pinned to one core
with BLAS and torch on one thread, in rounds that run every variant once in a shuffled order; a
figure is the median over rounds of the per-round median, with the spread (min–max over rounds).

Example::

    pin_one_core()
    rounds = interleaved({"a": fa, "b": fb}, rounds=5)     # {"a": [seconds per round], ...}
"""

from __future__ import annotations

import json
import os
import platform
import random
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def pin_one_core() -> int:
    """Run this process (and its engine threads) on the last core, BLAS and torch on one thread."""
    core = (os.cpu_count() or 1) - 1
    os.sched_setaffinity(0, {core})
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    return core


def machine(load_at_start: float) -> str:
    return (f"{platform.node()}: {os.cpu_count()} CPUs, shared with other jobs; 1-min load average "
            f"{load_at_start:.1f} at start, {os.getloadavg()[0]:.1f} at end")


def rss() -> dict[str, int]:
    """VmRSS, RssAnon and RssFile of this process, bytes."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile"):
            out[key] = int(value.split()[0]) * 1024
    return out


def per_call(fn: Callable[[], Any], min_seconds: float) -> float:
    """Mean wall seconds of one call of ``fn``, timing whole loops until ``min_seconds`` have passed."""
    fn()
    calls, start = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return elapsed / calls


def interleaved(variants: Mapping[str, Callable[[], Any]], rounds: int, min_seconds: float = 0.2,
                seed: int = 0) -> dict[str, list[float]]:
    """Seconds per call of each variant, per round; every round times every variant once, in a shuffled order."""
    rng = random.Random(seed)
    out: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for _ in range(rounds):
        rng.shuffle(names)
        for name in names:
            out[name].append(per_call(variants[name], min_seconds))
    return out


def summary(values: Sequence[float], scale: float = 1e6) -> dict[str, float]:
    """Median and min–max of per-round figures, scaled (default µs)."""
    v = np.asarray(values) * scale
    return {"median": round(float(np.median(v)), 2), "min": round(float(v.min()), 2), "max": round(float(v.max()), 2)}


def latency(seconds: Sequence[float]) -> dict[str, float]:
    """p50 / p99 in ms and single-stream QPS of a list of per-query seconds."""
    ms = np.asarray(seconds) * 1e3
    return {"p50_ms": round(float(np.median(ms)), 3), "p99_ms": round(float(np.percentile(ms, 99)), 3),
            "qps": round(len(ms) / (ms.sum() / 1e3), 1)}


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def spread(s: Mapping[str, float], unit: str = "") -> str:
    return f"{s['median']:g}{unit} ({s['min']:g}–{s['max']:g})"


def train_compressor(ds: Any, dims: Sequence[int], workdir: Path, *, rows: int, epochs: int) -> Path:
    """A SMEC compressor trained on ``rows`` corpus vectors of ``ds`` (unsupervised), cached in ``workdir``."""
    from smec_vdb.train import TrainConfig, train

    folder = workdir / f"compressor-{ds.name}-{'-'.join(map(str, dims))}-{rows}-{epochs}"
    if (folder / "manifest.json").is_file():
        return folder
    rng = np.random.default_rng(1)
    sample = ds.corpus[rng.choice(len(ds.corpus), min(rows, len(ds.corpus)), replace=False)]
    started = time.perf_counter()
    comp = train(sample, list(dims), config=TrainConfig(epochs=epochs, patience=1, seed=0))
    shutil.rmtree(folder, ignore_errors=True)
    comp.save(folder)
    (folder / "trained_s.json").write_text(json.dumps({"seconds": round(time.perf_counter() - started, 1)}))
    return folder


def fill(collection: Any, vectors: np.ndarray, batch: int = 2048) -> None:
    """Upsert ``vectors`` (ids 0..n-1) through a SmecCollection or (backend, name) pair."""
    for start in range(0, len(vectors), batch):
        ids = list(range(start, min(len(vectors), start + batch)))
        collection(ids, vectors[start:start + batch])
