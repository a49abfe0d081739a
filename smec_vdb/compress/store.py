"""A content-addressed compressor store: a folder holding one subfolder per compressor, named by its hash.

:meth:`CompressorStore.put` writes a compressor to ``<root>/<hash>`` with
:func:`~smec_vdb.compress.artifact.save` (a hidden temporary folder renamed in one step) and returns
the folder that is already there when that hash is stored. An entry is never modified in place, so
two migrations (other engines, other stores, the same collection name) never overwrite each other's
compressor, and a collection's recorded compressor stays loadable until it is deleted explicitly.

Only :func:`collect_garbage` deletes, and only entries that no collection records. It is pointed at
the engine stores whose collections it checks (each collection's compressor record and a running
migration's checkpoint), spares entries younger than ``min_age_s`` (a migration saves its
compressor just before it records it) and refuses, deleting nothing, to delete a named entry that is
recorded. A deletion renames the entry to a hidden ``.trash-`` name first, so a reader never sees a
half-deleted compressor under its hash.

Example::

    store = CompressorStore("./smec_compressors")
    path = store.put(comp)                     # ./smec_compressors/8648c1e0a3b2f9d4
    report = collect_garbage(store, [backend], dry_run=True)
"""

from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from smec_vdb.atomic import temporary_name
from smec_vdb.backend import Backend
from smec_vdb.collection import COMPRESSOR_KEY
from smec_vdb.errors import ArtifactError, CompressorInUseError, ConfigError

if TYPE_CHECKING:
    from smec_vdb.compress.base import Compressor

#: an entry's folder name: the compressor's hash (:func:`~smec_vdb.compress.artifact.compressor_hash`)
HASH_NAME = re.compile(r"^[0-9a-f]{16}$")
#: a folder left by a killed write (``.<hash>.tmp-…``) or deletion (``.<hash>.trash-…``)
LEFTOVER_NAME = re.compile(r"^\.[0-9a-f]{16}\.(tmp|trash)-[0-9a-f]+$")
DEFAULT_MIN_AGE_S = 3600.0


@dataclass(frozen=True)
class StoreEntry:
    """One stored compressor: its hash and folder, what its manifest declares (``problem`` when it
    cannot be read), its size on disk and when it was written."""

    hash: str
    path: Path
    method: str | None
    input_dim: int | None
    dims: tuple[int, ...]
    bytes: int
    modified: float
    problem: str | None = None


@dataclass(frozen=True)
class Reference:
    """A compressor a collection records (``via`` "collection") or a running migration will record
    (``via`` "checkpoint"), in the engine store ``store``."""

    hash: str
    collection: str
    store: str
    via: str

    def __str__(self) -> str:
        return f"{self.collection} ({self.via}) in {self.store}"


class CompressorStore:
    """The compressors under ``root``, one folder per hash (module doc)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path_of(self, comp_hash: str) -> Path:
        return self.root / comp_hash

    def put(self, comp: Compressor) -> Path:
        """``comp`` saved under its hash (or the folder already holding it); returns the absolute folder."""
        from smec_vdb.compress.artifact import save

        return save(comp, self.path_of(comp.manifest_hash)).resolve()

    def entries(self) -> list[StoreEntry]:
        """Every stored compressor, oldest first."""
        from smec_vdb.compress.artifact import read_manifest

        found = []
        for path in self._children(HASH_NAME):
            try:
                m = read_manifest(path)
                described = dict(method=m["method"], input_dim=m["input_dim"], dims=tuple(m["dims"]))
            except ArtifactError as e:
                described = dict(method=None, input_dim=None, dims=(), problem=str(e))
            found.append(StoreEntry(path.name, path, bytes=_size(path), modified=path.stat().st_mtime,
                                    **described))  # type: ignore[arg-type]
        return sorted(found, key=lambda e: (e.modified, e.hash))

    def leftovers(self) -> list[Path]:
        """Hidden folders left by killed writes or deletions."""
        return self._children(LEFTOVER_NAME)

    def remove(self, comp_hash: str) -> None:
        """Delete an entry: renamed to a hidden name first (readers never see it half-deleted)."""
        trash = temporary_name(self.path_of(comp_hash), "trash")
        os.rename(self.path_of(comp_hash), trash)
        shutil.rmtree(trash)

    def _children(self, pattern: re.Pattern[str]) -> list[Path]:
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.iterdir() if pattern.match(p.name) and p.is_dir() and not p.is_symlink())


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())


def store_name(backend: Backend) -> str:
    """An engine store as reports name it: its target and location (no credentials)."""
    return f"{backend.target} {backend.location}"


def references(backend: Backend) -> list[Reference]:
    """The compressors the collections of ``backend`` record, and those its running migrations will."""
    from smec_vdb.migrate.options import CHECKPOINT_KEY  # here: the migration package imports this module

    found = []
    for name in backend.list_collections():
        record = backend.get_metadata(name, COMPRESSOR_KEY) or {}
        checkpoint = backend.get_metadata(name, CHECKPOINT_KEY) or {}
        for comp_hash, via in ((record.get("manifest_hash"), "collection"), (checkpoint.get("compressor_hash"), "checkpoint")):
            if comp_hash:
                found.append(Reference(str(comp_hash), name, store_name(backend), via))
    return found


@dataclass
class GcReport:
    """What :func:`collect_garbage` checked, deleted (or, with ``dry_run``, would delete) and kept."""

    checked: dict[str, int] = field(default_factory=dict)  # engine store → collections checked
    deleted: list[StoreEntry] = field(default_factory=list)
    kept: dict[str, list[Reference]] = field(default_factory=dict)  # hash → who records it
    too_young: list[StoreEntry] = field(default_factory=list)
    leftovers: list[Path] = field(default_factory=list)
    dry_run: bool = False


def collect_garbage(store: CompressorStore, backends: Sequence[Backend], *, hashes: Sequence[str] = (),
                    min_age_s: float = DEFAULT_MIN_AGE_S, dry_run: bool = False) -> GcReport:
    """Delete the entries of ``store`` that no collection of ``backends`` records (module doc).

    ``hashes``: only these entries (a unique prefix of at least 4 characters each); any of them that is
    recorded makes it a :class:`CompressorInUseError`, before anything is deleted. Otherwise every
    unrecorded entry older than ``min_age_s``, and leftovers of killed writes as old, are deleted."""
    if not backends:
        raise ConfigError("garbage collection needs the engine stores whose collections record compressors: "
                          "give at least one backend (nothing was deleted)")
    report = GcReport(dry_run=dry_run)
    recorded: dict[str, list[Reference]] = {}
    for backend in backends:
        refs = references(backend)
        report.checked[store_name(backend)] = len(backend.list_collections())
        for ref in refs:
            recorded.setdefault(ref.hash, []).append(ref)
    entries = store.entries()
    now = time.time()
    if hashes:
        chosen = [_by_prefix(entries, h) for h in hashes]
        in_use = {e.hash: recorded[e.hash] for e in chosen if e.hash in recorded}
        if in_use:
            raise CompressorInUseError("; ".join(
                f"compressor {h} is recorded by {', '.join(map(str, refs))}" for h, refs in in_use.items())
                + ": nothing was deleted")
        doomed = chosen
    else:
        doomed = []
        for entry in entries:
            if entry.hash in recorded:
                report.kept[entry.hash] = recorded[entry.hash]
            elif now - entry.modified < min_age_s:
                report.too_young.append(entry)
            else:
                doomed.append(entry)
        report.leftovers = [p for p in store.leftovers() if now - p.stat().st_mtime >= min_age_s]
    for entry in doomed:
        if not dry_run:
            store.remove(entry.hash)
        report.deleted.append(entry)
    if not dry_run:
        for path in report.leftovers:
            shutil.rmtree(path, ignore_errors=True)
    return report


def _by_prefix(entries: Sequence[StoreEntry], prefix: str) -> StoreEntry:
    matches = [e for e in entries if e.hash.startswith(prefix)] if len(prefix) >= 4 else []
    if len(matches) != 1:
        what = "no stored compressor" if not matches else f"{len(matches)} stored compressors"
        raise ConfigError(f"{what} match {prefix!r} (give at least 4 characters of a hash that is in the store)")
    return matches[0]
