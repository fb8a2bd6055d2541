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
