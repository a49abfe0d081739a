"""Running `smec-vdb` as a user does (a subprocess of the console script's entry point), and reading its output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

#: the console script's entry point, run by this interpreter (the venv's, as `smec-vdb` would)
CLI = [sys.executable, "-c", "from smec_vdb.cli import main; main()"]


def cli_env(**extra: str) -> dict[str, str]:
    """The caller's environment as a pipe sees it: no COLUMNS (rich would take its width from there)."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    return {**env, "OMP_NUM_THREADS": "1", **extra}


def smec(*args: str, cwd: Path | None = None, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], cwd=cwd, env=cli_env(), input=stdin, capture_output=True, text=True,
                          timeout=600, check=False)


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    """The one ``error: …`` line a failed command printed on stderr (exit 1), and nothing else."""
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]
