"""docs/design.md §9: each bad input gets one clear error naming what was expected and found."""
import numpy as np
import pytest
import torch

from mimic_edge.errors import InputError
from mimic_edge.input_checks import check_inputs

DIMS = {"text": 300, "audio": 74, "vision": 47}


def good(batch=2, lens=(5, 4, 3), lib=np):
    zeros = np.zeros if lib is np else torch.zeros
    return {m: zeros((batch, n, DIMS[m]), dtype=lib.float32) for m, n in zip(DIMS, lens)}


@pytest.mark.parametrize("lib", [np, torch])
def test_good_inputs_return_batch(lib):
    assert check_inputs(good(3, lib=lib), DIMS) == 3


@pytest.mark.parametrize("change, message", [
    (lambda x: x.update(audio=np.zeros((2, 4, 70), np.float32)), r"audio: expected feature dim 74, found 70"),
    (lambda x: x.update(text=np.zeros((5, 300), np.float32)), r"text: expected rank 3 .* found shape \(5, 300\)"),
    (lambda x: x.update({m: np.zeros((0, 4, d), np.float32) for m, d in DIMS.items()}), r"empty batch"),
    (lambda x: x.update(vision=np.zeros((2, 0, 47), np.float32)), r"vision: empty sequence"),
    (lambda x: x.update(vision=np.zeros((3, 3, 47), np.float32)), r"batch sizes differ: expected 2 .* found 3 for vision"),
    (lambda x: x.update(text=np.zeros((2, 5, 300), np.int64)), r"text: expected a floating dtype \(float32\), found int64"),
    (lambda x: x["audio"].__setitem__((0, 0, 0), np.nan), r"audio: found NaN or Inf"),
    (lambda x: x["vision"].__setitem__((1, 2, 3), np.inf), r"vision: found NaN or Inf"),
    (lambda x: x.pop("vision"), r"missing input\(s\) \['vision'\]"),
    (lambda x: x.update(text=[[1.0]]), r"text: expected a numpy array or torch tensor, found list"),
])
def test_bad_inputs(change, message):
    inputs = good()
    change(inputs)
    with pytest.raises(InputError, match=message):
        check_inputs(inputs, DIMS)


def test_nan_in_torch_tensor():
    inputs = good(lib=torch)
    inputs["text"][0, 0, 0] = float("nan")
    with pytest.raises(InputError, match="text: found NaN"):
        check_inputs(inputs, DIMS)


def test_sequence_outside_profile():
    with pytest.raises(InputError, match=r"text: seq_len 5 is outside the supported range \[1, 4\]"):
        check_inputs(good(), DIMS, seq_range={"text": (1, 4)})


def test_bad_lengths():
    with pytest.raises(InputError, match=r"lengths\[audio\]: expected values in \[1, 4\], found \[0, 4\]"):
        check_inputs(good(), DIMS, lengths={"audio": np.array([0, 4])})
    with pytest.raises(InputError, match=r"lengths\[text\]: expected shape \(2,\)"):
        check_inputs(good(), DIMS, lengths={"text": np.array([1, 2, 3])})


@pytest.mark.parametrize("lib", [np, torch])
@pytest.mark.parametrize("m", list(DIMS))
def test_float64_beyond_float32_range_is_refused(lib, m):
    """1e39 is finite in float64 and inf once cast to float32, which every runtime does."""
    inputs = {k: v.astype(np.float64) for k, v in good().items()}
    inputs[m][1, 2, 3] = -1e39
    if lib is torch:
        inputs = {k: torch.from_numpy(v) for k, v in inputs.items()}
    with pytest.raises(InputError, match=rf"{m}: found values beyond float32's range \(max \|x\| 1e\+39 > 3.4e\+38\): "
                                         r"expected features finite as float32"):
        check_inputs(inputs, DIMS)


def test_float64_within_float32_range_passes():
    inputs = {k: v.astype(np.float64) for k, v in good().items()}
    inputs["text"][0, 0, 0] = float(np.finfo(np.float32).max)  # the largest float32: still finite
    assert check_inputs(inputs, DIMS) == 2


@pytest.mark.parametrize("m", list(DIMS))
@pytest.mark.parametrize("delta", [-1, 1])
def test_feature_dim_is_checked_for_each_modality(m, delta):
    inputs = good()
    inputs[m] = np.zeros((2, 3, DIMS[m] + delta), np.float32)
    with pytest.raises(InputError, match=rf"^{m}: expected feature dim {DIMS[m]}, found {DIMS[m] + delta} "):
        check_inputs(inputs, DIMS)
