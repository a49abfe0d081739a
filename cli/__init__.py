"""The `smec-vdb` command line (installed as ``smec_vdb.cli``): thin Typer commands over the library.

:func:`main` is the console script: it checks that the ``[cli]`` extra (typer, rich) is installed
and says how to install it otherwise, before importing any command.
"""

from __future__ import annotations

import importlib
import sys

CLI_PACKAGES = ("typer", "rich")


def main() -> None:
    """Run the `smec-vdb` command line, or print the install line and exit 1 when typer/rich are absent."""
    missing = []
    for name in CLI_PACKAGES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError:
            missing.append(name)
    if missing:
        print(f"error: the smec-vdb command line needs {', '.join(missing)}: pip install 'smec-vdb[cli]'", file=sys.stderr)
        sys.exit(1)
    from smec_vdb.cli.app import main as run

    run()
