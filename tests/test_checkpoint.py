"""Checkpoints: safetensors + JSON round trip, and clear errors for bad files."""
import json

import pytest
import torch

from mimic_edge import build_model, load_checkpoint, save_checkpoint
from mimic_edge.checkpoint import checkpoint_paths
from mimic_edge.errors import CheckpointError


@pytest.mark.parametrize("name, preset, overrides", [("mimic", "mosi", {}), ("mimic", "mmsa-mosi", {"out_dim": 3}),
                                                     ("misa", "mosi-bert", {})])
def test_round_trip_gives_identical_outputs(tmp_path, make_inputs, name, preset, overrides):
    model = build_model(name, preset, **overrides).eval()
    save_checkpoint(model, tmp_path / "ckpt")
    loaded = load_checkpoint(tmp_path / "ckpt.safetensors")
    assert loaded.config == model.config
    inputs = make_inputs(model.config, 3, (7, 5, 6))
    with torch.no_grad():
        assert torch.equal(loaded(*inputs), model(*inputs))


def test_files_are_safetensors_and_json_not_pickle(tmp_path):
    save_checkpoint(build_model("mimic"), tmp_path / "m")
    weights, meta = checkpoint_paths(tmp_path / "m")
    assert weights.read_bytes()[8:9] == b"{"  # safetensors: 8-byte header size, then JSON
    assert json.loads(meta.read_text())["model"] == "mimic"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.safetensors"]  # no temp files left


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope")


def test_corrupt_weights(tmp_path):
    save_checkpoint(build_model("mimic"), tmp_path / "m")
    weights, _ = checkpoint_paths(tmp_path / "m")
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(tmp_path / "m")


def test_corrupt_json(tmp_path):
    save_checkpoint(build_model("mimic"), tmp_path / "m")
    _, meta = checkpoint_paths(tmp_path / "m")
    meta.write_text("{not json")
    with pytest.raises(CheckpointError, match="unreadable"):
        load_checkpoint(tmp_path / "m")


def test_weights_of_another_preset_are_refused(tmp_path):
    save_checkpoint(build_model("mimic", "mosi-bert"), tmp_path / "bert")
    save_checkpoint(build_model("mimic", "mosi"), tmp_path / "glove")
    _, bert_meta = checkpoint_paths(tmp_path / "bert")
    _, glove_meta = checkpoint_paths(tmp_path / "glove")
    bert_meta.write_text(glove_meta.read_text())  # config says mosi, weights are mosi-bert
    with pytest.raises(CheckpointError, match=r"shape \(128, 768\), expected \(128, 300\)"):
        load_checkpoint(tmp_path / "bert")


def test_weights_of_another_model_are_refused(tmp_path):
    save_checkpoint(build_model("misa", "mosi-bert"), tmp_path / "misa")
    save_checkpoint(build_model("mimic", "mosi-bert"), tmp_path / "mimic")
    _, misa_meta = checkpoint_paths(tmp_path / "misa")
    _, mimic_meta = checkpoint_paths(tmp_path / "mimic")
    misa_meta.write_text(mimic_meta.read_text())
    with pytest.raises(CheckpointError, match="do not match the mimic config"):
        load_checkpoint(tmp_path / "misa")


def test_unknown_config_field_is_refused(tmp_path):
    save_checkpoint(build_model("mimic"), tmp_path / "m")
    _, meta = checkpoint_paths(tmp_path / "m")
    data = json.loads(meta.read_text())
    data["config"]["mystery"] = 1
    meta.write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match="mystery"):
        load_checkpoint(tmp_path / "m")
