"""ONNX artifacts through ONNX Runtime: input checks, the artifact's signature, no torch."""
import subprocess
import sys

import numpy as np
import onnx
import pytest

from mimic_edge.errors import ArtifactError, ConfigError, InputError
from mimic_edge.export.precisions import PRECISIONS
from mimic_edge.runtime import load
from mimic_edge.runtime.onnx_predictor import OnnxPredictor

DIMS = {"text": 300, "audio": 74, "vision": 47}  # preset mosi


def inputs(batch=2, lens=(50, 50, 50), dims=DIMS):
    rng = np.random.default_rng(0)
    return [rng.standard_normal((batch, L, d), dtype=np.float32) for L, d in zip(lens, dims.values())]


@pytest.fixture(scope="module")
def predictor(artifacts):
    return load(artifacts.onnx("fp32"))


def _replace(i, value):
    def change(x):
        x = list(x)
        x[i] = value(x[i]) if callable(value) else value
        return x
    return change


def _with_nan(x):
    x = x.copy()
    x[1, 3, 7] = np.nan
    return x


def _with_inf(x):
    x = x.copy()
    x[0, 0, 0] = -np.inf
    return x


@pytest.mark.parametrize("change, message", [
    (_replace(0, lambda x: x[:, :, :299]), r"text: expected feature dim 300, found 299"),
    (_replace(2, lambda x: x[0]), r"vision: expected rank 3 \(batch, seq_len, 47\), found shape \(50, 47\)"),
    (_replace(1, lambda x: x[:0]), r"audio: empty batch"),
    (_replace(1, lambda x: x[:, :0]), r"audio: empty sequence"),
    (_replace(2, lambda x: x[:1]), r"batch sizes differ: expected 2 for all modalities, found 1 for vision"),
    (_replace(0, _with_nan), r"text: found NaN or Inf"),
    (_replace(1, _with_inf), r"audio: found NaN or Inf"),
    (_replace(0, lambda x: x.astype(np.int32)), r"text: expected a floating dtype \(float32\), found int32"),
    (_replace(2, lambda x: x.tolist()), r"vision: expected a numpy array or torch tensor, found list"),
])
def test_bad_inputs(predictor, change, message):
    with pytest.raises(InputError, match=message):
        predictor.predict(*change(inputs()))


def test_fixed_lengths_are_enforced(artifacts, tmp_path):
    """An artifact exported with fixed batch and sequence lengths: other sizes get a clear error
    before they reach ONNX Runtime, the fixed ones run."""
    model = onnx.load(artifacts.onnx("fp32"))
    fixed = {"text": (2, 50), "audio": (2, 40), "vision": (2, 30)}
    for value in model.graph.input:
        batch, length = fixed[value.name]
        dims = value.type.tensor_type.shape.dim
        dims[0].dim_value, dims[1].dim_value = batch, length
    path = tmp_path / "fixed.onnx"
    onnx.save(model, path)
    predictor = load(path)
    assert predictor.seq_range == {"text": (50, 50), "audio": (40, 40), "vision": (30, 30)}
    assert predictor.predict(*inputs(2, (50, 40, 30))).shape == (2, 1)
    with pytest.raises(InputError, match=r"audio: seq_len 50 is outside the supported range \[40, 40\]"):
        predictor.predict(*inputs(2, (50, 50, 30)))
    with pytest.raises(InputError, match=r"batch size 3 is outside the supported range \[2, 2\]"):
        predictor.predict(*inputs(3, (50, 40, 30)))


@pytest.mark.parametrize("allow_foreign", [False, True])
def test_foreign_onnx_model(tmp_path, allow_foreign):
    """A valid ONNX model that is not a mimic-edge one: named inputs are checked at load, also
    with the opt-out, which skips the stamp, not the contract (inputs text, audio, vision)."""
    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["batch", 4])
    y = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["batch", 4])
    graph = onnx.helper.make_graph([onnx.helper.make_node("Relu", ["x"], ["y"])], "relu", [x], [y])
    path = tmp_path / "relu.onnx"
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)]), path)
    with pytest.raises(ArtifactError, match=r"relu.onnx: not a mimic-edge model: expected inputs text, audio, vision"):
        load(path, allow_foreign=allow_foreign)


def test_providers(artifacts):
    assert load(artifacts.onnx("fp32"), providers=["CPUExecutionProvider"]).session.get_providers() == ["CPUExecutionProvider"]
    with pytest.raises(ConfigError, match=r"execution providers \['NoSuchExecutionProvider'\] are not available"):
        OnnxPredictor(artifacts.onnx("fp32"), providers=["NoSuchExecutionProvider"])


def test_threads(artifacts):
    one = load(artifacts.onnx("fp32"), threads=1)
    assert one.session.get_session_options().intra_op_num_threads == 1
    x = inputs()
    max_abs = PRECISIONS["fp32"].thresholds.max_abs  # another thread count: another summation order
    np.testing.assert_allclose(one.predict(*x), load(artifacts.onnx("fp32")).predict(*x), rtol=0, atol=max_abs)
    with pytest.raises(ConfigError, match=r"threads must be >= 1, got 0"):
        load(artifacts.onnx("fp32"), threads=0)


@pytest.mark.parametrize("precision", ["fp16", "int8", "int8-cpu"])
def test_running_an_artifact_imports_neither_torch_nor_triton(artifacts, precision):
    """What a Jetson app does: load an artifact, predict, and never pull in the training stack."""
    script = f"""
import sys
import numpy as np
from mimic_edge.runtime import load
predictor = load({str(artifacts.onnx(precision))!r})
x = [np.ones((2, 10, d), np.float32) for d in (300, 74, 47)]
assert predictor.predict(*x).shape == (2, 1)
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "triton"))
assert not heavy, heavy
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]


def test_from_bytes_is_the_same_predictor_as_from_the_file(artifacts, predictor):
    data = artifacts.onnx("fp32").read_bytes()
    in_memory = OnnxPredictor.from_bytes(data, "in-memory.onnx", spinning=False)
    x = inputs(batch=3, lens=(50, 20, 35))
    np.testing.assert_array_equal(in_memory.predict(*x), predictor.predict(*x))
    assert in_memory.dims == predictor.dims and in_memory.out_dim == predictor.out_dim
    with pytest.raises(InputError):  # the same input checks
        in_memory.predict(*inputs(dims={**DIMS, "audio": 73}))


def test_from_bytes_names_corrupt_data():
    with pytest.raises(ArtifactError, match=r"staged.onnx: expected an ONNX model, found a corrupt or foreign file"):
        OnnxPredictor.from_bytes(b"not an onnx model", "staged.onnx")


def test_metadata_is_the_exports_stamp(artifacts, predictor):
    assert {k: predictor.metadata[k] for k in ("model", "preset", "precision", "config_digest")} == {
        "model": "mimic", "preset": "mosi", "precision": "fp32", "config_digest": artifacts.model.config.digest()}
    assert load(artifacts.onnx("int8")).metadata["precision"] == "int8"


@pytest.mark.parametrize("strip", ["producer", "model", "config_digest", "everything"])
def test_an_onnx_without_the_export_stamp_is_refused_unless_allowed(artifacts, tmp_path, strip):
    """Same inputs, same output, not exported by mimic-edge: it could compute anything, so it is
    refused, from a file and from bytes; allow_foreign=True runs it (a graph of one's own)."""
    model = onnx.load(artifacts.onnx("fp32"))
    if strip in ("producer", "everything"):
        model.producer_name = "pytorch"
    keep = [p for p in model.metadata_props if strip != "everything" and p.key != strip]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    path = tmp_path / "foreign.onnx"
    onnx.save(model, path)
    message = (r"foreign.onnx: expected an ONNX model exported by mimic-edge \(producer 'mimic-edge', metadata "
               r"model, config_digest\), found producer '(pytorch|mimic-edge)' and metadata keys \[.*\]: "
               r"a foreign graph .* load it with allow_foreign=True")
    with pytest.raises(ArtifactError, match=message):
        load(path)
    with pytest.raises(ArtifactError, match=message):
        OnnxPredictor.from_bytes(path.read_bytes(), "foreign.onnx")
    x = inputs()
    np.testing.assert_array_equal(load(path, allow_foreign=True).predict(*x), load(artifacts.onnx("fp32")).predict(*x))
    assert OnnxPredictor(path, allow_foreign=True).metadata == {p.key: p.value for p in keep}



def _session_scores(path, x, disable_quant_qdq: bool):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    if disable_quant_qdq:
        options.add_session_config_entry("session.disable_quant_qdq", "1")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, dict(zip(DIMS, x)))[0]


def test_qdq_artifacts_run_in_float_unless_integer_kernels_are_asked_for(artifacts):
    """The int8 (TensorRT) artifact computes TensorRT's math on every CPU: Q/DQ in float, not this
    host's integer kernels (which saturate on x86 without VNNI); integer_qdq=True runs those."""
    path, x = artifacts.onnx("int8"), inputs(batch=3, lens=(50, 20, 35))
    default, integer = load(path), OnnxPredictor(path, integer_qdq=True)
    assert default.session.get_session_options().get_session_config_entry("session.disable_quant_qdq") == "1"
    np.testing.assert_array_equal(default.predict(*x), _session_scores(path, x, disable_quant_qdq=True))
    np.testing.assert_array_equal(integer.predict(*x), _session_scores(path, x, disable_quant_qdq=False))
    assert "integer_qdq=True" in repr(integer)


@pytest.mark.parametrize("precision", ["fp32", "int8-cpu"])
def test_graphs_without_qdq_pairs_are_unaffected_by_the_qdq_setting(artifacts, precision):
    path, x = artifacts.onnx(precision), inputs(batch=3)
    np.testing.assert_array_equal(load(path).predict(*x), OnnxPredictor(path, integer_qdq=True).predict(*x))
