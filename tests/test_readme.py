"""The docs run: every code block of README.md (and benchmarks/README.md, docs/*.md) is executed, in order, in one temporary folder.

A block runs as a reader would run it after the blocks above it: ``python`` blocks as scripts,
``bash``/``sh`` blocks with ``bash -e``, all with the working directory a temporary folder that
holds small fixtures (``corpus.npy``: 400 unit vectors of 384 dims with neighbourhood structure)
and a ``.venv`` link to this interpreter's environment, with its ``bin`` first on PATH (so
``smec-vdb`` and ``python`` are this checkout's). A failing block fails the test with its file,
line and output. Blocks that cannot run here carry, on the line right above the fence,
``<!-- readme-test: skip: <why> -->``; a block without a language (or of a language this test
does not know) fails, so a new block is never silently left out.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", ROOT / "benchmarks" / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]
RUN = {"python": "python", "bash": "shell", "sh": "shell"}
NOT_CODE = {"text", "json", "toml", "yaml", "console-output"}
FENCE = re.compile(r"^```(\S*)\s*$")
SKIP = re.compile(r"^<!--\s*readme-test:\s*skip:\s*(?P<why>.*\S)\s*-->\s*$")
BLOCK_TIMEOUT_S = 600


@dataclass(frozen=True)
class Block:
    doc: Path
    line: int  # of the opening fence, 1-based
    lang: str
    code: str
    skip: str | None  # the reason, when marked

    @property
    def name(self) -> str:
        return f"{self.doc.relative_to(ROOT)}:{self.line} ({self.lang or 'no language'})"


def code_blocks(doc: Path) -> list[Block]:
    """Every fenced block of ``doc``, with the skip reason written on the line right above it."""
    lines = doc.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        marker = SKIP.match(lines[i - 1]) if i > 0 else None
        blocks.append(Block(doc, i + 1, fence.group(1), "\n".join(lines[i + 1:end]) + "\n",
                            marker.group("why") if marker else None))
        i = end + 1
    return blocks


ALL_BLOCKS = [b for doc in DOCS for b in code_blocks(doc)]


def test_every_block_is_run_or_says_why_not():
    unknown = [b.name for b in ALL_BLOCKS if b.lang not in RUN and b.lang not in NOT_CODE]
    assert not unknown, f"give these blocks a language ({', '.join(sorted(RUN))}, or {', '.join(sorted(NOT_CODE))}): {unknown}"
    assert any(b.lang in RUN and b.skip is None for b in ALL_BLOCKS)


def clustered_unit_vectors(n: int, dim: int, seed: int) -> np.ndarray:
    """Points around 20 centres in a 24-d subspace: neighbourhoods a compressor can keep."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(dim, 24)))[0]
    latent = rng.normal(size=(20, 24))[rng.integers(0, 20, n)] + 0.3 * rng.normal(size=(n, 24))
    x = latent @ basis.T + 0.02 * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def run_block(block: Block, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    if RUN[block.lang] == "python":  # padded so that a traceback names the README's own line numbers
        source = "\n" * block.line + block.code
        command = [sys.executable, "-c", f"exec(compile({source!r}, {str(block.doc)!r}, 'exec'))"]
    else:
        command = ["bash", "-e", "-o", "pipefail", "-c", block.code]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=BLOCK_TIMEOUT_S,
                          check=False)


def test_the_readme_blocks_run(tmp_path):
    np.save(tmp_path / "corpus.npy", clustered_unit_vectors(400, 384, seed=0))
    (tmp_path / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    runnable = [b for b in ALL_BLOCKS if b.lang in RUN]
    skipped = [f"{b.name}: {b.skip}" for b in runnable if b.skip]
    ran = []
    for block in runnable:
        if block.skip:
            continue
        started = time.perf_counter()
        proc = run_block(block, tmp_path, env)
        ran.append(f"{block.name}: {time.perf_counter() - started:.1f} s")
        if proc.returncode != 0:
            pytest.fail(f"{block.name} failed with exit {proc.returncode}:\n{block.code}\n--- stderr ---\n"
                        f"{proc.stderr[-4000:]}\n--- stdout ---\n{proc.stdout[-2000:]}", pytrace=False)
    print("ran:", *ran, "not run here:", *skipped, sep="\n  ")


def test_a_broken_block_fails_naming_it(tmp_path):
    """The runner reports failures: a block that raises exits non-zero with the README's line number."""
    bad = Block(ROOT / "README.md", 40, "python", "import smec_vdb\nundefined_name\n", None)
    proc = run_block(bad, tmp_path, dict(os.environ))
    assert proc.returncode != 0 and 'README.md", line 42' in proc.stderr and "NameError" in proc.stderr
    assert run_block(Block(ROOT / "README.md", 1, "bash", "false\necho never\n", None), tmp_path,
                     dict(os.environ)).returncode != 0


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
