"""TensorRT-compatibility rules for ONNX artifacts, checked on a laptop before a device sees them.

`check_tensorrt(model)` returns every broken rule as a Finding(rule, node, message);
`require_tensorrt_compatible(model)` raises one CompatibilityError listing them all.

Rules (TensorRT's ONNX parser, onnx-tensorrt `docs/operators.md`, and docs/design.md §6):
  opset            default-domain opset within what every TensorRT 10.x and 11.x parses
  unsupported-op   an op outside TensorRT's ONNX operator list, or outside the default domain
  qdq-int8         Q/DQ carry int8 only (a QuantizeLinear without zero point outputs uint8)
  qdq-zero-point   zero points are constant zeros (symmetric quantization)
  qdq-per-channel  weight DequantizeLinear is per-channel: `axis` set, one scale per channel
  qdq-int32-bias   no DequantizeLinear of an int32 tensor (a quantized bias)
  lstm-activations a bidirectional LSTM uses the same activations in both directions
  lstm-layout      LSTM `layout` is 0 (sequence-major)
  lstm-input-forget LSTM `input_forget` is 0
  strongly-typed   TensorRT 11 builds every network strongly typed: the float inputs that
                   TensorRT requires to agree have one dtype (below)

Strongly typed networks (TensorRT 11.x always; 10.x with kSTRONGLY_TYPED): no implicit casts,
so these float inputs, typed by ONNX shape inference, must share one dtype:
  LSTM / GRU / RNN  X, W, R, B and the initial states. An absent initial state is no escape:
                    onnx-tensorrt's importers make it FLOAT zeros (`addConstantScalar(ctx, 0.f,
                    FLOAT)` in onnxOpImporters.cpp, 10.1 GA), which meet float16 weights; a
                    non-float32 recurrence must carry explicit states of its own dtype;
  MatMul, Gemm      A, B (and C);
  elementwise       both operands of Add, Sub, Mul, Div, Pow, Max, Min, Mean, Sum, PRelu and
                    the comparisons (ONNX itself lets Pow's exponent have another type).
Integer operands (shape arithmetic) and tensors whose type inference cannot tell are left out.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from mimic_edge.errors import CompatibilityError

# Opsets parsed by TensorRT 10.0 (9-20, onnx-tensorrt operators.md); 10.15 and later parse 9-24.
# The intersection keeps one artifact valid for JetPack 6 (10.3) and RTX cards (11.x).
TENSORRT_OPSETS = (9, 20)

# Ops marked supported ("Y") in onnx-tensorrt's docs/operators.md, checked against its 10.1 GA
# release (commit 96e7811): every op below is "Y" there, and BlackmanWindow, HammingWindow,
# HannWindow and STFT, which it marks "N", are left out. Later releases (10.15 was read when this
# list was first written) add ops of ONNX opsets above 20 only (Attention, RMSNormalization,
# RotaryEmbedding, TensorScatter), which TENSORRT_OPSETS excludes anyway.
TENSORRT_OPS = frozenset("""
Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization
Cast CastLike Ceil Celu Clip Concat Constant ConstantOfShape Conv ConvTranspose Cos
Cosh CumSum DeformConv DepthToSpace DequantizeLinear Div Dropout Einsum Elu Equal Erf Exp Expand
EyeLike Flatten Floor Gather GatherElements GatherND Gelu Gemm GlobalAveragePool GlobalLpPool
GlobalMaxPool Greater GreaterOrEqual GridSample GroupNormalization GRU
HardSigmoid HardSwish Hardmax Identity If ImageScaler InstanceNormalization IsInf IsNaN
LayerNormalization LeakyRelu Less LessOrEqual Log LogSoftmax Loop LRN LSTM LpNormalization LpPool
MatMul Max MaxPool Mean MeanVarianceNormalization Min Mish Mod Mul Neg NonMaxSuppression NonZero Not
OneHot Or Pad ParametricSoftplus Pow PRelu QuantizeLinear RandomNormal RandomNormalLike
RandomUniform RandomUniformLike Range Reciprocal ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp
ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum ReduceSumSquare Relu Reshape Resize
ReverseSequence RNN RoiAlign Round ScaledTanh Scan Scatter ScatterElements ScatterND Selu Shape
Shrink Sigmoid Sign Sin Sinh Size Slice Softmax Softplus Softsign SpaceToDepth Split Sqrt Squeeze
Sub Sum Tan Tanh ThresholdedRelu Tile TopK Transpose Trilu Unsqueeze Upsample Where Xor
""".split())

DEFAULT_DOMAINS = ("", "ai.onnx")
_DTYPE_NAMES = {v: k.lower() for k, v in TensorProto.DataType.items()}

# Strongly typed networks: op → indices of the inputs that must share one float dtype (None: all).
RECURRENT_STATES = {"LSTM": (5, 6), "GRU": (5,), "RNN": (5,)}  # initial_h (and initial_c)
SAME_TYPE_INPUTS: dict[str, tuple[int, ...] | None] = {
    "LSTM": (0, 1, 2, 3, 5, 6), "GRU": (0, 1, 2, 3, 5), "RNN": (0, 1, 2, 3, 5),
    "MatMul": (0, 1), "Gemm": (0, 1, 2),
    **dict.fromkeys(("Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Mean", "Sum", "PRelu",
                     "Equal", "Greater", "GreaterOrEqual", "Less", "LessOrEqual"), None),
}
FLOAT_TYPES = frozenset({TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16, TensorProto.DOUBLE})
RECURRENT_INPUT_NAMES = ("X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c")


@dataclass(frozen=True)
class Finding:
    rule: str
    node: str  # node name (or op type when unnamed); "" for model-level rules
    message: str

    def __str__(self) -> str:
        where = f" at {self.node}" if self.node else ""
        return f"[{self.rule}]{where}: {self.message}"


def check_tensorrt(model: onnx.ModelProto) -> list[Finding]:
    """Every TensorRT-compatibility rule `model` breaks (empty when it is compatible)."""
    graph = _Graph(model.graph)
    findings = _check_opset(model)
    types = _inferred_types(model)
    for node in model.graph.node:
        findings += _check_strong_types(node, types)
        findings += _check_op(node)
        if node.op_type == "QuantizeLinear":
            findings += _check_quantize(node, graph)
        elif node.op_type == "DequantizeLinear":
            findings += _check_dequantize(node, graph)
        elif node.op_type == "LSTM":
            findings += _check_lstm(node)
    return findings


def require_tensorrt_compatible(model: onnx.ModelProto, what: str = "artifact") -> None:
    findings = check_tensorrt(model)
    if findings:
        lines = "\n  ".join(str(f) for f in findings)
        raise CompatibilityError(f"{what} breaks {len(findings)} TensorRT rule(s):\n  {lines}", findings)


class _Graph:
    """Initializers by name and the node producing each tensor."""

    def __init__(self, graph: onnx.GraphProto):
        self.initializers = {t.name: t for t in graph.initializer}
        self.producers = {o: n for n in graph.node for o in n.output}

    def dtype(self, name: str) -> int | None:
        """Element type of an initializer or of a QuantizeLinear output; None when unknown."""
        if name in self.initializers:
            return self.initializers[name].data_type
        producer = self.producers.get(name)
        if producer is not None and producer.op_type == "QuantizeLinear":
            return _quantize_output_type(producer, self)
        return None


def _name(node: onnx.NodeProto) -> str:
    return node.name or node.op_type


def _attr(node: onnx.NodeProto, name: str, default=None):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _dtype_name(dtype: int | None) -> str:
    return _DTYPE_NAMES.get(dtype, "unknown")


def _check_opset(model: onnx.ModelProto) -> list[Finding]:
    lo, hi = TENSORRT_OPSETS
    versions = [o.version for o in model.opset_import if o.domain in DEFAULT_DOMAINS]
    if not versions:
        return [Finding("opset", "", "no default-domain opset import: expected one in "
                                     f"[{lo}, {hi}]")]
    if not lo <= versions[0] <= hi:
        return [Finding("opset", "", f"opset {versions[0]}: expected [{lo}, {hi}], the opsets every "
                                     "TensorRT 10.x and 11.x parses")]
    return []


def _check_op(node: onnx.NodeProto) -> list[Finding]:
    if node.domain not in DEFAULT_DOMAINS:
        return [Finding("unsupported-op", _name(node),
                        f"{node.domain}::{node.op_type} is a custom-domain op: TensorRT parses only "
                        "default-domain ONNX ops (without plugins)")]
    if node.op_type not in TENSORRT_OPS:
        return [Finding("unsupported-op", _name(node),
                        f"{node.op_type} is not in TensorRT's ONNX operator list")]
    return []


def _quantize_output_type(node: onnx.NodeProto, graph: _Graph) -> int:
    """QuantizeLinear outputs the zero point's type, uint8 when no zero point is given."""
    if len(node.input) > 2 and node.input[2]:
        return graph.dtype(node.input[2]) or TensorProto.UNDEFINED
    return TensorProto.UINT8


def _zero_point_findings(node: onnx.NodeProto, graph: _Graph) -> list[Finding]:
    if len(node.input) < 3 or not node.input[2]:
        return []
    zp = node.input[2]
    if zp not in graph.initializers:
        return [Finding("qdq-zero-point", _name(node),
                        f"zero point {zp!r} is computed: expected a constant zero (symmetric)")]
    values = numpy_helper.to_array(graph.initializers[zp])
    if np.any(values != 0):
        return [Finding("qdq-zero-point", _name(node),
                        f"zero point {zp!r} holds {np.unique(values)[:5].tolist()}: expected all 0 (symmetric)")]
    return []


def _check_quantize(node: onnx.NodeProto, graph: _Graph) -> list[Finding]:
    findings = []
    out_type = _quantize_output_type(node, graph)
    if out_type != TensorProto.INT8:
        missing = " (no zero point given, so uint8)" if len(node.input) < 3 or not node.input[2] else ""
        findings.append(Finding("qdq-int8", _name(node),
                                f"quantizes to {_dtype_name(out_type)}{missing}: expected int8"))
    return findings + _zero_point_findings(node, graph)


def _check_dequantize(node: onnx.NodeProto, graph: _Graph) -> list[Finding]:
    x = node.input[0]
    x_type = graph.dtype(x)
    if x_type is None and len(node.input) > 2 and node.input[2]:
        x_type = graph.dtype(node.input[2])  # the zero point has x's type
    if x_type == TensorProto.INT32:
        return [Finding("qdq-int32-bias", _name(node),
                        f"dequantizes int32 tensor {x!r} (a quantized bias): expected float biases")]
    findings = []
    if x_type is not None and x_type != TensorProto.INT8:
        findings.append(Finding("qdq-int8", _name(node), f"dequantizes {_dtype_name(x_type)}: expected int8"))
    findings += _zero_point_findings(node, graph)
    if x in graph.initializers and len(graph.initializers[x].dims) >= 2:
        findings += _per_channel_findings(node, graph)
    return findings


def _per_channel_findings(node: onnx.NodeProto, graph: _Graph) -> list[Finding]:
    """A weight's DequantizeLinear: explicit axis and a 1-D scale with one entry per channel."""
    weight = graph.initializers[node.input[0]]
    axis = _attr(node, "axis")
    if axis is None:
        return [Finding("qdq-per-channel", _name(node),
                        f"weight {weight.name!r} has no `axis`: expected per-channel quantization")]
    channels = weight.dims[axis]
    scale = graph.initializers.get(node.input[1])
    scale_shape = tuple(scale.dims) if scale is not None else None
    if scale_shape != (channels,):
        return [Finding("qdq-per-channel", _name(node),
                        f"weight {weight.name!r} (shape {tuple(weight.dims)}, axis {axis}) has scale shape "
                        f"{scale_shape}: expected a constant ({channels},) vector, one scale per channel")]
    return []


def _check_lstm(node: onnx.NodeProto) -> list[Finding]:
    findings = []
    direction = _attr(node, "direction", b"forward")
    direction = direction.decode() if isinstance(direction, bytes) else direction
    activations = [a.decode() if isinstance(a, bytes) else a for a in _attr(node, "activations", [])]
    if direction == "bidirectional" and len(activations) == 6 and activations[:3] != activations[3:]:
        findings.append(Finding("lstm-activations", _name(node),
                                f"forward activations {activations[:3]} differ from backward {activations[3:]}: "
                                "expected the same in both directions"))
    layout = _attr(node, "layout", 0)
    if layout != 0:
        findings.append(Finding("lstm-layout", _name(node), f"layout {layout}: expected 0 (sequence-major)"))
    input_forget = _attr(node, "input_forget", 0)
    if input_forget != 0:
        findings.append(Finding("lstm-input-forget", _name(node), f"input_forget {input_forget}: expected 0"))
    return findings


def _inferred_types(model: onnx.ModelProto) -> dict[str, int]:
    """Element type of every tensor ONNX shape inference can type: inputs, initializers,
    Constant outputs and inferred intermediates."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    except Exception:  # an ill-formed graph: type what the model itself declares
        inferred = model
    graph = inferred.graph
    types = {}
    for info in (*graph.input, *graph.output, *graph.value_info):
        if info.type.HasField("tensor_type") and info.type.tensor_type.elem_type:
            types[info.name] = info.type.tensor_type.elem_type
    for tensor in graph.initializer:
        types[tensor.name] = tensor.data_type
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            types[node.output[0]] = node.attribute[0].t.data_type
    return types


def _check_strong_types(node: onnx.NodeProto, types: dict[str, int]) -> list[Finding]:
    if node.op_type not in SAME_TYPE_INPUTS or node.domain not in DEFAULT_DOMAINS:
        return []
    indices = SAME_TYPE_INPUTS[node.op_type]
    recurrent = node.op_type in RECURRENT_STATES
    chosen = range(len(node.input)) if indices is None else [k for k in indices if k < len(node.input)]
    found: dict[int, list[str]] = {}  # dtype → what has it
    for k in chosen:
        name = node.input[k]
        if name and types.get(name) in FLOAT_TYPES:
            label = RECURRENT_INPUT_NAMES[k] if recurrent else f"input {k} {name!r}"
            found.setdefault(types[name], []).append(label)
    findings = []
    if len(found) > 1:
        parts = "; ".join(f"{_dtype_name(t)}: {', '.join(labels)}" for t, labels in found.items())
        findings.append(Finding("strongly-typed", _name(node),
                                f"{node.op_type} mixes float types ({parts}): TensorRT 11 builds strongly typed "
                                "networks and casts nothing implicitly: expected one dtype"))
    weights = types.get(node.input[1]) if recurrent and len(node.input) > 1 else None
    if recurrent and weights in FLOAT_TYPES and weights != TensorProto.FLOAT:
        absent = [RECURRENT_INPUT_NAMES[k] for k in RECURRENT_STATES[node.op_type]
                  if k >= len(node.input) or not node.input[k]]
        if absent:
            findings.append(Finding(
                "strongly-typed", _name(node),
                f"{_dtype_name(weights)} {node.op_type} without {', '.join(absent)}: TensorRT's ONNX parser makes "
                f"absent initial states float32 zeros, which meet the {_dtype_name(weights)} weights in a strongly "
                f"typed network (TensorRT 11): expected explicit zero states of {_dtype_name(weights)}"))
    return findings
