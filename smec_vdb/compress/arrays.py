"""Reading a saved compressor as numpy arrays, without torch (the ``smec-vdb search`` start-up path).

The folder is the one :mod:`smec_vdb.compress.artifact` writes (``manifest.json`` +
``weights.safetensors``) and is treated as untrusted input, as there: the manifest and the weights
must be regular files inside the folder (no absolute path, ``..`` or symlink out, no device), the
manifest at most :data:`MAX_MANIFEST_BYTES`, the weights at most what the declared shapes can
need, and the weights' sha256 must match the manifest before safetensors parses them. The id a
collection records (:func:`identity_hash`) is computed from the manifest as
``artifact.compressor_hash`` computes it from a loaded module.

Example::

    manifest, tensors = read_arrays("models/docs")
    encoder = NumpyEncoder.from_tensors(manifest["method"], manifest["config"], tensors, selected(manifest))
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from smec_vdb.errors import ArtifactError

FORMAT = "smec-vdb-compressor"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MAX_MANIFEST_BYTES = 8 << 20
MAX_INPUT_DIM = 65_536
MAX_STAGES = 64
MAX_WEIGHTS_BYTES = 4 << 30


def identity_hash(method: str, input_dim: int, dims: list[int], config: Any, weights_sha256: str) -> str:
    """The short id of a compressor: sha256 over method, shapes, config and the weights' sha256."""
    ident = {"method": method, "input_dim": input_dim, "dims": dims, "config": config, "weights_sha256": weights_sha256}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]


def _read_inside(root: Path, name: Any, what: str, limit: int) -> bytes:
    """The bytes of ``root/name``: refused unless a regular file inside ``root`` of at most ``limit`` bytes."""
    if not isinstance(name, str) or not name or PurePosixPath(name).is_absolute() or ".." in PurePosixPath(name).parts:
        raise ArtifactError(f"compressor at {root}: {what} must be a relative file name inside the folder, found {name!r}")
    try:
        real = (root / name).resolve(strict=True)
        if not real.is_relative_to(root):
            raise ArtifactError(f"compressor at {root}: {what} {name!r} leads outside the folder")
        info = real.stat()
        if not stat.S_ISREG(info.st_mode):
            raise ArtifactError(f"compressor at {root}: {what} {name!r} is not a regular file")
        if info.st_size > limit:
            raise ArtifactError(f"compressor at {root}: {what} {name!r} is {info.st_size} bytes, more than {limit}")
        with open(os.open(real, os.O_RDONLY | os.O_NOFOLLOW), "rb") as f:
            return f.read(limit + 1)[:limit]
    except FileNotFoundError:
        raise ArtifactError(f"no compressor at {root}: {what} {name} is missing") from None
    except (OSError, RuntimeError) as e:  # RuntimeError: a symlink loop
        raise ArtifactError(f"cannot read compressor {what} {root / name}: {getattr(e, 'strerror', None) or e}") from None


def _check_manifest(manifest: Any, path: Path) -> dict[str, Any]:
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArtifactError(f"{path} is not a smec-vdb compressor manifest (expected format {FORMAT!r})")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(f"{path} has format version {manifest.get('format_version')}, "
                            f"this smec-vdb reads version {FORMAT_VERSION}")
    for key in ("method", "input_dim", "dims", "config", "weights_sha256"):
        if key not in manifest:
            raise ArtifactError(f"corrupt compressor manifest {path}: field {key!r} is missing")
    input_dim, dims = manifest["input_dim"], manifest["dims"]
    if type(input_dim) is not int or not 2 <= input_dim <= MAX_INPUT_DIM:
        raise ArtifactError(f"compressor manifest {path}: input_dim must be an integer in [2, {MAX_INPUT_DIM}]")
    if (not isinstance(dims, list) or not 1 <= len(dims) <= MAX_STAGES
            or any(type(d) is not int or not 0 < d < input_dim for d in dims)):
        raise ArtifactError(f"compressor manifest {path}: dims must be 1 to {MAX_STAGES} integers below input_dim")
    if not isinstance(manifest["config"], dict):
        raise ArtifactError(f"compressor manifest {path}: config must be an object")
    return manifest


def weights_limit(manifest: dict[str, Any]) -> int:
    """The most bytes the declared shapes can need: float64, one square input-wide matrix and vector per dim
    (the largest any method stores), plus a header; never more than :data:`MAX_WEIGHTS_BYTES`."""
    d = manifest["input_dim"]
    return min(MAX_WEIGHTS_BYTES, 8 * len(manifest["dims"]) * (d * d + d) + (1 << 20))


def read_arrays(directory: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(manifest, {tensor name: array}) of the compressor saved in ``directory`` (see module doc)."""
    from safetensors import SafetensorError
    from safetensors.numpy import load

    root = Path(directory).resolve()
    if not root.is_dir():
        raise ArtifactError(f"no compressor at {directory}: {MANIFEST} is missing")
    path = root / MANIFEST
    try:
        manifest = _check_manifest(json.loads(_read_inside(root, MANIFEST, "manifest", MAX_MANIFEST_BYTES)), path)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise ArtifactError(f"corrupt compressor manifest {path}: {str(e)[:200]}") from None
    data = _read_inside(root, manifest.get("weights_file", "weights.safetensors"), "weights", weights_limit(manifest))
    if hashlib.sha256(data).hexdigest() != manifest["weights_sha256"]:
        raise ArtifactError(f"compressor weights in {root} do not match the manifest hash (truncated or modified)")
    try:
        tensors = load(data)
    except (SafetensorError, ValueError) as e:
        raise ArtifactError(f"incompatible compressor at {root}: {str(e)[:200]}") from None
    return manifest, tensors


def manifest_identity(manifest: dict[str, Any]) -> str:
    """:func:`identity_hash` of a manifest read by :func:`read_arrays`."""
    return identity_hash(manifest["method"], manifest["input_dim"], manifest["dims"], manifest["config"],
                         manifest["weights_sha256"])


def selected(manifest: dict[str, Any]) -> dict[int, list[int]] | None:
    """The manifest's ``selected_indices`` keyed by dim (None when the method selects nothing)."""
    raw = manifest.get("selected_indices")
    if not isinstance(raw, dict):
        return None
    return {int(k): list(v) for k, v in raw.items()}
