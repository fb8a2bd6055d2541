"""Property tests of `Predictor.predict`: for any input, the package's own error or the right scores.

Inputs vary in library (numpy, torch), dtype, rank, shape, memory layout (Fortran order, strides,
reversed, broadcast) and values (tiny, huge, float32's extremes, beyond float32's range, NaN,
Inf). The oracle is written independently of mimic_edge.input_checks:
- an input that is not three float arrays (B, L_m, d_m) with one B ≥ 1, L_m ≥ 1, finite once
  cast to float32, must raise InputError;
- any other input gives the scores of its float32 cast (C-order numpy): representation must not
  matter. The one error allowed there is ArtifactError, the guard against non-finite scores,
  and only where the float32 cast gets it too;
- for moderate values, the fp32 artifact and the checkpoint also agree with the PyTorch model
  (tolerances of tests/runtime/test_runtime.py). INT8 is judged against its own float32 cast:
  off its calibration range its scores are not PyTorch's by design.
"""
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from mimic_edge.config import MODALITIES
from mimic_edge.errors import ArtifactError, InputError
from mimic_edge.export.precisions import PRECISIONS
from mimic_edge.runtime import load

DIMS = {"text": 300, "audio": 74, "vision": 47}  # preset mosi: the artifacts fixture's model
FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")
F32_MAX = float(np.finfo(np.float32).max)
MODERATE = 1e3  # |x| up to this: every kind must return scores, and fp32/checkpoint PyTorch's
TOLERANCE = {"checkpoint": 0.0, "fp32": PRECISIONS["fp32"].thresholds.max_abs}  # against PyTorch, as test_runtime.py
# Finite in float32 (not all in float16): its largest value, a float64 that rounds down to it,
# float16's largest, the smallest subnormal, negative zero.
EXTREMES = (F32_MAX, -F32_MAX, F32_MAX * (1 + 2 ** -26), 65504.0, 1e-45, -0.0)
FAULTS = ("rank", "dim", "batch", "empty batch", "empty sequence", "dtype", "NaN", "Inf", "beyond float32")
PROPERTY = settings(max_examples=150, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])



@st.composite
def one_input(draw, m, batch):
    """One modality's well-formed input in a drawn library, float dtype, layout and value range."""
    lib = draw(st.sampled_from(["numpy", "torch"]))
    dtype = draw(st.sampled_from(FLOAT_DTYPES if lib == "torch" else tuple(d for d in FLOAT_DTYPES if d != "bfloat16")))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    scale = draw(st.sampled_from([1.0, 1.0, 1.0, 1e-30, 1e3, 1e30]))  # 1e30 overflows float16: refused
    values = rng.standard_normal((batch, draw(st.integers(1, 5)), DIMS[m])) * scale
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2]))):
        values.flat[draw(st.integers(0, values.size - 1))] = draw(st.sampled_from(EXTREMES))
    return lib, dtype, values, draw(st.sampled_from(["c", "c", "fortran", "strided", "reversed", "broadcast"]))


def _fault(draw, lib, dtype, values):
    """(lib, dtype, values) made wrong in one drawn way."""
    fault = draw(st.sampled_from(FAULTS))
    event(f"fault: {fault}")
    if fault == "rank":
        values = values[0] if draw(st.booleans()) else values[..., None]
    elif fault == "dim":
        values = values[..., 1:] if draw(st.booleans()) else np.concatenate([values, values[..., :1]], axis=-1)
    elif fault == "batch":
        values = np.concatenate([values, values[:1]])
    elif fault == "empty batch":
        values = values[:0]
    elif fault == "empty sequence":
        values = values[:, :0]
    elif fault == "dtype":
        dtype = draw(st.sampled_from(["int64", "int32", "bool", "complex64"]))
    elif fault in ("NaN", "Inf", "beyond float32") and values.size:
        dtype = "float64" if fault == "beyond float32" else dtype
        special = {"NaN": np.nan, "Inf": draw(st.sampled_from([np.inf, -np.inf])),
                   "beyond float32": draw(st.sampled_from([1e39, -1e39, 2 * F32_MAX]))}[fault]
        values = values.copy()
        values.flat[draw(st.integers(0, values.size - 1))] = special
    return lib, dtype, values


def _build(lib, dtype, values, layout):
    with np.errstate(all="ignore"):  # casting NaN to int, 1e30 to float16: garbage that must be refused
        if lib == "numpy":
            return _numpy_layout(values.astype(dtype), layout)
        return _torch_layout(torch.from_numpy(values.astype("float32" if dtype == "bfloat16" else dtype))
                             .to(getattr(torch, dtype)), layout)


def _numpy_layout(x, layout):
    if x.ndim < 2 or layout == "c":
        return np.ascontiguousarray(x)
    if layout == "fortran":
        return np.asfortranarray(x)
    if layout == "strided":  # every other row of an array twice as long
        return np.repeat(x, 2, axis=-2)[..., ::2, :]
    if layout == "reversed":  # negative strides: x[:, ::-1] of a reversed copy
        return np.ascontiguousarray(x[..., ::-1, :])[..., ::-1, :]
    return np.broadcast_to(x[:1], x.shape) if len(x) else x  # zero stride along the batch, read-only


def _torch_layout(x, layout):
    if x.ndim < 2 or layout in ("c", "reversed", "broadcast"):  # torch has no negative strides
        return x
    if layout == "fortran":  # the same values, last two axes stored transposed
        return x.transpose(-1, -2).contiguous().transpose(-1, -2)
    return x.repeat_interleave(2, dim=-2)[..., ::2, :]  # strided


@st.composite
def inputs(draw):
    """Three inputs; half the examples carry a fault (sometimes two), a few are not even arrays."""
    batch = draw(st.integers(1, 3))
    specs = [draw(one_input(m, batch)) for m in MODALITIES]
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 1, 2]))):
        k = draw(st.integers(0, 2))
        lib, dtype, values, layout = specs[k]
        specs[k] = (*_fault(draw, lib, dtype, values), layout)
    xs = [_build(*spec) for spec in specs]
    if draw(st.integers(0, 19)) == 0:
        event("fault: not an array")
        xs[draw(st.integers(0, 2))] = [[[0.0]]]
    return xs


def as_float32(x):
    """The float32 cast every runtime makes, written here independently: C-order numpy."""
    if isinstance(x, torch.Tensor):
        x = x.float().numpy()
    with np.errstate(over="ignore"):
        return np.ascontiguousarray(x, dtype=np.float32)


def is_valid(xs):
    """The oracle: what docs/design.md §9 says an input must be."""
    for m, x in zip(MODALITIES, xs):
        if not isinstance(x, (np.ndarray, torch.Tensor)):
            return False
        if str(x.dtype).removeprefix("torch.") not in FLOAT_DTYPES:
            return False
        if x.ndim != 3 or x.shape[0] < 1 or x.shape[1] < 1 or x.shape[2] != DIMS[m]:
            return False
        if not np.isfinite(as_float32(x)).all():
            return False
    return len({x.shape[0] for x in xs}) == 1


def largest(xs):
    return max(float(np.abs(as_float32(x)).max()) for x in xs)


def check_property(predictor, model, kind, xs):
    valid = is_valid(xs)
    try:
        out = predictor.predict(*xs)
    except InputError:
        event("refused: InputError")  # --hypothesis-show-statistics: how the examples split
        assert not valid, "a valid input was refused"
        return
    except ArtifactError:  # non-finite scores: allowed for valid inputs whose float32 cast gets them too
        event("refused: ArtifactError")
        assert valid
        with pytest.raises(ArtifactError):
            predictor.predict(*(as_float32(x) for x in xs))
        assert largest(xs) > MODERATE, "non-finite scores for moderate inputs"
        return
    event("scores")
    assert valid, "an invalid input was accepted"
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == (xs[0].shape[0], 1)
    assert np.isfinite(out).all()
    canonical = [as_float32(x) for x in xs]
    np.testing.assert_array_equal(out, predictor.predict(*canonical))
    if kind in TOLERANCE and largest(xs) <= MODERATE:
        with torch.no_grad():
            ref = model(*(torch.from_numpy(x) for x in canonical)).numpy()
        np.testing.assert_allclose(out, ref, rtol=0, atol=TOLERANCE[kind])


@pytest.fixture(scope="module")
def predictors(artifacts):
    return {"checkpoint": load(artifacts.checkpoint, device="cpu"), "fp32": load(artifacts.onnx("fp32")),
            "int8": load(artifacts.onnx("int8"))}


@pytest.mark.parametrize("kind", ["fp32", "int8", "checkpoint"])
@PROPERTY
@given(xs=inputs())
def test_predict_gives_own_error_or_the_float32_result(predictors, artifacts, kind, xs):
    check_property(predictors[kind], artifacts.model, kind, xs)
