"""The cached-weights (numpy) encode path against torch's ``project`` path, method by method."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from smec_vdb.compress import numpy_encoder
from smec_vdb.compress.artifact import compressor_hash
from smec_vdb.compress.linear_maps import DERIVATIONS, NONLINEAR
from smec_vdb.compress.numpy_encoder import load_encoder
from smec_vdb.compress.registry import METHODS, method_class
from smec_vdb.errors import ArtifactError, DimensionError, InvalidVectorError

D, DIMS = 24, (12, 6, 3)
#: (method, constructor keyword arguments): every linear method, SMEC also with a stage reading the input
LINEAR = [("smec", {}), ("smec", {"sources": [0, 1, 0]}), ("pca", {}), ("select", {}), ("truncate", {}),
          ("linear-adaptor", {}), ("search-adaptor", {})]


def random_compressor(method: str, seed: int = 0, **kwargs):
    """An eval-mode compressor of ``method`` with random weights (and random kept indices)."""
    gen = torch.Generator().manual_seed(seed)
    comp = method_class(method)(D, DIMS, **kwargs)
    with torch.no_grad():
        for t in comp.state_dict().values():
            if t.is_floating_point():
                t.copy_(torch.randn(t.shape, generator=gen))
            else:  # selection: a random subset of the raw dims per level
                t.copy_(torch.sort(torch.randperm(D, generator=gen)[: t.numel()]).values)
    return comp.eval()


def test_every_registered_method_is_linear_or_declared_non_linear():
    assert set(METHODS) == set(DERIVATIONS) | NONLINEAR and not set(DERIVATIONS) & NONLINEAR


@pytest.mark.parametrize("method,kwargs", LINEAR, ids=[f"{m}{'-' + str(k) if k else ''}" for m, k in LINEAR])
@pytest.mark.parametrize("rows", [1, 5, 40, 300])
def test_numpy_and_torch_paths_agree_within_1e6(method, kwargs, rows, monkeypatch):
    comp = random_compressor(method, **kwargs)
    x = np.random.default_rng(rows).standard_normal((rows, D)).astype(np.float32)
    dims = [D, *DIMS]
    expected = comp.encode_torch(x, dims)
    encoder = comp.numpy_encoder()
    assert encoder is not None
    for gemm_rows in (numpy_encoder.TORCH_GEMM_ROWS, 10**9):  # torch's GEMM above the threshold, then numpy's
        monkeypatch.setattr(numpy_encoder, "TORCH_GEMM_ROWS", gemm_rows)
        got = encoder.encode_many(x, dims, chunk_rows=128)
        for d in dims:
            assert got[d].dtype == np.float32 and got[d].shape == (rows, d)
            assert np.abs(got[d] - expected[d]).max() <= 1e-6, (method, d)
    assert set(comp.encode_many(x, dims)) == set(dims)
    raw, raw_torch = encoder.encode_many(x, dims, normalize=False), comp.encode_torch(x, dims, normalize=False)
    for d in dims:  # un-normalised (a cosine search's query): the same rows up to their length
        assert np.abs(raw[d] - raw_torch[d]).max() <= 1e-5 * np.abs(raw_torch[d]).max()
        assert np.abs(raw[d] / np.linalg.norm(raw[d], axis=1, keepdims=True) - expected[d]).max() <= 1e-6


def test_non_linear_methods_and_training_encode_through_torch():
    mlp = random_compressor("linear-adaptor", hidden_dim=4)
    assert mlp.numpy_encoder() is None and random_compressor("matryoshka-adaptor").numpy_encoder() is None
    smec = random_compressor("smec").train()
    assert smec.numpy_encoder() is None  # weights move while training
    assert smec.eval().numpy_encoder() is not None


def test_the_cache_follows_loaded_weights_and_extensions():
    comp, other = random_compressor("smec", seed=1), random_compressor("smec", seed=2)
    x = np.random.default_rng(0).standard_normal((3, D)).astype(np.float32)
    before = comp.encode(x, 6)
    comp.load_state_dict(other.state_dict())
    assert not np.allclose(comp.encode(x, 6), before)
    np.testing.assert_array_equal(comp.encode(x, 6), other.encode(x, 6))
    comp.extend(2)
    assert comp.eval().encode(x, 2).shape == (3, 2)


@pytest.mark.parametrize("method", ["smec", "truncate", "pca"])
def test_bad_rows_give_the_same_error_on_both_paths(method):
    comp = random_compressor(method)
    good = np.random.default_rng(0).standard_normal((4, D)).astype(np.float32)
    nan_in_a_dropped_column, zeros = good.copy(), good.copy()
    nan_in_a_dropped_column[2, D - 1] = np.nan  # truncation never reads the last column
    zeros[1] = 0.0
    for bad, match in ((nan_in_a_dropped_column, "row 2 holds NaN"), (zeros, "row 1 is all zeros")):
        for encode in (comp.encode_many, comp.encode_torch):
            with pytest.raises(InvalidVectorError, match=match):
                encode(bad, [3])
    for row, match in ((nan_in_a_dropped_column[2], "row 0 holds NaN"), (zeros[1], "row 0 is all zeros")):
        for encode in (comp.encode_many, comp.encode_torch):  # one query: the single-row path
            with pytest.raises(InvalidVectorError, match=match):
                encode(row, [3])
    for encode in (comp.encode_many, comp.encode_torch):
        with pytest.raises(DimensionError, match="width 24"):
            encode(good[:, :5], [3])
        with pytest.raises(DimensionError, match="dim 4 is not trained"):
            encode(good, [4])
        with pytest.raises(InvalidVectorError, match="0 rows"):
            encode(good[:0], [3])


def test_a_saved_compressor_encodes_without_torch(tmp_path):
    comp = random_compressor("smec")
    comp.save(tmp_path / "c")
    x = np.random.default_rng(0).standard_normal((2, D)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    script = ("import sys, numpy as np; from smec_vdb.compress.numpy_encoder import load_encoder; "
              f"e = load_encoder({str(tmp_path / 'c')!r}); np.save({str(tmp_path / 'y.npy')!r}, "
              f"e.encode(np.load({str(tmp_path / 'x.npy')!r}), 6)); print(e.manifest_hash, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONWARNINGS": "ignore"}).stdout.split()
    assert out == [compressor_hash(comp), "False"]
    assert np.abs(np.load(tmp_path / "y.npy") - comp.encode_torch(x, [6])[6]).max() <= 1e-6


def test_untrusted_folders_are_refused_before_parsing(tmp_path):
    comp = random_compressor("pca")
    folder = comp.save(tmp_path / "c")
    manifest = (folder / "manifest.json").read_text()
    cases = {
        "outside": manifest.replace('"weights_file": "weights.safetensors"', '"weights_file": "../w.safetensors"'),
        "absolute": manifest.replace('"weights_file": "weights.safetensors"', '"weights_file": "/dev/zero"'),
        "symlink": manifest.replace('"weights_file": "weights.safetensors"', '"weights_file": "link"'),
    }
    (tmp_path / "w.safetensors").write_bytes((folder / "weights.safetensors").read_bytes())
    for name, text in cases.items():
        bad = tmp_path / name
        bad.mkdir()
        (bad / "manifest.json").write_text(text)
        (bad / "weights.safetensors").write_bytes((folder / "weights.safetensors").read_bytes())
        (bad / "link").symlink_to("/dev/zero")
        with pytest.raises(ArtifactError, match="inside the folder|outside the folder|not a regular file"):
            load_encoder(bad)
    (folder / "weights.safetensors").write_bytes(b"\0" + (folder / "weights.safetensors").read_bytes()[1:])
    with pytest.raises(ArtifactError, match="do not match the manifest hash"):
        load_encoder(folder)
