"""Saving and loading compressors: safetensors weights plus a JSON manifest.

Layout of a compressor directory::

    manifest.json         format, version, method, input dim, dims, config, selected dims,
                          training report, training-data fingerprint, weights sha256
    weights.safetensors   every tensor of the module's state_dict

**Saving never modifies a folder in place.** Both files are written into a new hidden folder beside
the destination (``.<name>.tmp-<random>``, each file fsynced, readable as the umask allows), which
is then renamed onto the destination in one step: a crash at any moment leaves the destination as
it was (absent, or the compressor it held) plus at most a leftover hidden folder. A destination
that already holds another compressor, or anything else, is refused; one that holds this very
compressor is left as it is.

**Loading treats the folder as untrusted input** and refuses, with an :class:`ArtifactError` and
before allocating anything sized by it: a manifest or weights file that is not a regular file
inside the folder (absolute paths, ``..``, symlinks leading out, devices, FIFOs); a manifest over
:data:`MAX_MANIFEST_BYTES`; an input dim over :data:`MAX_INPUT_DIM` or more than
:data:`MAX_STAGES` dims; declared tensors (the method's :meth:`~smec_vdb.compress.base.Compressor.tensor_shapes` of the config,
which allocates nothing) over :data:`MAX_WEIGHTS_BYTES` or larger than the weights file; a safetensors header whose length, dtypes, shapes or offsets disagree with those
tensors or the file. Only then is the file read (once), its sha256 checked and the tensors loaded.
Nothing in a folder is executed: JSON and safetensors only, the class found by name in
:mod:`smec_vdb.compress.registry`.

Example::

    comp.save("models/scifact")
    same = smec_vdb.load("models/scifact")
    assert same.manifest_hash == comp.manifest_hash and same.path == Path("models/scifact").resolve()
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import shutil
import stat
import struct
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from smec_vdb.atomic import fsync_dir, temporary_name, write_new
from smec_vdb.compress.base import Compressor, validate_schedule
from smec_vdb.compress.registry import method_class
from smec_vdb.errors import ArtifactError, ConfigError, SmecError

FORMAT = "smec-vdb-compressor"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
WEIGHTS = "weights.safetensors"
#: bounds on what a folder may declare, checked before anything sized by it is allocated
MAX_MANIFEST_BYTES = 8 << 20
MAX_INPUT_DIM = 65_536
MAX_STAGES = 64
MAX_WEIGHTS_BYTES = 4 << 30
MAX_HEADER_BYTES = 16 << 20
#: torch dtype → safetensors dtype name
_DTYPES = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
           torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
           torch.bool: "BOOL"}
_EMPTY = "_empty"  # the one tensor of a compressor without tensors (safetensors needs one)


def fingerprint_vectors(x: np.ndarray | torch.Tensor) -> str:
    """sha256 of a float32 matrix (shape + bytes): identifies the data a compressor was trained on."""
    arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    h = hashlib.sha256(f"{arr.shape}".encode())
    h.update(memoryview(arr).cast("B"))
    return "sha256:" + h.hexdigest()


def _weights_bytes(comp: Compressor) -> bytes:
    state = {k: v.detach().cpu().contiguous() for k, v in comp.state_dict().items()}
    return st_save(state) if state else st_save({_EMPTY: torch.zeros(0)})


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


def _identity(method: str, input_dim: int, dims: list[int], config: Any, weights_sha: str) -> str:
    ident = {"method": method, "input_dim": input_dim, "dims": dims, "config": config, "weights_sha256": weights_sha}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]


def compressor_hash(comp: Compressor) -> str:
    """A short stable id: sha256 over method, shapes, config and weights (not the training log)."""
    return _identity(comp.method, comp.input_dim, list(comp.dims), comp.config(),
                     hashlib.sha256(_weights_bytes(comp)).hexdigest())


def stored_hash(directory: str | Path) -> str:
    """The id of the compressor saved in ``directory``, from its manifest (the weights are not read)."""
    m = read_manifest(directory)
    return _identity(m["method"], m["input_dim"], m["dims"], m["config"], m["weights_sha256"])


def holds(directory: str | Path, comp_hash: str | None = None) -> bool:
    """Whether ``directory`` can take a compressor: False when it is absent or an empty folder, True when
    it already holds the compressor ``comp_hash`` (nothing to write); ArtifactError for anything else."""
    directory = Path(directory)
    if not directory.exists() and not directory.is_symlink():
        return False
    if directory.is_dir() and not any(directory.iterdir()):
        return False
    try:
        found = stored_hash(directory)
    except ArtifactError:
        found = None
    if found is not None and found == comp_hash:
        return True
    what = f"holds compressor {found}" if found else "is not an empty folder"
    raise ArtifactError(f"{directory} {what}: a compressor folder is never overwritten (collections record it "
                        "by hash); save to a new folder, or delete this one first")


def save(comp: Compressor, directory: str | Path) -> Path:
    """Write ``comp`` to the new folder ``directory`` (module doc); returns it. Sets ``comp.path``."""
    directory = Path(directory)
    weights = _weights_bytes(comp)
    weights_sha = hashlib.sha256(weights).hexdigest()
    comp_hash = _identity(comp.method, comp.input_dim, list(comp.dims), comp.config(), weights_sha)
    if not holds(directory, comp_hash):
        manifest = json.dumps(_manifest(comp, weights_sha), indent=2, sort_keys=True).encode()
        try:
            directory.parent.mkdir(parents=True, exist_ok=True)
            _publish(directory, {WEIGHTS: weights, MANIFEST: manifest}, comp_hash)
        except OSError as e:
            raise ArtifactError(f"cannot write compressor to {directory}: {e.strerror or e}") from e
    comp.path = directory.resolve()
    return directory


def _publish(directory: Path, files: dict[str, bytes], comp_hash: str) -> None:
    """Write ``files`` into a hidden new folder, then rename it onto ``directory`` in one step."""
    tmp = temporary_name(directory)
    try:
        os.mkdir(tmp)
        for name, data in files.items():
            write_new(tmp / name, data)
        fsync_dir(tmp)
        try:
            os.rename(tmp, directory)  # replaces an empty folder; fails on a non-empty one
        except OSError as e:
            if e.errno not in (errno.ENOTEMPTY, errno.EEXIST) or not holds(directory, comp_hash):
                raise
            shutil.rmtree(tmp)  # a concurrent writer saved this same compressor first
        fsync_dir(directory.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# -- loading ---------------------------------------------------------------------------
def _open_inside(root: Path, name: Any, what: str) -> tuple[BinaryIO, int]:
    """``root/name`` opened for reading, with its size: refused unless a regular file inside ``root``."""
    if not isinstance(name, str) or not name:
        raise ArtifactError(f"compressor at {root}: {what} must be a file name, found {name!r}")
    rel = PurePosixPath(name)
    if rel.is_absolute() or ".." in rel.parts or "\\" in name:
        raise ArtifactError(f"compressor at {root}: {what} {name!r} must be a relative path inside the folder")
    path = root / rel
    try:
        real = path.resolve(strict=True)
        if not real.is_relative_to(root):
            raise ArtifactError(f"compressor at {root}: {what} {name!r} leads outside the folder (to {real})")
        if not stat.S_ISREG(real.stat().st_mode):  # checked before opening: opening a device or FIFO can block
            raise ArtifactError(f"compressor at {root}: {what} {name!r} is not a regular file")
        f = open(os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK), "rb")
    except FileNotFoundError:
        raise ArtifactError(f"no compressor at {root}: {what} {name} is missing") from None
    except (OSError, RuntimeError) as e:  # RuntimeError: a symlink loop
        raise ArtifactError(f"cannot read compressor {what} {path}: {getattr(e, 'strerror', None) or e}") from e
    size = os.fstat(f.fileno()).st_size
    if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):  # replaced between the check and the open
        f.close()
        raise ArtifactError(f"compressor at {root}: {what} {name!r} is not a regular file")
    return f, size


def _read_exactly(f: BinaryIO, n: int, what: str) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise ArtifactError(f"{what} is truncated: expected {n} bytes, read {len(data)}")
    return data


def _folder(directory: str | Path) -> Path:
    root = Path(directory).resolve()
    if not root.is_dir():
        raise ArtifactError(f"no compressor at {directory}: {MANIFEST} is missing")
    return root


def read_manifest(directory: str | Path) -> dict[str, Any]:
    """Read and validate a compressor manifest (fields, types, bounds) without loading the weights."""
    root = _folder(directory)
    path = root / MANIFEST
    f, size = _open_inside(root, MANIFEST, "manifest")
    with f:
        if size > MAX_MANIFEST_BYTES:
            raise ArtifactError(f"compressor manifest {path} is {size} bytes, more than {MAX_MANIFEST_BYTES}")
        raw = f.read(MAX_MANIFEST_BYTES + 1)
    try:
        manifest = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise ArtifactError(f"corrupt compressor manifest {path}: {str(e)[:200]}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArtifactError(f"{path} is not a smec-vdb compressor manifest (expected format {FORMAT!r})")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(
            f"{path} has format version {manifest.get('format_version')}, this smec-vdb reads version {FORMAT_VERSION}"
        )
    for key in ("method", "input_dim", "dims", "config", "weights_sha256"):
        if key not in manifest:
            raise ArtifactError(f"corrupt compressor manifest {path}: field {key!r} is missing")
    _check_shapes(manifest, path)
    return manifest


def _check_shapes(manifest: dict[str, Any], path: Path) -> None:
    """Types and bounds of the declared shapes (before any of them sizes an allocation)."""
    input_dim, dims, config = manifest["input_dim"], manifest["dims"], manifest["config"]
    if type(input_dim) is not int or not 2 <= input_dim <= MAX_INPUT_DIM:
        raise ArtifactError(f"compressor manifest {path}: input_dim must be an integer in [2, {MAX_INPUT_DIM}], "
                            f"found {str(input_dim)[:40]}")
    if not isinstance(dims, list) or not 1 <= len(dims) <= MAX_STAGES or any(type(d) is not int for d in dims):
        raise ArtifactError(f"compressor manifest {path}: dims must be a list of 1 to {MAX_STAGES} integers, "
                            f"found {str(dims)[:80]}")
    try:
        validate_schedule(input_dim, dims)
    except ConfigError as e:
        raise ArtifactError(f"compressor manifest {path}: {e}") from None
    if not isinstance(config, dict) or config.get("input_dim", input_dim) != input_dim \
            or config.get("dims", dims) != dims:
        raise ArtifactError(f"compressor manifest {path}: config must be an object repeating input_dim and dims, "
                            f"found {str(config)[:120]}")
    sha = manifest["weights_sha256"]
    if not isinstance(sha, str) or len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise ArtifactError(f"compressor manifest {path}: weights_sha256 must be 64 hex digits")


def _declared_tensors(cls: type[Compressor], manifest: dict[str, Any], root: Path) -> dict[str, tuple[str, list[int]]]:
    """name → (safetensors dtype, shape) of the tensors the config declares (nothing allocated)."""
    try:
        shapes = cls.tensor_shapes(manifest["config"])
    except (SmecError, RuntimeError, KeyError, TypeError, ValueError, IndexError, OverflowError) as e:
        raise ArtifactError(f"incompatible compressor at {root}: {str(e)[:200]}") from None
    if not shapes:
        return {_EMPTY: ("F32", [0])}
    if any(dtype not in _DTYPES for dtype, _ in shapes.values()):
        raise ArtifactError(f"compressor at {root}: method {manifest['method']!r} has tensors of unsupported dtypes")
    return {k: (_DTYPES[dtype], list(shape)) for k, (dtype, shape) in shapes.items()}


def _nbytes(dtype: str, shape: list[int]) -> int:
    size = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}[dtype]
    return size * math.prod(shape)


def _check_header(header: Any, declared: dict[str, tuple[str, list[int]]], body: int, where: str) -> None:
    """The safetensors header names exactly the declared tensors, with their dtypes and shapes, laid out
    back to back over the whole body."""
    if not isinstance(header, dict):
        raise ArtifactError(f"{where}: the safetensors header is not a JSON object")
    header = {k: v for k, v in header.items() if k != "__metadata__"}
    if set(header) != set(declared):
        missing, extra = sorted(set(declared) - set(header)), sorted(set(header) - set(declared))
        raise ArtifactError(f"{where}: tensors do not match the config (missing {missing[:5]}, unexpected {extra[:5]})")
    spans = []
    for name, (dtype, shape) in declared.items():
        entry = header[name]
        if not isinstance(entry, dict) or entry.get("dtype") != dtype or entry.get("shape") != shape:
            found = (entry.get("dtype"), entry.get("shape")) if isinstance(entry, dict) else entry
            raise ArtifactError(f"{where}: tensor {name!r} is {str(found)[:80]}, the config needs {dtype} {shape}")
        offsets = entry.get("data_offsets")
        if (not isinstance(offsets, list) or len(offsets) != 2 or any(type(o) is not int for o in offsets)
                or offsets[1] - offsets[0] != _nbytes(dtype, shape)):
            raise ArtifactError(f"{where}: tensor {name!r} has data offsets {str(offsets)[:60]}, "
                                f"not a span of {_nbytes(dtype, shape)} bytes")
        spans.append(tuple(offsets))
    end = 0
    for start, stop in sorted(spans):
        if start != end:
            raise ArtifactError(f"{where}: tensor data overlaps or leaves a gap at byte {start}")
        end = stop
    if end != body:
        raise ArtifactError(f"{where}: tensors cover {end} bytes, the file holds {body} after the header")


def _read_weights(root: Path, manifest: dict[str, Any], declared: dict[str, tuple[str, list[int]]]) -> bytes:
    """The weights file's bytes, read once after its size and safetensors header passed the checks."""
    name = manifest.get("weights_file", WEIGHTS)
    f, size = _open_inside(root, name, "weights file")
    where = f"compressor weights {root / str(name)}"
    expected = sum(_nbytes(dtype, shape) for dtype, shape in declared.values())
    with f:
        if expected > MAX_WEIGHTS_BYTES:
            raise ArtifactError(f"{where}: the config declares {expected} bytes of tensors, more than {MAX_WEIGHTS_BYTES}")
        if size < 8 + expected:
            raise ArtifactError(f"{where}: the config declares {expected} bytes of tensors, the file holds {size}")
        prefix = _read_exactly(f, 8, where)
        (length,) = struct.unpack("<Q", prefix)
        if length > min(MAX_HEADER_BYTES, size - 8 - expected):
            raise ArtifactError(f"{where}: safetensors header length {length} does not fit the file ({size} bytes)")
        raw = _read_exactly(f, length, where)
        try:
            header = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            raise ArtifactError(f"{where}: the safetensors header is not JSON") from None
        _check_header(header, declared, size - 8 - length, where)
        data = prefix + raw + _read_exactly(f, size - 8 - length, where)
    if hashlib.sha256(data).hexdigest() != manifest["weights_sha256"]:
        raise ArtifactError(f"{where} do not match the manifest hash (truncated or modified)")
    return data


def load(directory: str | Path, *, device: str | torch.device = "cpu") -> Compressor:
    """Load a compressor saved by :func:`save`, checking it as untrusted input (module doc).
    ``comp.path`` is the folder it was loaded from."""
    root = _folder(directory)
    manifest = read_manifest(root)
    try:
        cls = method_class(manifest["method"])
    except (ConfigError, TypeError) as e:
        raise ArtifactError(f"unknown compressor method at {root}: {e}") from None
    declared = _declared_tensors(cls, manifest, root)
    data = _read_weights(root, manifest, declared)
    try:
        comp = cls.from_config(manifest["config"])
        state = st_load(data)
        state.pop(_EMPTY, None)
        comp.load_state_dict(state, strict=True)
    except (SmecError, SafetensorError, RuntimeError, KeyError, TypeError, ValueError) as e:
        raise ArtifactError(f"incompatible compressor at {root}: {str(e)[:200]}") from e
    if comp.input_dim != manifest["input_dim"] or list(comp.dims) != manifest["dims"]:
        raise ArtifactError(f"compressor at {root}: manifest says {manifest['input_dim']}->{manifest['dims']}, "
                            f"its config gives {comp.input_dim}->{list(comp.dims)}")
    comp.training_info = dict(manifest.get("training") or {})
    comp.path = root
    comp.eval()
    return comp.to(device)
