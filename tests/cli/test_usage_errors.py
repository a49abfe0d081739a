"""Usage errors as click renders them (usage line + one error line, exit 2), and --version.

On main before issue 20 every one of these printed "internal error: NoSuchOption … (set
SMEC_VDB_DEBUG=1 for a traceback)" without a usage line: typer vendors click as ``typer._click``,
so the CLI's ``isinstance(e, click.ClickException)`` never matched.
"""

from __future__ import annotations

import pytest

from smec_vdb import __version__
from tests.cli.shell import smec


@pytest.mark.parametrize("args, usage, error", [
    (["migrate", "--colection", "docs"], "Usage: smec-vdb migrate [OPTIONS]",
     "Error: No such option: --colection (Possible options: --collection, --vector)"),
    (["migrat"], "Usage: smec-vdb [OPTIONS] COMMAND [ARGS]...", "Error: No such command 'migrat'. Did you mean 'migrate'?"),
    (["migrate", "--collection", "docs", "--dim", "abc"], "Usage: smec-vdb migrate [OPTIONS]",
     "Error: Invalid value for '--dim': "),
    (["search", "--collection", "docs"], "Usage: smec-vdb search [OPTIONS]", "Error: Missing option '--query' / '-q'."),
    (["train", "--vectors", "x.npy", "--dims", "8", "--out", "m", "--epochs", "many"], "Usage: smec-vdb train [OPTIONS]",
     "Error: Invalid value for '--epochs': "),
    (["search", "-c", "docs", "-q", "[1]", "-k", "0"], "Usage: smec-vdb search [OPTIONS]",
     "Error: Invalid value for '-k': "),
], ids=["unknown-option", "unknown-command", "bad-value", "missing-option", "bad-train-value", "out-of-range"])
def test_usage_errors_print_the_usage_line_and_one_error_line(tmp_path, args, usage, error):
    proc = smec(*args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[0] == usage, proc.stderr
    assert lines[-1].startswith(error), proc.stderr
    assert [line for line in lines if "rror" in line] == [lines[-1]], proc.stderr  # no "internal error", no traceback
    assert proc.stdout == "" and list(tmp_path.iterdir()) == []


def test_version():
    proc = smec("--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"smec-vdb {__version__}" and proc.stderr == ""


def test_a_debug_flag_from_the_environment_that_is_not_a_boolean_is_a_usage_error(tmp_path):
    import subprocess

    from tests.cli.shell import CLI, cli_env

    proc = subprocess.run([*CLI, "inspect", "--path", str(tmp_path)], env=cli_env(SMEC_VDB_DEBUG="loud"),
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith("Error: Invalid value for '--debug'")


def test_debug_from_the_environment_shows_the_traceback(tmp_path):
    import subprocess

    from tests.cli.shell import CLI, cli_env

    args = [*CLI, "inspect", "--path", str(tmp_path / "absent")]
    quiet = subprocess.run(args, env=cli_env(), capture_output=True, text=True, timeout=120, check=False)
    loud = subprocess.run(args, env=cli_env(SMEC_VDB_DEBUG="1"), capture_output=True, text=True, timeout=120,
                          check=False)
    assert quiet.returncode == 1 and "Traceback" not in quiet.stderr and quiet.stderr.startswith("error: no qdrant-edge")
    assert loud.returncode == 1 and "Traceback" in loud.stderr and "ConfigError: no qdrant-edge store" in loud.stderr
