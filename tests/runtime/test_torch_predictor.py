"""Checkpoints through PyTorch: the same model, loaded from disk, behind the Predictor API."""
import numpy as np
import pytest
import torch

from mimic_edge.errors import CheckpointError, InputError
from mimic_edge.runtime import load


def test_matches_the_saved_model_exactly(artifacts, make_inputs):
    x = make_inputs(artifacts.model.config, batch=3, seq_lens=(20, 31, 9))
    with torch.no_grad():
        want = artifacts.model(*x).numpy()
    predictor = load(artifacts.checkpoint, device="cpu")
    np.testing.assert_array_equal(predictor.predict(*x), want)
    assert predictor.device.type == "cpu" and not predictor.model.training


def test_bad_torch_inputs(artifacts, make_inputs):
    text, audio, vision = make_inputs(artifacts.model.config, batch=2)
    predictor = load(artifacts.checkpoint, device="cpu")
    with pytest.raises(InputError, match=r"vision: expected feature dim 47, found 46"):
        predictor.predict(text, audio, vision[..., :46])
    with pytest.raises(InputError, match=r"audio: expected a floating dtype \(float32\), found int64"):
        predictor.predict(text, audio.long(), vision)


def test_missing_weights(artifacts, tmp_path):
    (tmp_path / "orphan.json").write_bytes(artifacts.checkpoint.with_suffix(".json").read_bytes())
    with pytest.raises(CheckpointError, match=r"checkpoint weights not found: expected .*orphan.safetensors"):
        load(tmp_path / "orphan.json")


def test_a_padded_batch_with_lengths_scores_each_sample_as_alone(artifacts):
    """A checkpoint takes lengths (the model masks padding); a modality left out counts every step.
    Bound: fp32's max_abs for any two fp32 runs of the model (export/precisions.py)."""
    from mimic_edge.export.precisions import PRECISIONS

    predictor = load(artifacts.checkpoint)
    assert predictor.takes_lengths
    rng = np.random.default_rng(0)
    x = [rng.standard_normal((3, 20, d), dtype=np.float32) for d in predictor.dims.values()]
    lengths = {"text": np.array([20, 7, 1]), "audio": np.array([3, 20, 11])}  # vision: all 20 valid
    padded = predictor.predict(*x, lengths=lengths)
    alone = np.concatenate([predictor.predict(x[0][i:i + 1, :lengths["text"][i]], x[1][i:i + 1, :lengths["audio"][i]],
                                              x[2][i:i + 1]) for i in range(3)])
    np.testing.assert_allclose(padded, alone, rtol=0, atol=PRECISIONS["fp32"].thresholds.max_abs)
