"""PyTorch → FP32 ONNX: parity with PyTorch in ONNX Runtime, I/O names and dynamic axes, native
LSTMs, a lean self-contained graph, byte-identical re-exports."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import helper, numpy_helper

from mimic_edge.config import MODALITIES, OUTPUT_NAME
from mimic_edge.errors import ConfigError
from mimic_edge.export.onnx import lean, metadata, to_bytes, to_onnx
from mimic_edge.export.precisions import PRECISIONS

CASES = [("mimic", "mosi"), ("mimic", "mosi-bert"), ("misa", "mosi"), ("misa", "mosi-bert")]
LENGTHS = [(50, 50, 50), (13, 37, 6)]  # the preset's length; unequal per modality

FP32_MAX_ABS = PRECISIONS["fp32"].thresholds.max_abs  # derived there: two fp32 summation orders


def run_both(exports, name, preset, batch, lengths, seed=0):
    model = exports.model(name, preset)
    rng = np.random.default_rng(seed)
    inputs = {m: rng.standard_normal((batch, n, model.config.dims[m]), dtype=np.float32)
              for m, n in zip(MODALITIES, lengths)}
    with torch.no_grad():
        expected = model(*(torch.from_numpy(inputs[m]) for m in MODALITIES)).numpy()
    session = ort.InferenceSession(to_bytes(exports.fp32(name, preset)), providers=["CPUExecutionProvider"])
    return expected, session.run(None, inputs)[0]


@pytest.mark.parametrize("lengths", LENGTHS, ids=lambda ls: "L=" + "-".join(map(str, ls)))
@pytest.mark.parametrize("batch", [1, 7])
@pytest.mark.parametrize("name, preset", CASES)
def test_onnxruntime_matches_pytorch(exports, name, preset, batch, lengths):
    expected, found = run_both(exports, name, preset, batch, lengths)
    assert found.shape == expected.shape == (batch, 1)
    err = np.abs(found - expected)
    worst = np.unravel_index(err.argmax(), err.shape)
    # float32 kernels that sum in another order: the fp32 bound of export/precisions.py (measured ≤ 1e-6)
    assert err.max() <= FP32_MAX_ABS, f"max |onnx - torch| = {err.max():.3g} at {worst}"


@pytest.mark.parametrize("name, preset", [("mimic", "mosi"), ("misa", "mosi-bert")])
def test_inputs_outputs_and_dynamic_axes(exports, name, preset):
    graph = exports.fp32(name, preset).graph
    dims = exports.model(name, preset).config.dims

    def shape(value):
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    assert [i.name for i in graph.input] == list(MODALITIES)
    assert [o.name for o in graph.output] == [OUTPUT_NAME]
    for value in graph.input:
        assert value.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
        assert shape(value) == ["batch", f"seq_{value.name}", dims[value.name]]  # own sequence axis each
    assert shape(graph.output[0]) == ["batch", 1]


@pytest.mark.parametrize("name, preset, lstms", [("mimic", "mosi", 3), ("misa", "mosi", 6), ("misa", "mosi-bert", 4)])
def test_lstms_are_native_onnx_nodes(exports, name, preset, lstms):
    nodes = [n for n in exports.fp32(name, preset).graph.node if n.op_type == "LSTM"]
    assert len(nodes) == lstms
    for node in nodes:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        assert attrs["direction"] == b"bidirectional" and attrs.get("layout", 0) == 0
        assert len(node.input) <= 5, "zero initial states are left to the ONNX default"


def test_graph_is_lean_and_self_contained(exports):
    model = exports.fp32("mimic")
    ops = {n.op_type for n in model.graph.node}
    assert not ops & {"Constant", "Identity", "ConstantOfShape"}
    assert all(t.data_location == onnx.TensorProto.DEFAULT and not t.external_data for t in model.graph.initializer)
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version == 17


@pytest.mark.parametrize("name, most", [("mimic", 108), ("misa", 193)])
def test_node_counts_do_not_grow(exports, name, most):
    """Bounds = the hand-written clean-up's counts before onnxslim (measured with onnxslim
    0.1.98 at preset mosi: MIMIC 108, MISA 134)."""
    assert len(exports.fp32(name).graph.node) <= most


@pytest.mark.parametrize("name", ["mimic", "misa"])
def test_no_multiplication_by_one_remains(exports, name):
    """MIMIC's ablation switches (all on) trace as x·1."""
    graph = exports.fp32(name).graph
    consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Mul":
            assert not any(i in consts and consts[i].size == 1 and consts[i] == 1 for i in node.input), node.name


def test_provenance_without_machine_details(exports):
    model = exports.fp32("mimic")
    data = to_bytes(model)
    assert (model.producer_name, model.doc_string) == ("mimic-edge", "")
    assert all(not n.doc_string for n in model.graph.node)
    assert b".py" not in data and b"site-packages" not in data  # no source paths
    meta = metadata(model)
    config = exports.model("mimic").config
    assert meta == {"config_digest": config.digest(), "model": "mimic", "preset": "mosi"}  # precision: convert()


def test_same_model_gives_identical_bytes(exports):
    model = exports.model("misa", "mosi-bert")
    assert to_bytes(to_onnx(model)) == to_bytes(exports.fp32("misa", "mosi-bert"))


def test_exports_in_eval_mode():
    from mimic_edge.models import build_model

    model = build_model("mimic", dropout=0.9).train()  # dropout would scramble a training-mode trace
    session = ort.InferenceSession(to_bytes(to_onnx(model)), providers=["CPUExecutionProvider"])
    x = [torch.randn(3, 10, d) for d in model.config.dims.values()]
    with torch.no_grad():
        expected = model.eval()(*x).numpy()
    found = session.run(None, {m: t.numpy() for m, t in zip(MODALITIES, x)})[0]
    np.testing.assert_allclose(found, expected, rtol=0, atol=FP32_MAX_ABS)


@pytest.mark.parametrize("opset", [16, 21])
def test_opset_outside_supported_range(exports, opset):
    with pytest.raises(ConfigError, match=rf"opset {opset} is outside \[17, 20\]"):
        to_onnx(exports.model("mimic"), opset)


def run_graph(model: onnx.ModelProto, feeds: dict) -> list:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)


def make_graph(nodes, initializers, inputs, outputs="y", shape=None):
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, shape) for n in inputs],
        [helper.make_tensor_value_info(outputs, onnx.TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(np.asarray(v), k) for k, v in initializers.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def copy(model: onnx.ModelProto) -> onnx.ModelProto:
    return onnx.load_from_string(model.SerializeToString())


def lstm_with_zero_states(hidden=4, features=3):
    """What the TorchScript exporter emits: initial_h = initial_c = zeros of shape
    (directions, batch, hidden), the batch read from the input's shape."""
    rng = np.random.default_rng(0)
    weights = {"W": rng.standard_normal((1, 4 * hidden, features), dtype=np.float32),
               "R": rng.standard_normal((1, 4 * hidden, hidden), dtype=np.float32),
               "B": rng.standard_normal((1, 8 * hidden), dtype=np.float32),
               "one": np.array([1], np.int64), "i": np.array(1, np.int64), "axes": np.array([0], np.int64),
               "hidden": np.array([hidden], np.int64)}
    nodes = [helper.make_node("Shape", ["x"], ["shape_x"]),
             helper.make_node("Gather", ["shape_x", "i"], ["batch"], axis=0),
             helper.make_node("Unsqueeze", ["batch", "axes"], ["batch_1"]),
             helper.make_node("Concat", ["one", "batch_1", "hidden"], ["shape_h"], axis=0),
             helper.make_node("ConstantOfShape", ["shape_h"], ["zeros"],
                              value=numpy_helper.from_array(np.zeros(1, np.float32))),
             helper.make_node("LSTM", ["x", "W", "R", "B", "", "zeros", "zeros"], ["y"], hidden_size=hidden)]
    model = make_graph(nodes, weights, ["x"], shape=["seq", "batch", features])
    return model, {"x": rng.standard_normal((5, 2, features), dtype=np.float32)}


@pytest.mark.parametrize("drop", [True, False])
def test_lean_drops_zero_lstm_states_unless_told_not_to(drop):
    model, feeds = lstm_with_zero_states()
    expected = run_graph(model, feeds)[0]
    leaned = lean(copy(model), drop_zero_lstm_states=drop)
    (lstm,) = [n for n in leaned.graph.node if n.op_type == "LSTM"]
    if drop:
        assert list(lstm.input) == ["x", "W", "R", "B"] and len(leaned.graph.node) == 1  # the zeros' chain is gone
    else:
        assert len(lstm.input) == 7 and lstm.input[5] and lstm.input[6]  # explicit states, e.g. for TensorRT
    np.testing.assert_array_equal(run_graph(leaned, feeds)[0], expected)


@pytest.mark.parametrize("index", [0, 2, -1])
def test_lean_bypasses_stack_then_index(index):
    nodes = [helper.make_node("Unsqueeze", [m, "ax"], [f"{m}1"]) for m in "abc"]
    nodes += [helper.make_node("Concat", ["a1", "b1", "c1"], ["stack"], axis=1),
              helper.make_node("Gather", ["stack", "i"], ["picked"], axis=1),
              helper.make_node("Relu", ["picked"], ["y"])]
    model = make_graph(nodes, {"ax": np.array([1], np.int64), "i": np.array(index, np.int64)}, ["a", "b", "c"],
                       shape=["n", 4])
    rng = np.random.default_rng(0)
    feeds = {m: rng.standard_normal((2, 4), dtype=np.float32) for m in "abc"}
    leaned = lean(model)
    assert [(n.op_type, list(n.input)) for n in leaned.graph.node] == [("Relu", ["abc"[index]])]
    assert [i.name for i in leaned.graph.input] == ["a", "b", "c"]  # unread inputs stay: same interface
    np.testing.assert_array_equal(run_graph(leaned, feeds)[0], np.maximum(feeds["abc"[index]], 0))


def test_lean_leaves_a_stack_indexed_along_another_axis():
    nodes = [helper.make_node("Unsqueeze", [m, "ax"], [f"{m}1"]) for m in "ab"]
    nodes += [helper.make_node("Concat", ["a1", "b1"], ["stack"], axis=1),
              helper.make_node("Gather", ["stack", "i"], ["y"], axis=0)]
    model = make_graph(nodes, {"ax": np.array([1], np.int64), "i": np.array(1, np.int64)}, ["a", "b"], shape=[2, 4])
    assert [n.op_type for n in lean(model).graph.node] == ["Unsqueeze", "Unsqueeze", "Concat", "Gather"]


@pytest.mark.parametrize("inner, outer", [([1], [1]), ([1], [3]), ([0, 2], [1]), ([2], [0, 4]), ([1], [-1])])
def test_lean_merges_chained_unsqueezes_exactly(inner, outer):
    """onnxslim's job (x[:, :, None, None] traces as two), checked since the head relies on it."""
    nodes = [helper.make_node("Unsqueeze", ["x", "a"], ["u"]), helper.make_node("Unsqueeze", ["u", "b"], ["y"])]
    model = make_graph(nodes, {"a": np.array(inner, np.int64), "b": np.array(outer, np.int64)}, ["x"], shape=[2, 3])
    x = np.random.default_rng(0).standard_normal((2, 3), dtype=np.float32)
    expected = run_graph(model, {"x": x})[0]
    leaned = lean(model)
    assert len(leaned.graph.node) == 1
    np.testing.assert_array_equal(run_graph(leaned, {"x": x})[0], expected)


def test_lean_keeps_quantize_dequantize_and_int8_weights():
    """onnxslim folds no Q/DQ: a weight DequantizeLinear folded into a float constant would
    leave TensorRT nothing to run in int8."""
    rng = np.random.default_rng(0)
    inits = {"w": rng.integers(-127, 128, (4, 3), dtype=np.int8), "w_scale": np.full(3, 0.01, np.float32),
             "w_zero": np.zeros(3, np.int8), "x_scale": np.float32(0.02), "x_zero": np.int8(0)}
    nodes = [helper.make_node("QuantizeLinear", ["x", "x_scale", "x_zero"], ["x_q"]),
             helper.make_node("DequantizeLinear", ["x_q", "x_scale", "x_zero"], ["x_dq"]),
             helper.make_node("DequantizeLinear", ["w", "w_scale", "w_zero"], ["w_dq"], axis=1),
             helper.make_node("MatMul", ["x_dq", "w_dq"], ["y"])]
    model = make_graph(nodes, inits, ["x"], shape=["n", 4])
    leaned = lean(copy(model))
    assert sorted(n.op_type for n in leaned.graph.node) == ["DequantizeLinear", "DequantizeLinear", "MatMul",
                                                             "QuantizeLinear"]
    weights = {t.name: t for t in leaned.graph.initializer}
    assert weights["w"].data_type == onnx.TensorProto.INT8
    x = rng.standard_normal((2, 4), dtype=np.float32)
    np.testing.assert_array_equal(run_graph(leaned, {"x": x})[0], run_graph(model, {"x": x})[0])


def test_lean_is_deterministic(exports):
    model, _ = lstm_with_zero_states()
    assert to_bytes(lean(copy(model))) == to_bytes(lean(copy(model)))
    graph = exports.fp32("misa").graph  # lean's output is a fixed point
    assert lean(exports.fp32("misa")).graph.SerializeToString(deterministic=True) == \
        graph.SerializeToString(deterministic=True)


@pytest.mark.slow
def test_export_bytes_do_not_depend_on_the_hash_seed(exports):
    """Set and dict orders over strings change with PYTHONHASHSEED; the artifact must not."""
    code = ("import hashlib, torch; from mimic_edge.models import build_model; "
            "from mimic_edge.export.onnx import to_bytes, to_onnx; torch.manual_seed(0); "
            "print(hashlib.sha256(to_bytes(to_onnx(build_model('mimic', 'mosi').eval()))).hexdigest())")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    found = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert found.strip() == hashlib.sha256(to_bytes(exports.fp32("mimic"))).hexdigest()


def test_lean_prints_nothing(capfd):
    model, _ = lstm_with_zero_states()
    lean(model)
    assert capfd.readouterr().out == ""
