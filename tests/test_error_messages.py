"""Library errors name parameters, never CLI flags (the CLI maps them where a flag is meant)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z-]*")
# the migration engine is being split by phase (issue 10), its messages are reworded there
EXEMPT = ("smec_vdb/migrate",)


def flags_in_raised_messages(source: str) -> list[str]:
    """The ``--flag`` words in the string parts of every ``raise`` statement of ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Raise) and node.exc is not None:
            for part in ast.walk(node.exc):
                if isinstance(part, ast.Constant) and isinstance(part.value, str):
                    found += FLAG.findall(part.value)
    return found


def test_no_library_error_names_a_cli_flag():
    offenders = {}
    for folder in ("smec_vdb", "adapters"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel.startswith(EXEMPT):
                continue
            flags = flags_in_raised_messages(path.read_text())
            if flags:
                offenders[rel] = flags
    assert not offenders, offenders


def test_the_scan_sees_a_flag_in_a_raised_message():
    assert flags_in_raised_messages('raise ConfigError(f"pass --replace to rebuild {x}")') == ["--replace"]
    assert flags_in_raised_messages('raise ConfigError("keep_full=False and no dims")') == []
