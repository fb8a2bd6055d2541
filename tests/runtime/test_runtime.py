"""mimic_edge.runtime.load: every artifact kind against the PyTorch model, one contract for all."""

import numpy as np
import pytest
import torch

from mimic_edge.config import MODALITIES
from mimic_edge.data import synthetic
from mimic_edge.errors import ArtifactError, CheckpointError, InputError, MimicEdgeError
from mimic_edge.export.precisions import PRECISIONS
from mimic_edge.runtime import Predictor, load

# Tolerances per artifact kind: fp32 is the same math as PyTorch up to summation order; fp16
# and int8 are judged by SQNR (dB) of the scores, as the export validates them. The scores of
# this seeded model vary across samples with std ≈ 0.0036 around a mean of ≈ -0.026, so a
# predictor that ignored its inputs would score ≈ 17 dB.
KINDS = {  # kind: (max abs error, min SQNR dB)
    "checkpoint": (0.0, None),
    "fp32": (PRECISIONS["fp32"].thresholds.max_abs, 80.0),  # a bound on two fp32 summation orders
    "fp16": (None, 40.0),
    "int8": (None, 20.0),
    "int8-cpu": (None, 20.0),
}


def artifact_path(artifacts, kind):
    return artifacts.checkpoint if kind == "checkpoint" else artifacts.onnx(kind)


def sqnr_db(ref, out):
    return 20 * np.log10(np.linalg.norm(ref) / max(np.linalg.norm(ref - out), 1e-30))


def reference(model, inputs):
    with torch.no_grad():
        return model(*(torch.as_tensor(np.asarray(inputs[m], np.float32)) for m in MODALITIES)).numpy()


@pytest.fixture(scope="module")
def samples():
    """24 synthetic samples with unaligned lengths: text 50 steps, audio 37, vision 23."""
    test = synthetic("mosi", n=(1, 1, 24), seed=3)["test"]
    return {"text": test["text"], "audio": test["audio"][:, :37], "vision": test["vision"][:, :23]}


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("batch", [1, 5, 24])
def test_round_trip_against_pytorch(artifacts, samples, kind, batch):
    predictor = load(artifact_path(artifacts, kind))
    inputs = {m: samples[m][:batch] for m in MODALITIES}
    out = predictor.predict(inputs["text"], inputs["audio"], inputs["vision"])
    ref = reference(artifacts.model, inputs)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == ref.shape == (batch, 1)
    max_err, min_sqnr = KINDS[kind]
    err = np.abs(out - ref)
    where = np.unravel_index(err.argmax(), err.shape)
    if max_err is not None:
        assert err.max() <= max_err, f"{kind}: max abs error {err.max():.3g} at {where} > {max_err}"
    if min_sqnr is not None:
        assert sqnr_db(ref, out) >= min_sqnr, f"{kind}: SQNR {sqnr_db(ref, out):.1f} dB < {min_sqnr} (max err {err.max():.3g} at {where})"


@pytest.mark.parametrize("kind", list(KINDS))
def test_predictor_protocol(artifacts, kind):
    predictor = load(artifact_path(artifacts, kind))
    assert isinstance(predictor, Predictor)
    assert predictor.backend == ("torch" if kind == "checkpoint" else "onnxruntime")
    assert predictor.dims == artifacts.model.config.dims and predictor.out_dim == 1


@pytest.mark.parametrize("kind", ["checkpoint", "fp32"])
def test_torch_and_numpy_inputs_agree(artifacts, samples, kind):
    predictor = load(artifact_path(artifacts, kind))
    x = [samples[m][:4] for m in MODALITIES]
    from_numpy = predictor.predict(*x)
    from_torch = predictor.predict(*(torch.from_numpy(a) for a in x))
    from_float64 = predictor.predict(*(torch.from_numpy(a).double() for a in x))
    np.testing.assert_array_equal(from_numpy, from_torch)
    np.testing.assert_array_equal(from_numpy, from_float64)


@pytest.mark.parametrize("kind", ["checkpoint", "fp32", "int8"])
def test_threads_give_serial_results(artifacts, samples, kind, threads_match_serial):
    predictor = load(artifact_path(artifacts, kind))
    jobs = [[samples[m][i:i + 1 + i % 3] for m in MODALITIES] for i in range(16)]  # batch 1-3
    threads_match_serial(predictor, jobs, n_threads=8)


def test_checkpoint_by_any_of_its_names(artifacts):
    stem = artifacts.checkpoint.with_suffix("")
    for path in (stem, stem.with_suffix(".json"), artifacts.checkpoint):
        assert load(path).backend == "torch"


def test_unknown_suffix(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(b"\0" * 64)
    with pytest.raises(ArtifactError, match=r"unknown artifact type: expected an ONNX model .* found suffix '.bin'"):
        load(path)


def truncated(src, dst):
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 2])
    return dst


@pytest.mark.parametrize("case, error, message", [
    ("missing.onnx", ArtifactError, "ONNX artifact not found"),
    ("truncated.onnx", ArtifactError, "expected an ONNX model, found a corrupt or foreign file"),
    ("text.onnx", ArtifactError, "expected an ONNX model, found a corrupt or foreign file"),
    ("empty.onnx", ArtifactError, "expected an ONNX model, found a corrupt or foreign file"),
    ("weights.onnx", ArtifactError, "expected an ONNX model, found a corrupt or foreign file"),
    ("truncated.safetensors", CheckpointError, "expected a safetensors file, found a corrupt or foreign file"),
])
def test_corrupt_or_foreign_files(artifacts, tmp_path, case, error, message):
    path = tmp_path / case
    if case.startswith("truncated.onnx"):
        truncated(artifacts.onnx("fp32"), path)
    elif case == "text.onnx":
        path.write_text("hello, not a model\n")
    elif case == "empty.onnx":
        path.write_bytes(b"")
    elif case == "weights.onnx":
        path.write_bytes(artifacts.checkpoint.read_bytes())
    elif case == "truncated.safetensors":
        truncated(artifacts.checkpoint, path)
        path.with_suffix(".json").write_bytes(artifacts.checkpoint.with_suffix(".json").read_bytes())
    with pytest.raises(error, match=message) as caught:
        load(path)
    assert isinstance(caught.value, MimicEdgeError) and str(path) in str(caught.value)


@pytest.mark.parametrize("kind", ["checkpoint", "fp32", "int8"])
@pytest.mark.parametrize("m", list(MODALITIES))
def test_float64_beyond_float32_range_is_refused_by_every_runtime(artifacts, samples, kind, m):
    """The issue's big.npz: 1e39 in float64 passes a finiteness check made before the cast and
    becomes inf in it (a score of -0.16 from the int8 artifact, NaN from the checkpoint)."""
    predictor = load(artifact_path(artifacts, kind))
    x = {k: samples[k][:2].astype(np.float64) for k in MODALITIES}
    x[m][:] = 1e39 if m != "audio" else -1e39
    with pytest.raises(InputError, match=rf"{m}: found values beyond float32's range"):
        predictor.predict(*(x[k] for k in MODALITIES))


def test_a_non_finite_score_is_an_error_not_a_result(artifacts, samples, tmp_path):
    """The last guard: a model whose scores are NaN (here: a NaN bias in the output layer, which
    the checkpoint loader would refuse) raises instead of returning them, on every predictor."""
    import onnx
    from onnx import numpy_helper

    from mimic_edge.runtime.torch_predictor import TorchPredictor

    graph = onnx.load(artifacts.onnx("fp32"))
    bias = next(i for i in graph.graph.initializer if i.name == "head.6.bias")
    bias.CopyFrom(numpy_helper.from_array(np.full(1, np.nan, np.float32), bias.name))
    onnx.save(graph, tmp_path / "nan.onnx")
    model = load(artifacts.checkpoint, device="cpu").model
    with torch.no_grad():
        model.head[6].bias.fill_(float("nan"))
    x = [samples[m][:3] for m in MODALITIES]
    for predictor in (load(tmp_path / "nan.onnx"), TorchPredictor.from_model(model, "cpu", name="nan-model")):
        with pytest.raises(ArtifactError, match=r"(nan.onnx|nan-model): produced NaN or Inf scores for 3 of 3 samples "
                                                r"whose inputs are finite"):
            predictor.predict(*x)


@pytest.mark.parametrize("kind", ["checkpoint", "fp32", "int8"])
@pytest.mark.parametrize("m", list(MODALITIES))
def test_feature_dim_is_checked_for_each_modality(artifacts, samples, kind, m):
    """Each predictor reads every modality's dim from its artifact: one off is refused, by name."""
    predictor = load(artifact_path(artifacts, kind))
    x = {k: samples[k][:2] for k in MODALITIES}
    d = x[m].shape[2]
    x[m] = np.zeros((2, 5, d + 1), np.float32)
    with pytest.raises(InputError, match=rf"^{m}: expected feature dim {d}, found {d + 1} "):
        predictor.predict(*(x[k] for k in MODALITIES))
