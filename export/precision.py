"""Precision conversions of the FP32 graph (docs/design.md §6): one function per entry of the registry
(mimic_edge.export.precisions), which names it.

Each converter takes the FP32 `onnx.ModelProto` and the calibration inputs
({"text": (N, Lt, dt), ...} float32, used by INT8 only) and returns a new graph whose
inputs and outputs stay float32.

- fp16: weights and compute in float16 (onnxruntime's float16 converter, `keep_io_types`).
  LSTMs are converted too: TensorRT runs them in FP16, and ONNX Runtime's CPU provider, which
  has no float16 LSTM kernel, runs them by inserting casts around its float32 kernel.
- int8: explicit Q/DQ from ONNX Runtime's static quantizer, restricted to what TensorRT's
  parser accepts: int8 weights and activations, symmetric (zero points 0), per-channel
  weights, biases left in float (no int32 bias DequantizeLinear). Only MatMul and Gemm inputs
  are quantized, so LSTMs, LayerNorm, Softmax and the max-pool stay float (TensorRT fuses Q/DQ
  into the matrix products; Q/DQ around other ops only adds reformatting).
- int8-cpu: for ONNX Runtime's CPU integer kernels, where the int8 artifact above is slower than
  fp32 (LSTMs float, Q/DQ pairs): dynamic quantization of the LSTMs, MatMuls and Gemms, with
  7-bit weights so that no CPU's integer kernels saturate.
"""
from __future__ import annotations

import contextlib
import functools
import logging
import math
import tempfile
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import onnx

from mimic_edge.config import LENGTHS_INPUTS, MODALITIES
from mimic_edge.errors import ConfigError
from mimic_edge.export.checker import RECURRENT_STATES
from mimic_edge.export.onnx import lean, stamp
from mimic_edge.export.precisions import Precision

Calibration = Mapping[str, np.ndarray]
CALIB_BATCH = 32  # samples per calibration run; min/max do not depend on it
# Activation ranges depend on sequence length (softmax weights grow as sequences shrink), so the
# calibration set is cut to several lengths, unequal across modalities. Calibrated at full length
# only, a trained MIMIC (mosi) scored 8 dB SQNR on 10-step inputs; with these fractions, 34-44 dB
# on every parity case from 5 to 50 steps (2-core x86_64 CPU, onnxruntime 1.32).
CALIB_LENGTH_FRACTIONS = (1.0, 0.75, 0.5, 0.25, 0.1)
QUANTIZED_OPS = ("MatMul", "Gemm")
CPU_QUANTIZED_OPS = ("LSTM", "MatMul", "Gemm")  # int8-cpu: see to_int8_cpu


def to_fp32(model: onnx.ModelProto, calibration: Calibration | None = None) -> onnx.ModelProto:
    return model


def to_fp16(model: onnx.ModelProto, calibration: Calibration | None = None) -> onnx.ModelProto:
    """fp16 weights and compute, fp32 inputs and outputs. The LSTMs become float16 with explicit
    zero initial states of float16: the fp32 graph leaves them out (ONNX's default is zeros),
    but TensorRT's ONNX parser would then make float32 zeros, which a strongly typed network
    (TensorRT 11) cannot feed to float16 LSTMs (the checker's `strongly-typed` rule)."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    converted = convert_float_to_float16(model, keep_io_types=True, disable_shape_infer=False)
    _add_zero_recurrent_states(converted.graph)
    return lean(converted, drop_zero_lstm_states=False)


def _add_zero_recurrent_states(graph: onnx.GraphProto) -> None:
    """Feed every recurrence whose weights are not float32 and that lacks initial states a zero
    state of its weights' dtype, (num_directions, batch, hidden_size) with the batch read from
    X (layout 0: (seq, batch, input)): Shape → Concat → ConstantOfShape, one zero tensor for
    both of an LSTM's states. Exact: absent states are zeros by ONNX's definition."""
    from onnx import helper, numpy_helper

    weights = {t.name: t for t in graph.initializer}
    nodes = []  # the graph's nodes, each zero-state chain just before its recurrence
    for node in graph.node:
        states = RECURRENT_STATES.get(node.op_type)
        w = weights.get(node.input[1]) if states and len(node.input) > 1 else None
        missing = [k for k in states if k >= len(node.input) or not node.input[k]] if states else []
        if w is None or w.data_type == onnx.TensorProto.FLOAT or not missing:
            nodes.append(node)
            continue
        prefix = f"{node.name or node.output[0]}/zero_state"
        hidden = next(a.i for a in node.attribute if a.name == "hidden_size")
        directions, _, _ = w.dims  # W: (num_directions, gates * hidden, input)
        graph.initializer.extend([
            numpy_helper.from_array(np.array([directions], np.int64), f"{prefix}/directions"),
            numpy_helper.from_array(np.array([hidden], np.int64), f"{prefix}/hidden")])
        zero = numpy_helper.from_array(np.zeros(1, helper.tensor_dtype_to_np_dtype(w.data_type)), "value")
        nodes += [
            helper.make_node("Shape", [node.input[0]], [f"{prefix}/batch"], f"{prefix}/Shape", start=1, end=2),
            helper.make_node("Concat", [f"{prefix}/directions", f"{prefix}/batch", f"{prefix}/hidden"],
                             [f"{prefix}/shape"], f"{prefix}/Concat", axis=0),
            helper.make_node("ConstantOfShape", [f"{prefix}/shape"], [prefix], f"{prefix}/ConstantOfShape",
                             value=zero),
        ]
        inputs = list(node.input) + [""] * (max(states) + 1 - len(node.input))
        for k in missing:
            inputs[k] = prefix
        del node.input[:]
        node.input.extend(inputs)
        nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)


def to_int8(model: onnx.ModelProto, calibration: Calibration | None = None) -> onnx.ModelProto:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    if not calibration:
        raise ConfigError("int8 needs calibration inputs: expected a dict of text/audio/vision arrays, found none")
    with tempfile.TemporaryDirectory(prefix="mimic-edge-int8-") as tmp, _quiet_root_logger():
        out = Path(tmp) / "int8.onnx"
        quantize_static(
            _copy(model), out, _CalibrationReader(calibration, lengths=takes_lengths(model)),  # the quantizer
            # edits the graph it is given: a copy
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,  # TensorRT: int8 only
            per_channel=True,
            op_types_to_quantize=list(QUANTIZED_OPS),
            calibrate_method=CalibrationMethod.MinMax,
            extra_options={
                "ActivationSymmetric": True, "WeightSymmetric": True,  # zero points 0
                "QuantizeBias": False,  # no int32 bias DequantizeLinear
                # Q/DQ on the inputs of MatMul/Gemm only, as TensorRT's placement guide recommends: a Q
                # on their outputs adds an int8 round trip TensorRT must fuse away. Measured on seeded
                # MIMIC (MISA): 57 → 30 (33 → 16) QuantizeLinear, validation SQNR 47.7 → 49.5 dB
                # (26.5 → 27.3 dB), the TensorRT rules still met (docs/export.md).
                "OpTypesToExcludeOutputQuantization": list(QUANTIZED_OPS),
            },
        )
        quantized = onnx.load(out)
    return lean(quantized)


def to_int8_cpu(model: onnx.ModelProto, calibration: Calibration | None = None) -> onnx.ModelProto:
    """INT8 for ONNX Runtime's CPU integer kernels: dynamic quantization (weights int8 ahead of
    time, activations quantized per run from their own range, so no calibration), on
    CPU_QUANTIZED_OPS. ONNX Runtime fuses the result into DynamicQuantizeLSTM,
    DynamicQuantizeMatMul and MatMulIntegerToFloat (bias included).

    Weights are int8 in 7 bits ([-64, 64], `reduce_range`), so that the artifact is as accurate on
    every CPU: ONNX Runtime's u8s8 kernels on x86 without VNNI add pairs of u8×s8 products in
    int16, and 2·255·64 = 32640 fits where 2·255·127 = 64770 saturates (a trained MIMIC scored
    14 dB SQNR there with full-range weights, 41 dB with these, as on VNNI and ARM). Chosen by
    measurement on three ISAs: docs/export.md, "INT8 on CPUs"."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="mimic-edge-int8-cpu-") as tmp, _quiet_root_logger():
        source, out = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        onnx.save(model, source)
        quantize_dynamic(source, out, op_types_to_quantize=list(CPU_QUANTIZED_OPS), weight_type=QuantType.QInt8,
                         per_channel=False, reduce_range=True)
        quantized = onnx.load(out)
    return lean(quantized)


def _copy(model: onnx.ModelProto) -> onnx.ModelProto:
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    return copy


@contextlib.contextmanager
def _quiet_root_logger():
    """The quantizer warns on the root logger to run its pre-processing (shape inference and
    graph clean-up): `lean` already did the clean-up, and MatMul/Gemm need no inferred shapes."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


class _CalibrationReader:
    """Feeds the calibration set to the quantizer in batches of up to CALIB_BATCH, each modality
    cut to a fraction of its length that cycles over CALIB_LENGTH_FRACTIONS (onnxruntime's
    CalibrationDataReader protocol: `get_next()` until None)."""

    def __init__(self, calibration: Calibration, lengths: bool = False):
        """`lengths`: the graph takes per-sample lengths too (LENGTHS_INPUTS): every step is valid."""
        n = len(calibration[MODALITIES[0]])
        fractions = CALIB_LENGTH_FRACTIONS
        # at least one batch per fraction, so that every modality meets every length
        batch = max(1, min(CALIB_BATCH, math.ceil(n / len(fractions))))
        batches = [{m: _crop(calibration[m][i:i + batch], fractions[(k + j) % len(fractions)])
                    for j, m in enumerate(MODALITIES)} for k, i in enumerate(range(0, n, batch))]
        if lengths:
            for feeds in batches:
                feeds.update({LENGTHS_INPUTS[m]: np.full(len(x), x.shape[1], np.int64) for m, x in list(feeds.items())})
        self._batches = iter(batches)

    def get_next(self):
        return next(self._batches, None)


def takes_lengths(model: onnx.ModelProto) -> bool:
    """The graph has the per-sample lengths inputs (exported with --lengths)."""
    return set(LENGTHS_INPUTS.values()) <= {i.name for i in model.graph.input}


def _crop(x: np.ndarray, fraction: float) -> np.ndarray:
    length = max(1, round(x.shape[1] * fraction))
    return np.ascontiguousarray(x[:, :length], dtype=np.float32)


Converter = Callable[[onnx.ModelProto, "Calibration | None"], onnx.ModelProto]


def convert(model: onnx.ModelProto, entry: Precision, calibration: Calibration | None = None) -> onnx.ModelProto:
    """The FP32 graph at `entry`'s precision (an entry of mimic_edge.export.precisions.PRECISIONS)."""
    converter: Converter = globals()[entry.converter]
    return stamp(converter(model, calibration), {"precision": entry.key})


@functools.cache  # the sources do not change while a process runs; the bench asks once per row
def recipe(entry: Precision, opset: int) -> str:
    """What makes an artifact besides the weights and the data, as a digest: the registry entry,
    the opset and the code of the ONNX export and of the conversions. A cache of artifacts (the
    bench's) rebuilds one whose recipe differs: made by other export code, it is another artifact."""
    import hashlib
    import inspect
    import sys

    from mimic_edge.export import onnx as onnx_export

    digest = hashlib.sha256(f"{entry!r} opset {opset}".encode())
    for module in (onnx_export, sys.modules[__name__]):
        digest.update(inspect.getsource(module).encode())
    return digest.hexdigest()[:16]
