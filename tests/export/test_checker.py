"""The TensorRT-compatibility checker: one small hand-made graph per rule that breaks it, and
graphs that keep every rule (including real exports, in test_export.py)."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from mimic_edge.errors import CompatibilityError
from mimic_edge.export.checker import TENSORRT_OPS, check_tensorrt, require_tensorrt_compatible


def make_model(nodes, initializers=(), opset=17, inputs=("x",), outputs=("y",)):
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in inputs],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs],
        initializer=[numpy_helper.from_array(np.asarray(v), k) for k, v in initializers],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def qdq_weight_model(weight, scale, zero_point, axis=0):
    """y = x @ DQ(weight)ᵀ-like: a DequantizeLinear of a constant weight feeding a MatMul."""
    attrs = {} if axis is None else {"axis": axis}
    nodes = [helper.make_node("DequantizeLinear", ["w", "w_scale", "w_zp"], ["w_dq"], name="dq_w", **attrs),
             helper.make_node("MatMul", ["x", "w_dq"], ["y"], name="mm")]
    return make_model(nodes, [("w", weight), ("w_scale", scale), ("w_zp", zero_point)])


def activation_qdq_model(zero_point):
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["q"], name="q"),
             helper.make_node("DequantizeLinear", ["q", "s", "zp"], ["y"], name="dq")]
    return make_model(nodes, [("s", np.float32(0.1)), ("zp", zero_point)])


def lstm_model(**attrs):
    hidden, d = 4, 3
    w = np.zeros((2, 4 * hidden, d), np.float32)
    r = np.zeros((2, 4 * hidden, hidden), np.float32)
    node = helper.make_node("LSTM", ["x", "W", "R"], ["y"], name="lstm", hidden_size=hidden,
                            direction="bidirectional", **attrs)
    return make_model([node], [("W", w), ("R", r)])


def rules(model) -> list[str]:
    return [f.rule for f in check_tensorrt(model)]


GOOD_WEIGHT = np.ones((3, 4), np.int8)
GOOD_SCALE = np.full(3, 0.5, np.float32)
GOOD_ZP = np.zeros(3, np.int8)


def test_compatible_graphs_have_no_findings():
    assert check_tensorrt(qdq_weight_model(GOOD_WEIGHT, GOOD_SCALE, GOOD_ZP)) == []
    assert check_tensorrt(activation_qdq_model(np.int8(0))) == []
    assert check_tensorrt(lstm_model(activations=["Sigmoid", "Tanh", "Tanh"] * 2, layout=0)) == []
    require_tensorrt_compatible(lstm_model())  # no error


def test_opset_outside_tensorrt_range():
    assert rules(make_model([helper.make_node("Relu", ["x"], ["y"])], opset=21)) == ["opset"]
    assert rules(make_model([helper.make_node("Relu", ["x"], ["y"])], opset=8)) == ["opset"]


def test_op_outside_tensorrt_list():
    model = make_model([helper.make_node("Unique", ["x"], ["y"], name="u")])
    [finding] = check_tensorrt(model)
    assert (finding.rule, finding.node) == ("unsupported-op", "u")
    assert "Unique" in finding.message


def test_custom_domain_op():
    node = helper.make_node("FusedMatMul", ["x", "x"], ["y"], name="f", domain="com.microsoft")
    model = make_model([node])
    model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    assert rules(model) == ["unsupported-op"]


def test_uint8_quantization():
    assert rules(activation_qdq_model(np.uint8(0))) == ["qdq-int8", "qdq-int8"]  # Q and DQ


def test_quantize_without_zero_point_is_uint8():
    nodes = [helper.make_node("QuantizeLinear", ["x", "s"], ["q"], name="q"),
             helper.make_node("DequantizeLinear", ["q", "s"], ["y"], name="dq")]
    findings = check_tensorrt(make_model(nodes, [("s", np.float32(0.1))]))
    assert [f.rule for f in findings] == ["qdq-int8", "qdq-int8"]
    assert "uint8" in findings[0].message


def test_nonzero_zero_point():
    assert rules(activation_qdq_model(np.int8(3))) == ["qdq-zero-point", "qdq-zero-point"]
    assert rules(qdq_weight_model(GOOD_WEIGHT, GOOD_SCALE, np.array([0, 1, 0], np.int8))) == ["qdq-zero-point"]


def test_computed_zero_point():
    nodes = [helper.make_node("Cast", ["zp_f"], ["zp"], to=TensorProto.INT8),
             helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["q"], name="q"),
             helper.make_node("DequantizeLinear", ["q", "s", "zp"], ["y"], name="dq")]
    model = make_model(nodes, [("s", np.float32(0.1)), ("zp_f", np.float32(0))])
    assert "qdq-zero-point" in rules(model)


def test_per_tensor_weight():
    model = qdq_weight_model(GOOD_WEIGHT, np.float32(0.5), np.int8(0), axis=None)
    [finding] = check_tensorrt(model)
    assert finding.rule == "qdq-per-channel" and "axis" in finding.message


def test_weight_scale_not_one_per_channel():
    model = qdq_weight_model(GOOD_WEIGHT, np.full(4, 0.5, np.float32), np.zeros(4, np.int8), axis=0)
    [finding] = check_tensorrt(model)
    assert finding.rule == "qdq-per-channel" and "(3,)" in finding.message


def test_int32_bias_dequantize():
    nodes = [helper.make_node("DequantizeLinear", ["b", "b_scale"], ["b_dq"], name="dq_b"),
             helper.make_node("Add", ["x", "b_dq"], ["y"], name="add")]
    model = make_model(nodes, [("b", np.arange(3, dtype=np.int32)), ("b_scale", np.float32(0.01))])
    assert rules(model) == ["qdq-int32-bias"]


def test_lstm_activations_differ_between_directions():
    model = lstm_model(activations=["Sigmoid", "Tanh", "Tanh", "Sigmoid", "Relu", "Tanh"])
    [finding] = check_tensorrt(model)
    assert (finding.rule, finding.node) == ("lstm-activations", "lstm")


def test_lstm_layout():
    assert rules(lstm_model(layout=1)) == ["lstm-layout"]


def test_lstm_input_forget():
    assert rules(lstm_model(input_forget=1)) == ["lstm-input-forget"]


def test_every_finding_is_reported_in_one_error():
    nodes = [helper.make_node("Unique", ["x"], ["u"], name="u"),
             helper.make_node("QuantizeLinear", ["u", "s", "zp"], ["q"], name="q"),
             helper.make_node("DequantizeLinear", ["q", "s", "zp"], ["y"], name="dq")]
    model = make_model(nodes, [("s", np.float32(0.1)), ("zp", np.uint8(7))], opset=22)
    with pytest.raises(CompatibilityError) as info:
        require_tensorrt_compatible(model, "bad.onnx")
    found = sorted({f.rule for f in info.value.findings})
    assert found == ["opset", "qdq-int8", "qdq-zero-point", "unsupported-op"]
    message = str(info.value)
    assert "bad.onnx" in message and all(rule in message for rule in found)


def test_operator_list_covers_what_the_models_use():
    used = {"LSTM", "MatMul", "Gemm", "Add", "Mul", "Div", "Sub", "Softmax", "LayerNormalization", "MaxPool",
            "Relu", "Sigmoid", "Transpose", "Reshape", "Unsqueeze", "Squeeze", "Concat", "Gather", "Slice", "Shape",
            "Cast", "Sqrt", "ReduceMean", "Flatten", "QuantizeLinear", "DequantizeLinear"}
    assert used <= TENSORRT_OPS
    assert not {"Unique", "MatMulInteger", "QLinearMatMul", "DynamicQuantizeLinear"} & TENSORRT_OPS


# Strongly typed networks (TensorRT 11): the float inputs TensorRT requires to agree share one dtype.

def fp16_lstm_model(states: str = "absent"):
    """A float16 bidirectional LSTM fed through a Cast; `states`: "absent", "float16" (explicit
    zeros of the weights' dtype) or "float32" (explicit zeros of another dtype)."""
    hidden, d = 4, 3
    w = np.zeros((2, 4 * hidden, d), np.float16)
    r = np.zeros((2, 4 * hidden, hidden), np.float16)
    inputs, inits = ["x16", "W", "R"], [("W", w), ("R", r)]
    if states != "absent":
        inputs += ["", "", "h0", "h0"]
        inits.append(("h0", np.zeros((2, 1, hidden), np.float16 if states == "float16" else np.float32)))
    nodes = [helper.make_node("Cast", ["x"], ["x16"], to=TensorProto.FLOAT16),
             helper.make_node("LSTM", inputs, ["y16"], name="lstm", hidden_size=hidden, direction="bidirectional"),
             helper.make_node("Cast", ["y16"], ["y"], to=TensorProto.FLOAT)]
    return make_model(nodes, inits)


def test_float16_lstm_without_initial_states_breaks_strong_typing():
    [finding] = check_tensorrt(fp16_lstm_model("absent"))
    assert (finding.rule, finding.node) == ("strongly-typed", "lstm")
    assert "float16 LSTM without initial_h, initial_c" in finding.message
    assert "expected explicit zero states of float16" in finding.message


def test_float16_lstm_with_float32_states_mixes_types():
    [finding] = check_tensorrt(fp16_lstm_model("float32"))
    assert finding.rule == "strongly-typed"
    assert "float16: X, W, R" in finding.message and "float: initial_h, initial_c" in finding.message


def test_lstm_with_states_of_its_own_dtype_and_float32_lstm_without_states_pass():
    assert check_tensorrt(fp16_lstm_model("float16")) == []
    assert check_tensorrt(lstm_model()) == []  # float32 weights: the parser's float32 zeros agree


def test_binary_operands_of_two_float_types():
    # Pow's exponent may have another type in ONNX; TensorRT's elementwise layer requires one
    nodes = [helper.make_node("Cast", ["x"], ["x16"], to=TensorProto.FLOAT16),
             helper.make_node("Pow", ["x16", "two"], ["p"], name="pow"),
             helper.make_node("Cast", ["p"], ["p32"], to=TensorProto.FLOAT),
             helper.make_node("MatMul", ["x16", "x"], ["m"], name="mm"),  # not valid ONNX either
             helper.make_node("Add", ["p32", "x"], ["y"], name="add")]  # one type: fine
    findings = check_tensorrt(make_model(nodes, [("two", np.float32(2))]))
    assert [(f.rule, f.node) for f in findings] == [("strongly-typed", "pow"), ("strongly-typed", "mm")]
    assert "float16: input 0 'x16'; float: input 1 'two'" in findings[0].message


def test_integer_operands_are_not_float_types():
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Mul", ["s", "k"], ["s2"], name="mul"),
             helper.make_node("Reshape", ["x", "s2"], ["y"])]
    assert check_tensorrt(make_model(nodes, [("k", np.ones(1, np.int64))])) == []


@pytest.mark.parametrize("name, preset", [("mimic", "mosi"), ("misa", "mosi-bert")])
def test_fp16_artifacts_keep_float16_lstm_states(exports, name, preset):
    """The fp16 converter feeds every LSTM explicit zero states of float16; without them (as the
    fp32 graph has it) the strongly-typed rule fires once per LSTM."""
    model = onnx.ModelProto()
    model.CopyFrom(exports.converted(name, "fp16", preset))  # a copy: the cached graph is shared
    assert check_tensorrt(model) == []
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {v.name: v.type.tensor_type.elem_type for v in inferred.graph.value_info}
    lstms = [n for n in model.graph.node if n.op_type == "LSTM"]
    assert lstms and all(types[n.input[5]] == types[n.input[6]] == TensorProto.FLOAT16 for n in lstms)
    for lstm in lstms:
        lstm.input[5] = lstm.input[6] = ""
    findings = check_tensorrt(model)
    assert [f.rule for f in findings] == ["strongly-typed"] * len(lstms)


def test_operators_tensorrt_marks_unsupported_are_refused():
    """onnx-tensorrt docs/operators.md (10.1 GA) marks the window functions and STFT "N"."""
    unsupported = {"BlackmanWindow", "HammingWindow", "HannWindow", "STFT"}
    assert not unsupported & TENSORRT_OPS
    model = make_model([helper.make_node("HannWindow", ["n"], ["y"], name="w")], [("n", np.int64(8))],
                       inputs=())
    assert rules(model) == ["unsupported-op"]
