"""Training speed of one SMEC stage epoch against the GEMM roofline of the same forward + backward.

For each shape (N vectors × D, stage D → d) one epoch of ``train_stages`` is timed (held-out
scoring included, as a user pays it) and compared with the time this CPU needs for the stage's
GEMMs alone: per step the forward ``(U × D) @ (D × d)`` on the U unique rows of a batch
(anchors and their S-XBM neighbours, U measured as the mean over the first 20 batches) and the two backward GEMMs of the same size, at the measured
single-thread GEMM rate. ``ratio = roofline / measured`` (1.0 = as fast as the GEMMs).
``ratio_with_search`` also counts the S-XBM neighbour search each step must do, one GEMM
``(B × D) @ (D × M)`` of the batch against the memory (§3.4), at its own measured rate.

    .venv/bin/python benchmarks/train_speed.py            # 100k × 384 → 128 and 5k × 3584 → 1792
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path

import torch

from smec_vdb.compress.smec import SMECCompressor
from smec_vdb.train.config import TrainConfig
from smec_vdb.train.data import TrainingData
from smec_vdb.train.objective import Objective
from smec_vdb.train.smrl import _init_stage, smec_terms, train_stages

SHAPES = ((100_000, 384, 128), (5_000, 3584, 1792))


def gemm_rate(m: int, k: int, n: int, repeats: int = 5) -> float:
    a, b = torch.randn(m, k), torch.randn(k, n)
    a @ b
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2.0 * m * k * n * repeats / (time.perf_counter() - started)


def unique_rows_per_step(data: TrainingData, config: TrainConfig, batches: int = 20) -> int:
    """Mean number of distinct rows a step multiplies (anchors and their S-XBM neighbours), over the first batches."""
    objective = Objective(data, config, smec_terms(config, data.supervised))
    counts = []
    for b in range(min(batches, math.ceil(data.train_rows.numel() / config.batch_size))):
        anchors = data.train_rows[b * config.batch_size : (b + 1) * config.batch_size]
        counts.append(torch.unique(torch.cat([anchors, objective.neighbours(anchors).flatten()])).numel())
    return round(sum(counts) / len(counts))


def measure(n: int, dim: int, out_dim: int, config: TrainConfig) -> dict:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, dim, generator=g) * torch.linspace(2.0, 0.1, dim) + 0.3
    data = TrainingData.build(x, config)
    comp = SMECCompressor(dim, [out_dim], use_ads=config.use_ads)
    _init_stage(comp, data, 0)
    steps = math.ceil(data.train_rows.numel() / config.batch_size)
    u = unique_rows_per_step(data, config)
    started = time.perf_counter()
    report = train_stages(comp, data, config, 0, 0)
    seconds = time.perf_counter() - started
    width = dim if config.use_ads else out_dim
    rate = gemm_rate(u, dim, width)
    roofline = steps * 3 * 2.0 * u * dim * width / rate
    memory = min(config.memory_size, n)
    search_rate = gemm_rate(config.batch_size, dim, memory)
    search = steps * 2.0 * config.batch_size * dim * memory / search_rate
    per_epoch = seconds / report.epochs
    return {"n": n, "dim": dim, "out_dim": out_dim, "epochs": report.epochs, "seconds_per_epoch": per_epoch,
            "steps_per_epoch": steps, "unique_rows_per_step": u, "gemm_gflops": rate / 1e9,
            "roofline_seconds_per_epoch": roofline, "ratio": roofline / per_epoch,
            "search_seconds_per_epoch": search, "ratio_with_search": (roofline + search) / per_epoch}


def main() -> None:
    torch.set_num_threads(1)
    config = TrainConfig(epochs=1, patience=1, device="cpu")
    rows = [measure(n, d, k, config) for n, d, k in SHAPES]
    for r in rows:
        print(f"{r['n']:>7} × {r['dim']:>4} → {r['out_dim']:>4}: {r['seconds_per_epoch']:.1f} s/epoch, roofline "
              f"{r['roofline_seconds_per_epoch']:.1f} s ({r['gemm_gflops']:.0f} GFLOP/s), ratio {r['ratio']:.2f}; "
              f"with the S-XBM search GEMM ({r['search_seconds_per_epoch']:.1f} s) {r['ratio_with_search']:.2f}")
    out = Path("benchmarks/results/train_speed.json")
    out.write_text(json.dumps({"command": " ".join(["python", *sys.argv]), "loadavg": os.getloadavg()[0],
                               "torch_threads": 1, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
