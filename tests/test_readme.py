"""The README's library example runs as written (on a small random corpus in a temporary directory)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def library_example() -> str:
    section = ROOT.joinpath("README.md").read_text().split("## Library", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_library_example_runs(tmp_path):
    rng = np.random.default_rng(0)
    corpus = rng.normal(size=(400, 384)).astype(np.float32)
    np.save(tmp_path / "corpus.npy", corpus / np.linalg.norm(corpus, axis=1, keepdims=True))
    code = library_example() + "\nassert len(hits) == 10 and hits[0].id == 0 and all(h.payload['i'] < 100 for h in hits)\n"
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]


def readme_test_command(readme: str) -> str:
    """The command under the README's "the checks (exactly what CI's .ci/run runs …)" comment."""
    return re.search(r"# the checks \(exactly what CI's \.ci/run runs.*\n(.+)\n", readme).group(1).strip()


def runs_command(script: str, command: str) -> bool:
    """Whether ``script`` runs ``command`` as one line of its own."""
    return any(line.strip() == command for line in script.splitlines())


def test_ci_runs_exactly_the_readme_test_command():
    command = readme_test_command(ROOT.joinpath("README.md").read_text())
    script = ROOT.joinpath(".ci", "run").read_text()
    assert "pytest" in command and runs_command(script, command)
    assert not runs_command(script, command.replace('-m "not slow"', ""))  # the check can fail
