"""Type-check the package as it is installed: adapters/ as smec_vdb.adapters, cli/ as smec_vdb.cli.

mypy cannot follow setuptools' editable-install import hook nor the package-dir mapping, so this
links the three source folders into a temporary ``smec_vdb`` tree, runs mypy on it with the
settings of pyproject.toml, and prints the findings with the repository's own paths.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAPPED = {"adapters": "adapters", "cli": "cli"}  # folder in the repository -> subpackage of smec_vdb


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="smec-mypy-") as tmp:
        package = Path(tmp) / "smec_vdb"
        package.mkdir()
        for entry in (ROOT / "smec_vdb").iterdir():
            (package / entry.name).symlink_to(entry)
        for folder, subpackage in MAPPED.items():
            (package / subpackage).symlink_to(ROOT / folder)
        proc = subprocess.run(
            [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"), "-p", "smec_vdb"],
            cwd=tmp, capture_output=True, text=True, check=False,
        )
    out = proc.stdout + proc.stderr
    for folder, subpackage in MAPPED.items():
        out = out.replace(f"smec_vdb/{subpackage}/", f"{folder}/")
    print(out, end="")
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
