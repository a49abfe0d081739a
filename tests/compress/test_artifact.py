import json

import numpy as np
import pytest

import smec_vdb
from smec_vdb.compress.artifact import MANIFEST, WEIGHTS, read_manifest
from smec_vdb.errors import ArtifactError

from tests.conftest import SMEC_DIMS


def test_round_trip_keeps_encode_and_manifest_hash(trained_smec, vectors, tmp_path):
    trained_smec.save(tmp_path / "m")
    loaded = smec_vdb.load(tmp_path / "m")
    assert loaded.method == "smec" and loaded.dims == SMEC_DIMS and loaded.input_dim == trained_smec.input_dim
    assert loaded.manifest_hash == trained_smec.manifest_hash
    for d in SMEC_DIMS:
        assert np.array_equal(loaded.encode(vectors, d), trained_smec.encode(vectors, d))
    manifest = read_manifest(tmp_path / "m")
    assert manifest["selected_indices"] == {str(k): v for k, v in trained_smec.selected_indices().items()}
    assert manifest["data_fingerprint"].startswith("sha256:")
    assert [s["dim"] for s in manifest["training"]["stages"]] == list(SMEC_DIMS)
    assert manifest["training"]["config"]["seed"] == 3


def test_missing_directory_or_manifest(tmp_path):
    with pytest.raises(ArtifactError, match="missing"):
        smec_vdb.load(tmp_path / "nothing")


def test_truncated_weights(trained_smec, tmp_path):
    trained_smec.save(tmp_path)
    data = (tmp_path / WEIGHTS).read_bytes()
    (tmp_path / WEIGHTS).write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError, match="the file holds"):
        smec_vdb.load(tmp_path)


def test_corrupt_weights_with_matching_hash(trained_smec, tmp_path):
    import hashlib

    trained_smec.save(tmp_path)
    garbage = b"not a safetensors file"
    (tmp_path / WEIGHTS).write_bytes(garbage)
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    manifest["weights_sha256"] = hashlib.sha256(garbage).hexdigest()
    (tmp_path / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="the file holds 22"):
        smec_vdb.load(tmp_path)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda m: m.update(dims=[12, 6]), "repeating input_dim and dims"),
        (lambda m: m["config"].update(dims=[12, 6]), "repeating input_dim and dims"),
        (lambda m: m.update(dims=[6, 12, 3]), "strictly decreasing"),
        (lambda m: m["config"].update(use_ads="yes"), "incompatible"),
        (lambda m: m.update(method="nope"), "unknown compressor method"),
        (lambda m: m.update(format_version=99), "format version"),
        (lambda m: m.pop("weights_sha256"), "weights_sha256"),
        (lambda m: m.update(format="other"), "not a smec-vdb"),
    ],
)
def test_edited_manifest_is_rejected(trained_smec, tmp_path, edit, message):
    trained_smec.save(tmp_path)
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    edit(manifest)
    (tmp_path / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match=message):
        smec_vdb.load(tmp_path)


def test_unparseable_manifest(trained_smec, tmp_path):
    trained_smec.save(tmp_path)
    (tmp_path / MANIFEST).write_text("{not json")
    with pytest.raises(ArtifactError, match="corrupt"):
        smec_vdb.load(tmp_path)
