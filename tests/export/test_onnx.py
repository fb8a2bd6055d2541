"""PyTorch → FP32 ONNX: parity with PyTorch in ONNX Runtime, I/O names and dynamic axes, native
LSTMs, a lean self-contained graph, byte-identical re-exports."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from mimic_edge.config import MODALITIES
from mimic_edge.errors import ConfigError
from mimic_edge.export.onnx import OUTPUT_NAME, metadata, to_bytes, to_onnx

CASES = [("mimic", "mosi"), ("mimic", "mosi-bert"), ("misa", "mosi"), ("misa", "mosi-bert")]
LENGTHS = [(50, 50, 50), (13, 37, 6)]  # the preset's length; unequal per modality


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
    # float32 kernels that sum in another order: ≤ 1e-6 measured, MISA's deeper stack the most
    assert err.max() <= 2e-6, f"max |onnx - torch| = {err.max():.3g} at {worst}"


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


def test_provenance_without_machine_details(exports):
    model = exports.fp32("mimic")
    data = to_bytes(model)
    assert (model.producer_name, model.doc_string) == ("mimic-edge", "")
    assert all(not n.doc_string for n in model.graph.node)
    assert b".py" not in data and b"site-packages" not in data  # no source paths
    meta = metadata(model)
    config = exports.model("mimic").config
    assert meta == {"config_digest": config.digest(), "model": "mimic", "precision": "fp32", "preset": "mosi"}


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
    np.testing.assert_allclose(found, expected, atol=2e-6)


@pytest.mark.parametrize("opset", [16, 21])
def test_opset_outside_supported_range(exports, opset):
    with pytest.raises(ConfigError, match=rf"opset {opset} is outside \[17, 20\]"):
        to_onnx(exports.model("mimic"), opset)


def run_graph(model: onnx.ModelProto, feeds: dict) -> list:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)


def make_graph(nodes, initializers, inputs, outputs="y"):
    from onnx import helper, numpy_helper

    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None) for n in inputs],
        [helper.make_tensor_value_info(outputs, onnx.TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(np.asarray(v), k) for k, v in initializers.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("inner, outer", [([1], [1]), ([1], [3]), ([0, 2], [1]), ([2], [0, 4]), ([1], [-1])])
def test_lean_merges_chained_unsqueezes_exactly(inner, outer):
    from onnx import helper

    from mimic_edge.export.onnx import lean

    nodes = [helper.make_node("Unsqueeze", ["x", "a"], ["u"]), helper.make_node("Unsqueeze", ["u", "b"], ["y"])]
    model = make_graph(nodes, {"a": np.array(inner, np.int64), "b": np.array(outer, np.int64)}, ["x"])
    x = np.random.default_rng(0).standard_normal((2, 3), dtype=np.float32)
    expected = run_graph(model, {"x": x})[0]
    leaned = lean(model)
    assert len(leaned.graph.node) == (1 if min(inner + outer) >= 0 else 2)  # negative axes: left alone
    np.testing.assert_array_equal(run_graph(leaned, {"x": x})[0], expected)


def test_lean_bypasses_stack_then_index_and_times_one():
    from onnx import helper

    from mimic_edge.export.onnx import lean

    nodes = [helper.make_node("Unsqueeze", [m, "ax"], [f"{m}1"]) for m in "abc"]
    nodes += [helper.make_node("Concat", ["a1", "b1", "c1"], ["stack"], axis=1),
              helper.make_node("Gather", ["stack", "i"], ["picked"], axis=1),
              helper.make_node("Mul", ["picked", "one"], ["y"])]
    model = make_graph(nodes, {"ax": np.array([1], np.int64), "i": np.array(2, np.int64), "one": np.float32(1)},
                       ["a", "b", "c"])
    rng = np.random.default_rng(0)
    feeds = {m: rng.standard_normal((2, 4), dtype=np.float32) for m in "abc"}
    leaned = lean(model)
    assert [n.op_type for n in leaned.graph.node] == ["Mul"] and leaned.graph.node[0].input[0] == "c"
    np.testing.assert_array_equal(run_graph(leaned, feeds)[0], feeds["c"])
