"""Property tests of the checkpoint loader: whatever the files hold, a model or a CheckpointError.

The JSON is mutated (any field set to any JSON value, keys dropped or added, the text cut or a
byte changed) and the safetensors file truncated or bit-flipped. No other exception may escape
(no torch ValueError, no KeyError, no MemoryError from a huge size), and a model that loads
has finite weights.
"""
import json

import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from mimic_edge import build_model, load_checkpoint, save_checkpoint
from mimic_edge.checkpoint import checkpoint_paths
from mimic_edge.errors import CheckpointError

PROPERTY = settings(max_examples=60, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Any JSON value, and values close to valid ones (where checks are most likely to be missing).
NEAR_VALID = st.sampled_from([0, -1, -32, 1, 2, 3, 16, 32, 64, 128, 10 ** 6, 2 ** 31, 2 ** 63, 2 ** 80, 0.5, 1.0,
                              32.0, "32", "mosi", "mosi-bert", "mimic", "misa", "torch", "triton", True, False,
                              None, ["text"], ["audio", "audio"], [], {}, float("nan"), float("inf"), -0.0])
JSON_VALUES = st.one_of(NEAR_VALID, st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6))


class Saved(tuple):
    """(folder, original JSON text, original weights bytes); a short repr in failure reports."""

    def __repr__(self):
        return f"Saved({self[0]})"


@pytest.fixture(scope="module", params=[("mimic", "mosi"), ("misa", "mmsa-mosi")], ids=["mimic", "misa"])
def saved(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(0)
    save_checkpoint(build_model(*request.param), folder / "m")
    weights, meta = checkpoint_paths(folder / "m")
    return Saved((folder, meta.read_text(), weights.read_bytes()))


def load_or_checkpoint_error(folder, meta_text, weights_bytes):
    weights, meta = checkpoint_paths(folder / "m")
    meta.write_bytes(meta_text.encode() if isinstance(meta_text, str) else meta_text)
    weights.write_bytes(weights_bytes)
    try:
        model = load_checkpoint(folder / "m")
    except CheckpointError:
        event("CheckpointError")
        return
    event("loaded")
    assert all(torch.isfinite(t).all() for t in model.state_dict().values() if t.is_floating_point())


@st.composite
def mutated_json(draw, text):
    meta = json.loads(text)
    how = draw(st.sampled_from(["set config field", "set config field", "set top-level key", "drop a key",
                                "add a key", "cut the text", "change a byte"]))
    event(how)
    if how == "set config field":
        meta["config"][draw(st.sampled_from(sorted(meta["config"])))] = draw(JSON_VALUES)
    elif how == "set top-level key":
        meta[draw(st.sampled_from(sorted(meta)))] = draw(JSON_VALUES)
    elif how == "drop a key":
        where = meta if draw(st.booleans()) else meta["config"]
        del where[draw(st.sampled_from(sorted(where)))]
    elif how == "add a key":
        where = meta if draw(st.booleans()) else meta["config"]
        where[draw(st.text(max_size=8))] = draw(JSON_VALUES)
    else:
        raw = bytearray(text.encode())
        if how == "cut the text":
            return bytes(raw[:draw(st.integers(0, len(raw) - 1))])
        raw[draw(st.integers(0, len(raw) - 1))] = draw(st.integers(0, 255))
        return bytes(raw)
    return json.dumps(meta)


@PROPERTY
@given(data=st.data())
def test_any_json_gives_a_model_or_a_checkpoint_error(saved, data):
    folder, text, weights = saved
    load_or_checkpoint_error(folder, data.draw(mutated_json(text)), weights)


@st.composite
def damaged_weights(draw, blob):
    header_end = 8 + int.from_bytes(blob[:8], "little")  # safetensors: u64 header size, JSON header, data
    if draw(st.booleans()):
        event("truncated")
        return blob[:draw(st.integers(0, len(blob) - 1))]
    event("bits flipped")
    raw = bytearray(blob)
    for _ in range(draw(st.integers(1, 3))):
        # half the flips in the size and the JSON header, where they change the file's structure
        at = draw(st.integers(0, header_end - 1) if draw(st.booleans()) else st.integers(header_end, len(raw) - 1))
        raw[at] ^= 1 << draw(st.integers(0, 7))
    return bytes(raw)


@PROPERTY
@given(data=st.data())
def test_any_damaged_weights_give_a_model_or_a_checkpoint_error(saved, data):
    folder, text, weights = saved
    load_or_checkpoint_error(folder, text, data.draw(damaged_weights(weights)))

