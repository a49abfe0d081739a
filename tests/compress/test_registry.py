"""The one method registry: every entry imports, fits, saves and loads under its own name."""

import subprocess
import sys

import numpy as np
import pytest

import smec_vdb
from smec_vdb.compress.base import Compressor
from smec_vdb.compress.registry import METHODS, known_methods, method_class
from smec_vdb.errors import ArtifactError, ConfigError
from smec_vdb.train import train
from smec_vdb.train.config import TrainConfig


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_registered_method_fits_saves_and_loads_by_name(name, vectors, tmp_path):
    cls = method_class(name)
    assert issubclass(cls, Compressor) and cls.method == name
    assert "fit" in vars(cls), f"{name} must implement fit itself"
    comp = train(vectors, [12, 6], method=name, config=TrainConfig(epochs=1, batch_size=64, memory_size=100,
                                                                    memory_topk=8, device="cpu"))
    assert [s["dim"] for s in comp.training_info["stages"]][-1] == 6 or len(comp.training_info["stages"]) == 1
    comp.save(tmp_path / name)
    same = smec_vdb.load(tmp_path / name)
    assert type(same) is cls
    np.testing.assert_array_equal(same.encode(vectors, 6), comp.encode(vectors, 6))


def test_unknown_names_are_config_errors_naming_the_known_ones():
    with pytest.raises(ConfigError, match="known: " + ", ".join(known_methods())):
        method_class("mrl")


def test_a_broken_registry_entry_is_caught(monkeypatch):
    monkeypatch.setitem(METHODS, "pca", "smec_vdb.baselines.truncation:TruncationCompressor")
    with pytest.raises(ConfigError, match="whose method is 'truncate'"):
        method_class("pca")


def test_load_reports_an_unregistered_method_as_an_artifact_error(vectors, tmp_path):
    import json

    train(vectors, [6], method="pca").save(tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["method"] = "mrl"
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="unknown method 'mrl'"):
        smec_vdb.load(tmp_path)


@pytest.mark.parametrize("module", ["registry", "artifact", "smec", "selection", "ads", "base"])
def test_the_compress_package_imports_neither_the_baselines_nor_the_trainer(module):
    """No import cycle compress ↔ baselines ↔ train: compress reaches them only lazily, inside ``fit``."""
    code = (f"import sys; import smec_vdb.compress.{module}; "
            "print(sorted(m for m in sys.modules if m.startswith(('smec_vdb.baselines', 'smec_vdb.train'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]", out
