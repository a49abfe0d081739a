"""`smec-vdb extend`: a smaller dim is added to a saved compressor whose stages moved in training;
its earlier outputs stay bit-identical."""

import numpy as np
import pytest
from typer.testing import CliRunner

import smec_vdb
from smec_vdb.cli.app import _register_commands, app
from smec_vdb.errors import ConfigError, DimensionError

from tests.conftest import SMEC_DIMS

_register_commands()


def test_extend_adds_a_dim_and_keeps_earlier_outputs_bit_identical(trained_smec, vectors, tmp_path):
    assert all(s["best_epoch"] > 0 for s in trained_smec.training_info["stages"])  # the stages moved
    trained_smec.save(tmp_path / "m")
    np.save(tmp_path / "x.npy", vectors)
    before = {d: trained_smec.encode(vectors, d) for d in SMEC_DIMS}
    result = CliRunner().invoke(app, ["extend", "--compressor", str(tmp_path / "m"), "--vectors", str(tmp_path / "x.npy"),
                                      "--dim", "2", "--out", str(tmp_path / "e"), "--epochs", "2", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "held-out" in result.output
    extended = smec_vdb.load(tmp_path / "e")
    assert extended.dims == (*SMEC_DIMS, 2)
    for d in SMEC_DIMS:
        assert np.array_equal(extended.encode(vectors, d), before[d])
    assert extended.encode(vectors, 2).shape == (len(vectors), 2)
    assert len(extended.training_info["stages"]) == len(SMEC_DIMS) + 1
    assert smec_vdb.load(tmp_path / "m").dims == SMEC_DIMS  # --out leaves the original alone


@pytest.mark.parametrize("dim, error", [(3, ConfigError), (5, ConfigError)])
def test_extend_rejects_dims_not_below_the_last(trained_smec, vectors, tmp_path, dim, error):
    trained_smec.save(tmp_path / "m")
    np.save(tmp_path / "x.npy", vectors)
    result = CliRunner().invoke(app, ["extend", "--compressor", str(tmp_path / "m"), "--vectors", str(tmp_path / "x.npy"),
                                      "--dim", str(dim), "--out", str(tmp_path / "e")])
    assert isinstance(result.exception, error), result.output


def test_extend_refuses_other_methods_and_other_widths(vectors, tmp_path):
    from smec_vdb.train import train

    train(vectors, [12, 6], method="pca").save(tmp_path / "pca")
    np.save(tmp_path / "x.npy", vectors)
    np.save(tmp_path / "narrow.npy", vectors[:, :10])
    result = CliRunner().invoke(app, ["extend", "--compressor", str(tmp_path / "pca"), "--vectors", str(tmp_path / "x.npy"), "--dim", "3",
                                      "--out", str(tmp_path / "e")])
    assert isinstance(result.exception, ConfigError) and "only SMEC" in str(result.exception)
    train(vectors, [12, 6], method="smec", config=__import__("smec_vdb.train.config", fromlist=["TrainConfig"]).TrainConfig(
        epochs=1, device="cpu")).save(tmp_path / "s")
    result = CliRunner().invoke(app, ["extend", "--compressor", str(tmp_path / "s"), "--vectors", str(tmp_path / "narrow.npy"), "--dim", "3",
                                      "--out", str(tmp_path / "e")])
    assert isinstance(result.exception, DimensionError)
