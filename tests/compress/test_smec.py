import numpy as np
import pytest
import torch

from smec_vdb.compress.smec import SMECCompressor
from smec_vdb.errors import ConfigError, DimensionError, InvalidVectorError
from smec_vdb.train.smrl import extend_smec

from tests.conftest import INPUT_DIM, SMEC_DIMS


def test_untrained_compressor_equals_pca_axes_applied_without_centring(vectors):
    comp = SMECCompressor.from_pca(torch.from_numpy(vectors), SMEC_DIMS).eval()
    x = vectors.astype(np.float64)
    _, _, vt = np.linalg.svd(x - x.mean(axis=0), full_matrices=False)
    for d in SMEC_DIMS:
        pca = x @ vt[:d].T
        pca /= np.linalg.norm(pca, axis=1, keepdims=True)
        np.testing.assert_allclose(np.abs(comp.encode(vectors, d)), np.abs(pca), atol=1e-4)


def test_encode_shapes_normalisation_and_nested_selection(trained_smec, vectors):
    for d in SMEC_DIMS:
        out = trained_smec.encode(vectors, d)
        assert out.shape == (len(vectors), d) and out.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    sel = trained_smec.selected_indices()
    assert [len(sel[d]) for d in SMEC_DIMS] == list(SMEC_DIMS)
    assert all(max(sel[d]) < prev for d, prev in zip(SMEC_DIMS, (INPUT_DIM, *SMEC_DIMS)))


def test_encode_is_one_composed_map_equal_to_the_stage_chain(trained_smec, vectors):
    x = torch.from_numpy(vectors)
    z = x
    for d, stage in zip(SMEC_DIMS, trained_smec.stages):
        z = stage(z)  # eval mode: deterministic top-k
        np.testing.assert_allclose(trained_smec.project(x, d).numpy(), z.detach().numpy(), atol=1e-5)


def test_streamed_chunks_match_one_batch(trained_smec, vectors):
    np.testing.assert_allclose(trained_smec.encode(vectors, 6, chunk_rows=7), trained_smec.encode(vectors, 6), atol=1e-6)


def test_torch_and_float16_input_are_accepted(trained_smec, vectors):
    ref = trained_smec.encode(vectors, 3)
    # a torch tensor takes torch's GEMM, an array the numpy encoder's: float32 sums of 384 terms in two
    # orders differ by a few ulp of the result (relative 1e-5 holds; an absolute 1e-6 failed once at 1.1e-6)
    np.testing.assert_allclose(trained_smec.encode(torch.from_numpy(vectors), 3), ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(trained_smec.encode(vectors.astype(np.float16), 3), ref, atol=5e-2)


def test_extension_keeps_earlier_outputs_bit_identical(trained_smec, vectors, smec_config):
    before = {d: trained_smec.encode(vectors, d) for d in SMEC_DIMS}
    weights = {k: v.clone() for k, v in trained_smec.state_dict().items()}
    clone = SMECCompressor.from_config(trained_smec.config())
    clone.load_state_dict(trained_smec.state_dict())
    extended = extend_smec(clone, vectors, 2, smec_config)
    assert extended.dims == (*SMEC_DIMS, 2)
    for d in SMEC_DIMS:
        assert np.array_equal(extended.encode(vectors, d), before[d])
    for k, v in weights.items():
        assert torch.equal(extended.state_dict()[k], v)
    assert extended.encode(vectors, 2).shape == (len(vectors), 2)
    assert len(extended.training_info["stages"]) == 1


@pytest.mark.parametrize("bad", [5, 4, 0])
def test_extend_rejects_dims_not_below_the_last(bad):
    comp = SMECCompressor(8, [6, 4])
    with pytest.raises(ConfigError):
        comp.extend(bad)


@pytest.mark.parametrize("dims", [[], [8], [12], [4, 6], [6, 6], [6, 0]])
def test_bad_schedules_are_config_errors(dims):
    with pytest.raises(ConfigError):
        SMECCompressor(8, dims)


def test_encode_errors(trained_smec, vectors):
    with pytest.raises(DimensionError, match="width"):
        trained_smec.encode(vectors[:, :10], 6)
    with pytest.raises(DimensionError, match="not trained"):
        trained_smec.encode(vectors, 5)
    with pytest.raises(InvalidVectorError, match="0 rows"):
        trained_smec.encode(vectors[:0], 6)
    for bad in (np.nan, np.inf):
        x = vectors[:4].copy()
        x[2, 1] = bad
        with pytest.raises(InvalidVectorError, match="row 2"):
            trained_smec.encode(x, 6)
    with pytest.raises(InvalidVectorError, match="all zeros"):
        trained_smec.encode(np.zeros((2, INPUT_DIM), np.float32), 6)
    with pytest.raises(DimensionError):
        trained_smec.encode(vectors[None], 6)


def test_from_config_rejects_malformed_configs():
    with pytest.raises(ConfigError):
        SMECCompressor.from_config({"input_dim": 8, "dims": [4]})
    with pytest.raises(ConfigError):
        SMECCompressor.from_config({"input_dim": 8, "dims": "4", "use_ads": True})
