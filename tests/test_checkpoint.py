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


@pytest.mark.parametrize("weights_of, config_of, message", [
    (("mimic", "mosi-bert"), ("mimic", "mosi"), r"shape \(128, 768\), expected \(128, 300\)"),
    (("misa", "mosi-bert"), ("mimic", "mosi-bert"), "do not match the mimic config"),
])
def test_weights_that_do_not_fit_the_config_are_refused(tmp_path, weights_of, config_of, message):
    """Weights saved for one model/preset, with the JSON config of another."""
    save_checkpoint(build_model(*weights_of), tmp_path / "weights")
    save_checkpoint(build_model(*config_of), tmp_path / "config")
    _, weights_meta = checkpoint_paths(tmp_path / "weights")
    _, config_meta = checkpoint_paths(tmp_path / "config")
    weights_meta.write_text(config_meta.read_text())
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(tmp_path / "weights")


def test_unknown_config_field_is_refused(tmp_path):
    save_checkpoint(build_model("mimic"), tmp_path / "m")
    _, meta = checkpoint_paths(tmp_path / "m")
    data = json.loads(meta.read_text())
    data["config"]["mystery"] = 1
    meta.write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match="mystery"):
        load_checkpoint(tmp_path / "m")


def _edit_config(tmp_path, **changes):
    save_checkpoint(build_model("mimic"), tmp_path / "m")
    _, meta = checkpoint_paths(tmp_path / "m")
    data = json.loads(meta.read_text())
    data["config"].update(changes)
    meta.write_text(json.dumps(data))


@pytest.mark.parametrize("changes, message", [
    ({"lstm_hidden": -32, "d_model": -64}, r"m.json: invalid config: lstm_hidden: expected a positive integer, found -32"),
    ({"lstm_hidden": "32"}, r"invalid config: lstm_hidden: expected a positive integer, found '32' \(str\)"),
    ({"lstm_hidden": True}, r"invalid config: lstm_hidden: expected a positive integer, found True \(bool\)"),
    ({"preset": "nopreset"}, r"invalid config: unknown preset 'nopreset'"),
    # well typed but huge: refused by the shape check, before anything of that size is allocated
    ({"lstm_hidden": 10 ** 6, "d_model": 2 * 10 ** 6}, r"tensor \S+ has shape \(\d+, \d+\), expected \(4000000, 300\)"),
])
def test_config_values_are_checked_at_load(tmp_path, changes, message):
    _edit_config(tmp_path, **changes)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(tmp_path / "m")


def saved_with_edited_weights(folder, edit) -> None:
    """A MIMIC checkpoint `folder / "m"` whose safetensors file holds `edit(state)`'s state."""
    from safetensors.torch import load_file, save_file

    save_checkpoint(build_model("mimic"), folder / "m")
    weights, _ = checkpoint_paths(folder / "m")
    state = load_file(weights)
    edit(state)
    save_file(state, weights, metadata={"format_version": "1"})


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused(tmp_path, value):
    saved_with_edited_weights(tmp_path, lambda state: state["head.0.weight"][3, 5].fill_(value))
    with pytest.raises(CheckpointError, match=r"m.safetensors: expected finite weights, found NaN or Inf in 1 "
                                              r"tensor\(s\): \['head.0.weight'\]"):
        load_checkpoint(tmp_path / "m")


def test_a_missing_tensor_is_named(tmp_path):
    saved_with_edited_weights(tmp_path, lambda state: state.pop("gate.weight"))
    with pytest.raises(CheckpointError, match=r"m.safetensors: weights do not match the mimic config: "
                                              r"missing \['gate.weight'\], unexpected \[\]"):
        load_checkpoint(tmp_path / "m")


def test_format_version_must_be_the_integer(tmp_path):
    save_checkpoint(build_model("mimic"), tmp_path / "m")
    _, meta = checkpoint_paths(tmp_path / "m")
    meta.write_text(meta.read_text().replace('"format_version": 1', '"format_version": true'))
    with pytest.raises(CheckpointError, match=r"expected format_version 1, found True"):
        load_checkpoint(tmp_path / "m")
