"""Loading an untrusted compressor folder (issue 22, finding 6): each crafted folder is refused with a
one-line ArtifactError, quickly, with bounded memory, before anything sized by it is allocated.

All folders are loaded in one subprocess whose address space is capped (1 GiB above what it holds after
importing torch and loading a valid compressor), so an attack that still allocates fails there instead of
on the machine; the subprocess reports, per folder, the error, the seconds and its peak-RSS growth.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from smec_vdb.compress.artifact import MANIFEST, MAX_INPUT_DIM, MAX_MANIFEST_BYTES, WEIGHTS

#: per folder: at most this much peak-RSS growth, and this many seconds
MAX_RSS_GROWTH_MB = 64
MAX_SECONDS = 1.0

DRIVER = r"""
import json, resource, signal, sys, time
import torch
torch.set_num_threads(1)
import smec_vdb
from smec_vdb.compress.artifact import load

folders = json.loads(sys.argv[1])
load(folders.pop("valid"))  # warm: every lazy import and allocation of a normal load happens here
def status_kb(field):  # /proc, not getrusage: a child's ru_maxrss starts at its parent's peak
    return int(next(l for l in open("/proc/self/status") if l.startswith(field + ":")).split()[1])
def peak_mb():
    return status_kb("VmHWM") / 1024
vm = status_kb("VmSize") * 1024
resource.setrlimit(resource.RLIMIT_AS, (vm + (1 << 30), resource.RLIM_INFINITY))
def too_slow(*_):
    raise TimeoutError("no answer after 10 s")
signal.signal(signal.SIGALRM, too_slow)
results = {}
for name, folder in folders.items():
    before, t0 = peak_mb(), time.perf_counter()
    signal.alarm(10)
    try:
        load(folder)
        error, message = None, "loaded"
    except BaseException as e:
        error, message = type(e).__name__, str(e)
    signal.alarm(0)
    results[name] = {"error": error, "message": message, "seconds": time.perf_counter() - t0,
                     "rss_growth_mb": peak_mb() - before}
print(json.dumps(results))
"""


def _safetensors(tensors: dict[str, tuple[str, list[int], bytes]], *, length: int | None = None) -> bytes:
    """Hand-made safetensors bytes: name → (dtype, shape, data), laid out in order; ``length`` overrides
    the 8-byte header length."""
    header, body = {}, b""
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(body), len(body) + len(data)]}
        body += data
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if length is None else length) + raw + body


def _manifest(folder: Path) -> dict:
    return json.loads((folder / MANIFEST).read_text())


def _write(folder: Path, manifest: dict, weights: bytes | None = None) -> Path:
    """``folder`` with ``manifest`` (its weights_sha256 matching ``weights``, when given: a crafted folder
    passes the hash check, so what refuses it is the structural check under test)."""
    folder.mkdir(parents=True, exist_ok=True)
    if weights is not None:
        (folder / WEIGHTS).write_bytes(weights)
        manifest = {**manifest, "weights_sha256": hashlib.sha256(weights).hexdigest()}
    (folder / MANIFEST).write_text(json.dumps(manifest))
    return folder


def _smec_manifest(input_dim: int, dims: list[int]) -> dict:
    return {"format": "smec-vdb-compressor", "format_version": 1, "method": "smec", "input_dim": input_dim,
            "dims": dims, "config": {"input_dim": input_dim, "dims": dims, "use_ads": True}, "weights_file": WEIGHTS}


def craft(root: Path) -> dict[str, tuple[Path, str]]:
    """name → (folder, the message it must be refused with)."""
    from smec_vdb.compress.smec import SMECCompressor

    valid = SMECCompressor(16, [8, 4]).save(root / "valid")
    other = SMECCompressor(16, [8, 4], use_ads=False).save(root / "other")
    good = _manifest(valid)
    weights = (valid / WEIGHTS).read_bytes()
    attacks: dict[str, tuple[Path, str]] = {}

    def add(name: str, message: str, manifest: dict | None = None, weights_bytes: bytes | None = None) -> Path:
        folder = _write(root / name, manifest or good, weights if weights_bytes is None and manifest is None else weights_bytes)
        attacks[name] = (folder, message)
        return folder

    # finding 6: weights_file "/dev/zero", or a symlink to it
    add("weights_is_dev_zero", "must be a relative path inside the folder", {**good, "weights_file": "/dev/zero"})
    folder = add("weights_symlink_to_dev_zero", "leads outside the folder")
    (folder / WEIGHTS).unlink()
    (folder / WEIGHTS).symlink_to("/dev/zero")
    # finding 6: a small manifest declaring 12000 → [11999, 11998, 11997] (1.87 GB), and 100k (40 GB)
    small = _safetensors({"x": ("F32", [1], b"\0\0\0\0")})
    add("declares_12000_wide_stages", "the config declares .* bytes of tensors, the file holds",
        _smec_manifest(12000, [11999, 11998, 11997]), small)
    add("declares_input_dim_100k", f"input_dim must be an integer in \\[2, {MAX_INPUT_DIM}\\]",
        _smec_manifest(100_000, [99_999]), small)
    # finding 6: weights_file pointing outside the folder: ../other (it loaded another compressor), absolute,
    # or a symlink leading out (to a regular file)
    other_manifest = _manifest(other)
    add("weights_dotdot_other", "must be a relative path inside the folder",
        {**other_manifest, "weights_file": "../other/weights.safetensors"})
    add("weights_absolute_other", "must be a relative path inside the folder",
        {**other_manifest, "weights_file": str(other / WEIGHTS)})
    folder = add("weights_symlink_out", "leads outside the folder", other_manifest)
    (folder / WEIGHTS).unlink(missing_ok=True)
    (folder / WEIGHTS).symlink_to(other / WEIGHTS)
    # more: a FIFO (reading it blocks), a folder, a symlink loop, as the weights
    folder = add("weights_is_fifo", "is not a regular file")
    (folder / WEIGHTS).unlink()
    os.mkfifo(folder / WEIGHTS)
    folder = add("weights_is_a_folder", "is not a regular file")
    (folder / WEIGHTS).unlink()
    (folder / WEIGHTS).mkdir()
    folder = add("weights_symlink_loop", "cannot read compressor weights file")
    (folder / WEIGHTS).unlink()
    (folder / WEIGHTS).symlink_to(folder / WEIGHTS)
    # the manifest itself: a symlink to /dev/zero, a FIFO, over the size bound, nested without end
    folder = root / "manifest_symlink_to_dev_zero"
    folder.mkdir()
    (folder / MANIFEST).symlink_to("/dev/zero")
    attacks[folder.name] = (folder, "leads outside the folder")
    folder = root / "manifest_is_fifo"
    folder.mkdir()
    os.mkfifo(folder / MANIFEST)
    attacks[folder.name] = (folder, "is not a regular file")
    add("manifest_too_large", f"more than {MAX_MANIFEST_BYTES}", {**good, "training": {"pad": "x" * MAX_MANIFEST_BYTES}})
    folder = root / "manifest_nested_without_end"
    folder.mkdir()
    (folder / MANIFEST).write_text("[" * 1_000_000)
    attacks[folder.name] = (folder, "corrupt compressor manifest")
    # more: a config whose hidden layer is huge (a baseline method), too many stages, a non-integer width
    add("config_hidden_dim_huge", "the config declares .* bytes of tensors",
        {**good, "method": "matryoshka-adaptor", "config": {"input_dim": 16, "dims": [8, 4], "hidden_dim": 10**9}},
        small)
    many = list(range(200, 0, -1))
    add("declares_200_stages", "dims must be a list of 1 to", _smec_manifest(201, many), small)
    add("input_dim_is_a_float", "input_dim must be an integer", _smec_manifest(16, [8, 4]) | {"input_dim": 1e9}, small)
    # the safetensors header: a length of 2^62, shapes that are not the config's, overlapping offsets
    add("header_length_2_to_62", "header length .* does not fit the file", None,
        struct.pack("<Q", 1 << 62) + weights[8:])
    tensors = _header_tensors(weights)
    lying = {**tensors, "stages.0.weight": ("F32", [100_000, 100_000], tensors["stages.0.weight"][2])}
    add("header_shape_100k_squared", "the config needs F32 \\[16, 16\\]", None, _safetensors(lying))
    add("header_offsets_overlap", "overlaps or leaves a gap", None, _overlapping(tensors))
    return {"valid": (valid, ""), **attacks}


def _header_tensors(data: bytes) -> dict[str, tuple[str, list[int], bytes]]:
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    return {k: (v["dtype"], v["shape"], body[v["data_offsets"][0]:v["data_offsets"][1]])
            for k, v in header.items() if k != "__metadata__"}


def _overlapping(tensors: dict[str, tuple[str, list[int], bytes]]) -> bytes:
    """Every tensor's offsets start at 0 (all alias one span), padded so the sizes still add up."""
    data = _safetensors(tensors)
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    for entry in header.values():
        size = entry["data_offsets"][1] - entry["data_offsets"][0]
        entry["data_offsets"] = [0, size]
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data[8 + n:]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, tuple[dict, str]]:
    root = tmp_path_factory.mktemp("attacks")
    folders = craft(root)
    proc = subprocess.run([sys.executable, "-c", DRIVER, json.dumps({k: str(v[0]) for k, v in folders.items()})],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    return {name: (results[name], folders[name][1]) for name in results}


ATTACKS = [
    "weights_is_dev_zero", "weights_symlink_to_dev_zero", "declares_12000_wide_stages", "declares_input_dim_100k",
    "weights_dotdot_other", "weights_absolute_other", "weights_symlink_out", "weights_is_fifo",
    "weights_is_a_folder", "weights_symlink_loop", "manifest_symlink_to_dev_zero", "manifest_is_fifo",
    "manifest_too_large", "manifest_nested_without_end", "config_hidden_dim_huge", "declares_200_stages",
    "input_dim_is_a_float", "header_length_2_to_62", "header_shape_100k_squared", "header_offsets_overlap",
]


@pytest.mark.parametrize("attack", ATTACKS)
def test_a_crafted_folder_is_refused_in_one_line_quickly_with_bounded_memory(outcomes, attack):
    import re

    result, expected = outcomes[attack]
    assert result["error"] == "ArtifactError", result
    assert "\n" not in result["message"] and re.search(expected, result["message"]), result["message"]
    assert result["seconds"] < MAX_SECONDS, result
    assert result["rss_growth_mb"] < MAX_RSS_GROWTH_MB, result


def test_the_suite_covers_every_crafted_folder(outcomes):
    assert sorted(outcomes) == sorted(ATTACKS)


def test_the_memory_probe_sees_an_allocation(tmp_path):
    """The RSS measure the suite relies on registers a 200 MB touch (so a 1.87 GB one cannot pass)."""
    probe = ("import numpy as np\n"
             "def peak(): return int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM:')).split()[1])\n"
             "before = peak(); x = np.ones(50_000_000, dtype=np.float32); print((peak() - before) / 1024)")
    grown = float(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout)
    assert grown > MAX_RSS_GROWTH_MB


def test_a_valid_folder_still_loads_and_remembers_its_path(tmp_path):
    import smec_vdb
    from smec_vdb.compress.smec import SMECCompressor

    comp = SMECCompressor(16, [8, 4])
    comp.save(tmp_path / "c")
    loaded = smec_vdb.load(tmp_path / "c")
    assert loaded.manifest_hash == comp.manifest_hash and loaded.path == (tmp_path / "c").resolve()


@pytest.mark.parametrize("method", ["smec", "pca", "select", "matryoshka-adaptor", "search-adaptor", "linear-adaptor",
                                    "truncate"])
def test_the_declared_tensors_are_those_the_config_builds(method):
    """``tensor_shapes`` (SMEC's computed directly) names exactly the tensors ``from_config`` allocates."""
    from smec_vdb.compress.registry import method_class

    cls = method_class(method)
    configs = [{"input_dim": 16, "dims": [8, 4]}]
    if method == "smec":
        configs = [{**configs[0], "use_ads": ads, **extra} for ads in (True, False)
                   for extra in ({}, {"sources": [0, 0]}, {"sources": [0, 1]})]
    for config in configs:
        built = cls.from_config(config).state_dict()
        assert cls.tensor_shapes(config) == {k: (t.dtype, tuple(t.shape)) for k, t in built.items()}, config
