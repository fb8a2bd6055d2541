"""FP16 and INT8 conversions: what the graphs carry (types, Q/DQ placement, TensorRT rules) and
how close they stay to PyTorch (SQNR and task metrics within the precision's thresholds)."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, numpy_helper

from mimic_edge.config import MODALITIES
from mimic_edge.errors import ConfigError
from mimic_edge.export.checker import check_tensorrt
from mimic_edge.export.onnx import metadata, to_bytes
from mimic_edge.export.precision import CALIB_BATCH, CALIB_LENGTH_FRACTIONS, _CalibrationReader, convert
from mimic_edge.export.precisions import PRECISIONS
from mimic_edge.export.validate import validate

MODELS = [("mimic", "mosi"), ("misa", "mosi-bert")]


def io_types(model: onnx.ModelProto) -> set[int]:
    return {v.type.tensor_type.elem_type for v in [*model.graph.input, *model.graph.output]}


@pytest.mark.parametrize("name, preset", MODELS)
def test_fp16_weights_and_fp32_io(exports, name, preset):
    model = exports.converted(name, "fp16", preset)
    float_types = {t.data_type for t in model.graph.initializer
                   if t.data_type in (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE)}
    assert float_types == {TensorProto.FLOAT16}
    assert io_types(model) == {TensorProto.FLOAT}
    assert metadata(model)["precision"] == "fp16"
    assert check_tensorrt(model) == []


def weight_of(node: onnx.NodeProto, producers: dict, initializers: dict):
    """The int8 initializer behind a MatMul/Gemm's second input, or None when it is not a Q/DQ weight."""
    dq = producers.get(node.input[1])
    if dq is None or dq.op_type != "DequantizeLinear" or dq.input[0] not in initializers:
        return None
    return initializers[dq.input[0]]


@pytest.mark.parametrize("name, preset", [("mimic", "mosi"), ("misa", "mosi")])
def test_int8_quantizes_every_matmul_weight_and_keeps_lstms_float(exports, name, preset):
    model = exports.converted(name, "int8", preset)
    fp32 = exports.fp32(name, preset)
    fp32_inits = {t.name for t in fp32.graph.initializer}
    weighted = [n for n in fp32.graph.node if n.op_type in ("MatMul", "Gemm") and n.input[1] in fp32_inits]
    initializers = {t.name: t for t in model.graph.initializer}
    producers = {o: n for n in model.graph.node for o in n.output}
    products = [n for n in model.graph.node if n.op_type in ("MatMul", "Gemm") and n.input[1] not in initializers]
    assert len(products) >= len(weighted) > 0  # every weight now comes through a DequantizeLinear
    weights = [weight_of(n, producers, initializers) for n in products]
    assert sum(w is not None for w in weights) == len(weighted)
    assert all(w.data_type == TensorProto.INT8 for w in weights if w is not None)
    for lstm in (n for n in model.graph.node if n.op_type == "LSTM"):
        assert initializers[lstm.input[1]].data_type == TensorProto.FLOAT  # W stays float
    assert io_types(model) == {TensorProto.FLOAT}
    assert check_tensorrt(model) == [], "every TensorRT rule holds"


def test_int8_quantization_is_symmetric_per_channel(exports):
    model = exports.converted("mimic", "int8")
    initializers = {t.name: t for t in model.graph.initializer}
    qdq = [n for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    assert qdq
    for node in qdq:
        zero_point = initializers[node.input[2]]
        assert zero_point.data_type == TensorProto.INT8 and not numpy_helper.to_array(zero_point).any()
    weight_dq = [n for n in qdq if n.op_type == "DequantizeLinear" and n.input[0] in initializers]
    for node in weight_dq:
        channels = initializers[node.input[0]].dims[node.attribute[0].i]
        assert [a.name for a in node.attribute] == ["axis"]
        assert tuple(initializers[node.input[1]].dims) == (channels,)


@pytest.mark.parametrize("precision", ["fp16", "int8"])
@pytest.mark.parametrize("name, preset", MODELS)
def test_lower_precision_stays_within_thresholds(exports, name, preset, precision):
    report = validate(to_bytes(exports.converted(name, precision, preset)), PRECISIONS[precision], exports.model(name, preset),
                      exports.data(preset)["valid"], log=lambda _: None)
    failed = [c for c in report["checks"] if not c["passed"]]
    assert report["passed"], f"failed checks: {failed}"
    sqnrs = [c["value"] for c in report["checks"] if c["check"].endswith("sqnr_db")]
    assert min(sqnrs) >= PRECISIONS[precision].thresholds.sqnr_db


def test_int8_needs_calibration(exports):
    with pytest.raises(ConfigError, match="int8 needs calibration inputs"):
        convert(exports.fp32("mimic"), PRECISIONS["int8"], None)


@pytest.mark.parametrize("n", [3, 64, 3 * CALIB_BATCH + 5, 10 * CALIB_BATCH])
def test_calibration_batches_give_every_modality_every_length(n):
    seq_len = 50
    calibration = {m: np.ones((n, seq_len, 4), np.float64) for m in MODALITIES}
    batches = list(iter(_CalibrationReader(calibration).get_next, None))
    assert sum(len(b["text"]) for b in batches) == n and max(len(b["text"]) for b in batches) <= CALIB_BATCH
    assert all(x.dtype == np.float32 and x.flags.c_contiguous for b in batches for x in b.values())
    first = [batches[0][m].shape[1] for m in MODALITIES]
    assert first == [round(seq_len * f) for f in CALIB_LENGTH_FRACTIONS[:3]]  # unequal across modalities
    if n >= len(CALIB_LENGTH_FRACTIONS):
        for m in MODALITIES:
            assert {b[m].shape[1] for b in batches} == {round(seq_len * f) for f in CALIB_LENGTH_FRACTIONS}


@pytest.mark.parametrize("precision", ["fp16", "int8", "int8-cpu"])
def test_converters_leave_the_fp32_graph_alone(exports, precision):
    """The fp32 graph may serve several precisions: a converter must not edit it."""
    fp32 = exports.fp32("mimic")
    before = to_bytes(fp32)
    convert(fp32, PRECISIONS[precision], exports.calibration())
    assert to_bytes(fp32) == before


@pytest.mark.parametrize("name", ["mimic", "misa"])
def test_int8_quantizes_the_inputs_of_matmuls_not_their_outputs(exports, name):
    """Q/DQ where TensorRT's placement guide puts them: on the inputs of MatMul/Gemm. A MatMul's or
    Gemm's output is quantized only where another MatMul/Gemm reads it (attention), never for
    its own sake (an int8 round trip TensorRT would have to fuse away)."""
    model = exports.converted(name, "int8")
    producer = {out: node for node in model.graph.node for out in node.output}
    consumers: dict[str, list] = {}
    for node in model.graph.node:
        for tensor in node.input:
            consumers.setdefault(tensor, []).append(node)
    weighted = ("MatMul", "Gemm")
    outputs_quantized = [q for q in model.graph.node if q.op_type == "QuantizeLinear"
                         and getattr(producer.get(q.input[0]), "op_type", None) in weighted]
    for q in outputs_quantized:
        (dq,) = consumers[q.output[0]]
        assert any(c.op_type in weighted for c in consumers[dq.output[0]]), q.input[0]
    assert all(producer[n.input[0]].op_type == "DequantizeLinear" for n in model.graph.node if n.op_type in weighted)
