"""Ctrl-C while training: the command stops within a batch, prints one line, exits 130, leaves nothing.

On main before issue 20 `smec-vdb train` ignored the first Ctrl-C until training ended on its own
(296 s on SciFact): the trainer had no stop check.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import numpy as np

from tests.cli.shell import CLI, cli_env

#: generous for a shared, loaded 2-core machine; the runs below would go on for minutes otherwise
STOP_WITHIN_S = 15.0


def interrupt_once(args: list[str], started: str, cwd: Path) -> tuple[int, list[str], float]:
    """Run the CLI, send SIGINT once the stderr line starting with ``started`` appears; return
    (exit code, the stderr lines that came after it, seconds from SIGINT to exit)."""
    proc = subprocess.Popen([*CLI, *args], cwd=cwd, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    assert proc.stderr is not None
    try:
        for line in proc.stderr:
            if line.startswith(started):
                break
        else:
            raise AssertionError(f"never printed {started!r}; exit {proc.wait()}")
        time.sleep(0.5)
        assert proc.poll() is None, "finished before it could be interrupted: make the run longer"
        proc.send_signal(signal.SIGINT)
        sent = time.monotonic()
        code = proc.wait(timeout=120)  # a few lines of stderr fit the pipe's buffer meanwhile
        seconds = time.monotonic() - sent
        rest = proc.stderr.read()  # (communicate() would miss what the line iterator has buffered)
        return code, rest.strip().splitlines(), seconds
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_ctrl_c_stops_train_within_a_batch_and_saves_nothing(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "x.npy", rng.normal(size=(3000, 64)).astype(np.float32))
    code, lines, seconds = interrupt_once(
        ["train", "--vectors", "x.npy", "--dims", "32,16", "--out", "model", "--epochs", "500", "--patience", "500",
         "--device", "cpu"], "stage 1 → 32d…", tmp_path)  # printed as the first epoch ends: the loop runs
    assert code == 130 and seconds < STOP_WITHIN_S, (code, seconds, lines)
    assert len(lines) == 1 and lines[0].startswith("error: training interrupted in stage ") \
        and lines[0].endswith("nothing was saved"), lines
    assert not (tmp_path / "model").exists()


def test_ctrl_c_stops_migrate_while_it_trains_and_writes_nothing(tmp_path):
    from smec_vdb.adapters import open_backend
    from smec_vdb.backend import Batch, CollectionSchema, Resolution

    x = np.random.default_rng(1).normal(size=(3000, 64)).astype(np.float32)
    source = open_backend("qdrant-edge", path=str(tmp_path / "store"))  # the README's library way
    source.create_collection("docs", CollectionSchema((Resolution("emb", 64),)))
    source.upsert("docs", Batch(ids=list(range(len(x))), vectors={"emb": x}, payloads=[{"i": i} for i in range(len(x))]))
    source.close()
    code, lines, seconds = interrupt_once(
        ["migrate", "--collection", "docs", "--dim", "16", "--epochs", "500", "--swap-alias", "docs_live",
         "--path", "store", "--compressor-store", "models", "--report", "report.json"], "train…", tmp_path)
    assert code == 130 and seconds < STOP_WITHIN_S, (code, seconds, lines)
    assert len(lines) == 1 and lines[0].startswith("error: training interrupted in stage "), lines
    assert not (tmp_path / "models").exists() and not (tmp_path / "report.json").exists()
    after = open_backend("qdrant-edge", path=str(tmp_path / "store"))
    try:
        assert after.list_collections() == ["docs"] and after.count("docs") == len(x)
        assert after.resolve_alias("docs_live") is None
    finally:
        after.close()
