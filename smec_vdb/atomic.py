"""Crash-safe file writes: write to a new name, fsync, then rename in one step.

A reader sees the old file (or folder) or the new one, never a half-written one. Files and folders
are created with the permissions the umask leaves (``0o666`` / ``0o777`` masked), as ``open`` and
``mkdir`` do, so a store that several users or nodes read stays readable; ``tempfile`` would make
them private (``0o600``).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def temporary_name(path: Path, kind: str = "tmp") -> Path:
    """A fresh hidden name beside ``path``: ``.<name>.<kind>-<random>``."""
    return path.with_name(f".{path.name}.{kind}-{secrets.token_hex(6)}")


def write_new(path: Path, data: bytes) -> None:
    """Create ``path`` (it must not exist), write ``data`` and fsync it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def fsync_dir(path: Path) -> None:
    """Make the entries of folder ``path`` (creations, renames) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically (the parent directory must exist). The rename is not
    fsynced: after a power loss a reader may see the old file, never a mix."""
    tmp = temporary_name(path)
    try:
        write_new(tmp, data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
