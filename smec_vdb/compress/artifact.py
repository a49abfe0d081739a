"""Saving and loading compressors: safetensors weights plus a JSON manifest.

Layout of a compressor directory::

    manifest.json         format, version, method, input dim, dims, config, selected dims,
                          training report, training-data fingerprint, weights sha256
    weights.safetensors   every tensor of the module's state_dict

The weights are written first and the manifest last, each through a temporary file and an
atomic rename, so a crash never leaves a manifest pointing at half-written weights.
``load`` finds the class in :mod:`smec_vdb.compress.registry` and checks the format, the method, the weights' hash and every tensor's shape.

Example::

    comp.save("models/scifact")
    same = smec_vdb.load("models/scifact")
    assert same.manifest_hash == comp.manifest_hash
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from smec_vdb.atomic import atomic_write
from smec_vdb.compress.base import Compressor
from smec_vdb.compress.registry import method_class
from smec_vdb.errors import ArtifactError, ConfigError, SmecError

FORMAT = "smec-vdb-compressor"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
WEIGHTS = "weights.safetensors"

def fingerprint_vectors(x: np.ndarray | torch.Tensor) -> str:
    """sha256 of a float32 matrix (shape + bytes): identifies the data a compressor was trained on."""
    arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    h = hashlib.sha256(f"{arr.shape}".encode())
    h.update(memoryview(arr).cast("B"))
    return "sha256:" + h.hexdigest()


def _weights_bytes(comp: Compressor) -> bytes:
    state = {k: v.detach().cpu().contiguous() for k, v in comp.state_dict().items()}
    return st_save(state) if state else st_save({"_empty": torch.zeros(0)})


def _manifest(comp: Compressor, weights_sha: str) -> dict[str, Any]:
    selected = comp.selected_indices()
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "method": comp.method,
        "input_dim": comp.input_dim,
        "dims": list(comp.dims),
        "config": comp.config(),
        "selected_indices": None if selected is None else {str(k): v for k, v in selected.items()},
        "data_fingerprint": comp.training_info.get("data_fingerprint"),
        "training": comp.training_info,
        "weights_file": WEIGHTS,
        "weights_sha256": weights_sha,
    }


def compressor_hash(comp: Compressor) -> str:
    """A short stable id: sha256 over method, shapes, config and weights (not the training log)."""
    weights_sha = hashlib.sha256(_weights_bytes(comp)).hexdigest()
    ident = {"method": comp.method, "input_dim": comp.input_dim, "dims": list(comp.dims),
             "config": comp.config(), "weights_sha256": weights_sha}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]


def save(comp: Compressor, directory: str | Path) -> Path:
    """Write ``comp`` to ``directory`` (created if needed); returns the directory."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        weights = _weights_bytes(comp)
        manifest = _manifest(comp, hashlib.sha256(weights).hexdigest())
        atomic_write(directory / WEIGHTS, weights)
        atomic_write(directory / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True).encode())
    except OSError as e:
        raise ArtifactError(f"cannot write compressor to {directory}: {e.strerror or e}") from e
    return directory


def read_manifest(directory: str | Path) -> dict[str, Any]:
    """Read and validate a compressor manifest without loading the weights."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise ArtifactError(f"no compressor at {directory}: {MANIFEST} is missing")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ArtifactError(f"corrupt compressor manifest {path}: {e}") from e
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArtifactError(f"{path} is not a smec-vdb compressor manifest (expected format {FORMAT!r})")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(
            f"{path} has format version {manifest.get('format_version')}, this smec-vdb reads version {FORMAT_VERSION}"
        )
    for key in ("method", "input_dim", "dims", "config", "weights_sha256"):
        if key not in manifest:
            raise ArtifactError(f"corrupt compressor manifest {path}: field {key!r} is missing")
    return manifest


def load(directory: str | Path, *, device: str | torch.device = "cpu") -> Compressor:
    """Load a compressor saved by :func:`save`, verifying manifest, weights hash and tensor shapes."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    try:
        cls = method_class(manifest["method"])
    except ConfigError as e:
        raise ArtifactError(f"unknown compressor method at {directory}: {e}") from e
    weights_path = directory / manifest.get("weights_file", WEIGHTS)
    try:
        data = weights_path.read_bytes()
    except OSError as e:
        raise ArtifactError(f"cannot read compressor weights {weights_path}: {e.strerror or e}") from e
    if hashlib.sha256(data).hexdigest() != manifest["weights_sha256"]:
        raise ArtifactError(f"compressor weights {weights_path} do not match the manifest hash (truncated or modified)")
    try:
        comp = cls.from_config(manifest["config"])
        state = st_load(data)
        state.pop("_empty", None)
        comp.load_state_dict(state, strict=True)
    except SmecError as e:
        raise ArtifactError(f"incompatible compressor at {directory}: {e}") from e
    except (SafetensorError, RuntimeError, KeyError, TypeError, ValueError) as e:
        raise ArtifactError(f"incompatible compressor at {directory}: {e}") from e
    if comp.input_dim != manifest["input_dim"] or list(comp.dims) != list(manifest["dims"]):
        raise ArtifactError(
            f"compressor at {directory}: manifest says {manifest['input_dim']}->{manifest['dims']}, "
            f"weights give {comp.input_dim}->{list(comp.dims)}"
        )
    comp.training_info = dict(manifest.get("training") or {})
    comp.eval()
    return comp.to(device)
