"""PyTorch model → one self-contained FP32 ONNX graph (docs/design.md §6).

Inputs `text`, `audio`, `vision` (B, L_m, d_m) float32 with a dynamic batch axis and one
dynamic sequence axis per modality; output `score` (B, out). LSTMs become native ONNX `LSTM`
nodes. The same model and options give the same bytes: names come from the module tree,
doc strings are dropped and the producer is this package, not the torch build.

Exporter: TorchScript (`dynamo=False`, still supported by torch 2.13), chosen by measurement
(benchmarks/export/export_precisions.py --exporters; 2-core x86_64 CPU, onnxruntime 1.32, MIMIC at
preset mosi, batch 1, one thread, p50 side by side): TorchScript exports in 0.7 s (MISA 0.3 s)
against 8.7 s (MISA 22 s) for dynamo, to 129 nodes (before the rewrites of `lean` below)
against 176, which run a little faster, 0.233 vs 0.241 ms; dynamo's MISA graph carries 126
`Slice` nodes against 16. Both emit native `LSTM` nodes. The model's head is traced as it is
(the 16³ cube, then MaxPool): swapping in the exact factorised max-pool
(kernels.reference.pooled_outer_factorized) gave 189 nodes and 0.24-0.25 ms against
0.22-0.23 ms, and scores that differ in the last bit.

Opset 17 by default: the first with `LayerNormalization` (one node instead of seven), inside
the range every TensorRT 10.x parses (opsets 9-20 from 10.0, JetPack 6 ships 10.3; 9-24 from
10.15 on, the range 11.x parses); per-channel Q/DQ needs ≥ 13.

Graph clean-up (`lean`), exact rewrites only. onnxslim does the generic part: constant
folding, Identity, x·1 (MIMIC's ablation switches) and other no-ops removed, chained
Unsqueezes merged, common subexpressions and equal small constants shared, dead nodes
dropped, topological order, shapes inferred (it also knows d_model, so MISA's attention
scale folds). Ours are two rewrites that need to know what the exporter emits for these
models, both exact, which onnxslim cannot do since the batch axis is dynamic:
- zero LSTM initial states dropped (ONNX's default is zero): the exporter builds them from the
  batch size, Shape → Gather → Unsqueeze → Concat → ConstantOfShape, 5 nodes per LSTM. Off
  with `lean(model, drop_zero_lstm_states=False)`, for a consumer that wants the states
  explicit;
- Gather(i) of Concat(Unsqueeze(x_0), ...) along the same axis read as x_i: MIMIC's head
  stacks its three modality vectors and indexes them back.
onnxslim runs after them and drops what they leave unread. It folds no QuantizeLinear/
DequantizeLinear, so `lean` is also safe on the int8 QDQ graph (and on the fp16 one), and
it is deterministic (same bytes across processes and PYTHONHASHSEED values).

Measured at preset mosi (2-core x86_64 CPU shared with other jobs, onnxruntime 1.32, onnx
1.23, onnxslim 0.1.98): nodes, raw export → onnxslim alone → `lean`: MIMIC 191 → 137 → 108
(the former hand-written clean-up: 108), MISA 372 → 164 → 134 (former: 193); fp16 121 and
156 (4 Casts more, and 3 nodes per LSTM for its explicit float16 zero states, see
export/precision.py; without them 112 and 138, outputs bit-identical, and in ONNX Runtime,
MIMIC batch 1, one thread, 0.015 ms faster: 0.61-0.67 vs 0.63-0.69 ms over 4 alternating
runs), int8 242 and 213. ONNX Runtime, batch 1, one intra-op thread, ORT_ENABLE_EXTENDED,
p50 of 3000-4000 runs alternating with the former clean-up's graph in one process: MIMIC
0.38 vs 0.38-0.39 ms (new/old 0.984-0.991 over 7 runs); MISA 7.1-7.5 ms either way
(new/old 0.975-1.057, median 1.01, over 7 runs: 88% of it is the six LSTM nodes, the same in
both; outside them ORT's profiler gives 0.94 vs 1.05 ms), and at 10 steps 2.34 vs 2.41 ms.
Max |ONNX Runtime - PyTorch| ≤ 2e-7. The price is export time: onnxslim takes 0.3 s (MIMIC)
and 0.5-0.7 s (MISA), against 0.015 and 0.065 s for the former hand-written passes.
"""
from __future__ import annotations

import contextlib
import io
import sys
import warnings

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from mimic_edge import __version__
from mimic_edge.config import LENGTHS_INPUTS, MODALITIES, OUTPUT_NAME, model_name
from mimic_edge.models.common import WithLengths
from mimic_edge.errors import ConfigError

DEFAULT_OPSET = 17
OPSET_RANGE = (17, 20)  # LayerNormalization needs 17; TensorRT 10.0-10.x parse up to 20


def check_opset(opset: int) -> None:
    lo, hi = OPSET_RANGE
    if not lo <= opset <= hi:
        raise ConfigError(f"opset {opset} is outside [{lo}, {hi}]: expected an opset with LayerNormalization "
                          f"(≥ {lo}) that every TensorRT 10.x parses (≤ {hi})")


def dynamic_axes(lengths: bool = False) -> dict[str, dict[int, str]]:
    """Batch shared by all inputs; one sequence axis per modality (unaligned data)."""
    axes = {m: {0: "batch", 1: f"seq_{m}"} for m in MODALITIES}
    if lengths:
        axes.update({LENGTHS_INPUTS[m]: {0: "batch"} for m in MODALITIES})
    return {**axes, OUTPUT_NAME: {0: "batch"}}


@contextlib.contextmanager
def _no_mha_fastpath():
    """nn.TransformerEncoderLayer (MISA) takes a fused `_transformer_encoder_layer_fwd` path in
    eval mode under no_grad, which the TorchScript exporter cannot express; the plain path is
    the same math."""
    before = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(before)


def to_onnx(model: torch.nn.Module, opset: int = DEFAULT_OPSET, lengths: bool = False) -> onnx.ModelProto:
    """Trace `model` in eval mode (dropout off) and return the lean, stamped FP32 graph; with
    `lengths`, with the inputs LENGTHS_INPUTS too (per-sample valid lengths, stamped "lengths")."""
    check_opset(opset)
    model = model.eval()
    dims = model.config.dims
    # Example lengths differ per modality and from the batch size, so that no axis is
    # mistaken for another while tracing; values do not matter.
    example = tuple(torch.zeros(2, 3 + i, dims[m]) for i, m in enumerate(MODALITIES))
    names = list(MODALITIES)
    if lengths:  # eval() on the wrapper too: export restores its mode, and with it the model's
        model = WithLengths(model).eval()
        example += tuple(torch.tensor([3 + i, 1]) for i in range(len(MODALITIES)))  # valid lengths, distinct
        names += [LENGTHS_INPUTS[m] for m in MODALITIES]
    buffer = io.BytesIO()
    with torch.no_grad(), _no_mha_fastpath(), warnings.catch_warnings():
        # TracerWarnings flag shapes read as Python numbers (d_model for 1/√D): constant by design.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, example, buffer, dynamo=False, opset_version=opset,
            input_names=names, output_names=[OUTPUT_NAME], dynamic_axes=dynamic_axes(lengths),
            do_constant_folding=True,
        )
    proto = onnx.load_from_string(buffer.getvalue())
    config = model.config  # WithLengths carries its model's
    return stamp(lean(proto), {"model": model_name(config), "preset": config.preset, "config_digest": config.digest(),
                               **({"lengths": "per-sample"} if lengths else {})})  # convert() stamps the precision


# ---------------------------------------------------------------------------------------------
# Graph clean-up: exact rewrites only (no value changes). onnxslim does the generic part; the
# two passes below know what the TorchScript exporter emits for this model family.

def lean(model: onnx.ModelProto, *, drop_zero_lstm_states: bool = True) -> onnx.ModelProto:
    """The model-specific rewrites (zero LSTM initial states dropped when `drop_zero_lstm_states`,
    Gather(i) of a freshly stacked tensor bypassed), then onnxslim for the rest, identical
    initializers shared, doc strings stripped. Also run on the fp16 and int8 graphs after their conversion (export/precision.py);
    onnxslim folds no QuantizeLinear/DequantizeLinear, so the int8 Q/DQ and weights stay."""
    graph = model.graph
    if drop_zero_lstm_states:
        _drop_zero_lstm_states(graph)
    _bypass_stack_then_index(graph)
    model = _slim(model)
    _share_identical_initializers(model.graph)  # after onnxslim, whose constant folding makes them
    strip_doc_strings(model)
    return model


def _slim(model: onnx.ModelProto) -> onnx.ModelProto:
    """onnxslim with its defaults: constants folded (by ONNX Runtime, on CPU), no-op nodes
    removed (Identity, x·1, x+0, same-type Cast...), chained Unsqueezes merged, common
    subexpressions and identical weights shared, dead nodes and initializers dropped, nodes
    sorted, shapes inferred. Its logger prints through `print`: anything it says goes to stderr,
    stdout is the export's (it also sets onnxruntime's default logger severity to ERROR, for
    the whole process). onnxslim drops graph inputs that nobody reads: the interface is put
    back as it was (an unread input is valid ONNX, and callers feed every modality)."""
    import onnxslim

    inputs = [onnx.ValueInfoProto.FromString(i.SerializeToString()) for i in model.graph.input]
    with contextlib.redirect_stdout(sys.stderr):
        slimmed = onnxslim.slim(model)
    weights = {t.name for t in slimmed.graph.initializer}
    del slimmed.graph.input[:]
    slimmed.graph.input.extend(i for i in inputs if i.name not in weights)
    return slimmed


def _constant_values(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    """Initializers and `Constant` node outputs (the raw export has both)."""
    values = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return values


def _drop_zero_lstm_states(graph: onnx.GraphProto) -> None:
    """LSTM inputs 5 and 6 (initial_h, initial_c) default to zeros: the exporter feeds explicit
    zeros built from the batch size (Shape → Gather → Unsqueeze → Concat → ConstantOfShape per
    LSTM, 5 nodes that onnxslim cannot fold since the batch is dynamic). The inputs become empty;
    onnxslim then drops the unread chain."""
    zeros = {name for name, value in _constant_values(graph).items() if not value.any()}
    for node in graph.node:
        if node.op_type == "ConstantOfShape":
            value = next((a.t for a in node.attribute if a.name == "value"), None)
            if value is None or not numpy_helper.to_array(value).any():
                zeros.add(node.output[0])
    for node in graph.node:
        if node.op_type != "LSTM":
            continue
        inputs = list(node.input)
        for k in (5, 6):
            if k < len(inputs) and inputs[k] in zeros:
                inputs[k] = ""
        while inputs and inputs[-1] == "":
            inputs.pop()
        del node.input[:]
        node.input.extend(inputs)


def _share_identical_initializers(graph: onnx.GraphProto) -> None:
    """One initializer where several hold the same bytes (type, shape, data): the graph with lengths
    runs each LSTM twice, and the exporter writes its weights twice (0.53 MB of 1.8 MB for MIMIC).
    Left alone in a graph with subgraphs, whose nodes may name outer initializers."""
    if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for n in graph.node for a in n.attribute):
        return
    first: dict[tuple, str] = {}
    renamed: dict[str, str] = {}
    kept = []
    for tensor in graph.initializer:
        key = (tensor.data_type, tuple(tensor.dims), tensor.raw_data)
        if tensor.raw_data and key in first:
            renamed[tensor.name] = first[key]
            continue
        first.setdefault(key, tensor.name)
        kept.append(tensor)
    if not renamed:
        return
    del graph.initializer[:]
    graph.initializer.extend(kept)
    for node in graph.node:
        for i, name in enumerate(node.input):
            node.input[i] = renamed.get(name, name)


def _bypass_stack_then_index(graph: onnx.GraphProto) -> None:
    """Gather(Concat(Unsqueeze(x_0, a), Unsqueeze(x_1, a), ...), i) along axis a is x_i:
    MIMIC's fusion head stacks its three modality vectors and indexes them back (4 nodes per
    read, 14 in all at preset mosi). Readers of the Gather read x_i instead; onnxslim then drops
    the unread nodes. Graph outputs keep their producers."""
    consts = _constant_values(graph)
    producers = {o: n for n in graph.node for o in n.output}
    outputs = {o.name for o in graph.output}
    same = {}
    for node in graph.node:
        if node.op_type == "Gather" and node.output[0] not in outputs:
            source = _unstacked(node, producers, consts)
            if source is not None:
                same[node.output[0]] = source
    for node in graph.node:
        for k, name in enumerate(node.input):
            while name in same:
                name = same[name]
            node.input[k] = name


def _unstacked(gather: onnx.NodeProto, producers: dict, consts: dict) -> str | None:
    concat = producers.get(gather.input[0])
    index = consts.get(gather.input[1])
    if concat is None or concat.op_type != "Concat" or index is None or index.ndim != 0:
        return None
    axis = _int_attr(gather, "axis", 0)
    if axis < 0 or axis != _int_attr(concat, "axis", 0):
        return None
    parts = [producers.get(i) for i in concat.input]
    if not all(p is not None and p.op_type == "Unsqueeze" and len(p.input) == 2 and p.input[1] in consts
               and consts[p.input[1]].tolist() == [axis] for p in parts):
        return None
    i = int(index)
    return parts[i].input[0] if -len(parts) <= i < len(parts) else None


def _int_attr(node: onnx.NodeProto, name: str, default: int) -> int:
    return next((a.i for a in node.attribute if a.name == name), default)


def strip_doc_strings(model: onnx.ModelProto) -> None:
    """Doc strings may carry source paths of the machine that exported: not reproducible."""
    model.doc_string = ""
    model.graph.doc_string = ""
    for node in model.graph.node:
        node.doc_string = ""


def stamp(model: onnx.ModelProto, metadata: dict[str, str]) -> onnx.ModelProto:
    """Producer = this package (not the torch build string), metadata sorted by key, merged
    into what the model already carries."""
    model.producer_name = "mimic-edge"
    model.producer_version = __version__
    model.domain = ""
    model.model_version = 0
    merged = {p.key: p.value for p in model.metadata_props}
    merged.update({k: str(v) for k, v in metadata.items()})
    del model.metadata_props[:]
    for key in sorted(merged):
        model.metadata_props.add(key=key, value=merged[key])
    return model


def metadata(model: onnx.ModelProto) -> dict[str, str]:
    return {p.key: p.value for p in model.metadata_props}


def to_bytes(model: onnx.ModelProto) -> bytes:
    """Deterministic serialization (map fields in a fixed order)."""
    return model.SerializeToString(deterministic=True)

