"""PyTorch model → one self-contained FP32 ONNX graph (DESIGN §6).

Inputs `text`, `audio`, `vision` (B, L_m, d_m) float32 with a dynamic batch axis and one
dynamic sequence axis per modality; output `score` (B, out). LSTMs become native ONNX `LSTM`
nodes. The same model and options give the same bytes: names come from the module tree,
doc strings are dropped and the producer is this package, not the torch build.

Exporter: TorchScript (`dynamo=False`, still supported by torch 2.13), chosen by measurement
(benchmarks/export_precisions.py --exporters; 2-core x86_64 CPU, onnxruntime 1.32, MIMIC at
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
"""
from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from mimic_edge import __version__
from mimic_edge.config import MODALITIES, model_name
from mimic_edge.errors import ConfigError

OUTPUT_NAME = "score"
DEFAULT_OPSET = 17
OPSET_RANGE = (17, 20)  # LayerNormalization needs 17; TensorRT 10.0-10.x parse up to 20


def check_opset(opset: int) -> None:
    lo, hi = OPSET_RANGE
    if not lo <= opset <= hi:
        raise ConfigError(f"opset {opset} is outside [{lo}, {hi}]: expected an opset with LayerNormalization "
                          f"(≥ {lo}) that every TensorRT 10.x parses (≤ {hi})")


def dynamic_axes() -> dict[str, dict[int, str]]:
    """Batch shared by all inputs; one sequence axis per modality (unaligned data)."""
    axes = {m: {0: "batch", 1: f"seq_{m}"} for m in MODALITIES}
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


def to_onnx(model: torch.nn.Module, opset: int = DEFAULT_OPSET) -> onnx.ModelProto:
    """Trace `model` in eval mode (dropout off) and return the lean, stamped FP32 graph."""
    check_opset(opset)
    model = model.eval()
    dims = model.config.dims
    # Example lengths differ per modality and from the batch size, so that no axis is
    # mistaken for another while tracing; values do not matter.
    example = tuple(torch.zeros(2, 3 + i, dims[m]) for i, m in enumerate(MODALITIES))
    buffer = io.BytesIO()
    with torch.no_grad(), _no_mha_fastpath(), warnings.catch_warnings():
        # TracerWarnings flag shapes read as Python numbers (d_model for 1/√D): constant by design.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, example, buffer, dynamo=False, opset_version=opset,
            input_names=list(MODALITIES), output_names=[OUTPUT_NAME], dynamic_axes=dynamic_axes(),
            do_constant_folding=True,
        )
    proto = onnx.load_from_string(buffer.getvalue())
    return stamp(lean(proto), {"model": model_name(model.config), "preset": model.config.preset,
                               "config_digest": model.config.digest(), "precision": "fp32"})


# ---------------------------------------------------------------------------------------------
# Graph clean-up: exact rewrites only (no value changes).

def lean(model: onnx.ModelProto) -> onnx.ModelProto:
    """Constants → initializers, integer arithmetic on constants folded (MISA's attention
    computes a `Mod` of two constants), zero LSTM initial states dropped (ONNX's default is zero),
    no-op nodes bypassed (Identity, x·1, indexing a freshly stacked tensor), chained Unsqueezes
    merged, dead nodes and initializers removed, doc strings stripped. MIMIC (mosi): 191 → 108
    nodes, ORT p50 0.223 → 0.216 ms (batch 1, one thread, side by side, 2-core x86_64 CPU)."""
    graph = model.graph
    _constants_to_initializers(graph)
    _fold_integer_constants(graph, default_opset(model))
    _drop_zero_lstm_states(graph)
    _bypass(graph, _no_op_outputs(graph))
    _remove_dead(graph)
    _merge_unsqueezes(graph)
    _remove_dead(graph)
    _sort_topologically(graph)
    strip_doc_strings(model)
    return model


def _constants_to_initializers(graph: onnx.GraphProto) -> None:
    keep = []
    for node in graph.node:
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx") and len(node.attribute) == 1 \
                and node.attribute[0].name == "value":
            tensor = onnx.TensorProto()
            tensor.CopyFrom(node.attribute[0].t)
            tensor.name = node.output[0]
            graph.initializer.append(tensor)
        else:
            keep.append(node)
    _replace_nodes(graph, keep)


def default_opset(model: onnx.ModelProto) -> int:
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


_SHAPE_OPS = {"Add", "Sub", "Mul", "Div", "Mod", "Cast", "Concat", "Gather", "Unsqueeze", "Squeeze",
              "Reshape", "Slice", "Range", "Equal", "Where", "Expand"}


def _fold_integer_constants(graph: onnx.GraphProto, opset: int) -> None:
    """Evaluate nodes whose inputs are all initializers and whose outputs are integers (shape
    arithmetic), in graph order so that chains fold. Float math is left to the exporter's own
    folding: re-evaluating it here could round differently."""
    from onnx.reference import ReferenceEvaluator

    known = {t.name: t for t in graph.initializer}
    keep = []
    for node in graph.node:
        inputs = [i for i in node.input if i]
        if node.op_type not in _SHAPE_OPS or node.domain not in ("", "ai.onnx") \
                or not inputs or not all(i in known for i in inputs):
            keep.append(node)
            continue
        outputs = [onnx.helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None) for o in node.output]
        sub = onnx.helper.make_graph([node], "fold", [], outputs, initializer=[known[i] for i in inputs])
        sub_model = onnx.helper.make_model(sub, opset_imports=[onnx.helper.make_opsetid("", opset)])
        values = ReferenceEvaluator(sub_model).run(None, {})
        if not all(np.issubdtype(np.asarray(v).dtype, np.integer) for v in values):
            keep.append(node)
            continue
        for name, value in zip(node.output, values):
            tensor = numpy_helper.from_array(np.asarray(value), name)
            graph.initializer.append(tensor)
            known[name] = tensor
    _replace_nodes(graph, keep)


def _zero_producers(graph: onnx.GraphProto) -> set[str]:
    """Names of tensors known to be all zeros: zero initializers and ConstantOfShape(0) outputs."""
    zeros = {t.name for t in graph.initializer if not numpy_helper.to_array(t).any()}
    for node in graph.node:
        if node.op_type == "ConstantOfShape":
            value = next((a.t for a in node.attribute if a.name == "value"), None)
            if value is None or not numpy_helper.to_array(value).any():
                zeros.add(node.output[0])
    return zeros


def _drop_zero_lstm_states(graph: onnx.GraphProto) -> None:
    """LSTM inputs 5 and 6 (initial_h, initial_c) default to zeros: the exporter feeds explicit
    zeros built from the batch size (Shape → Gather → Concat → ConstantOfShape per LSTM)."""
    zeros = _zero_producers(graph)
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


def _no_op_outputs(graph: onnx.GraphProto) -> dict[str, str]:
    """output → the tensor it equals, for nodes that compute nothing: Identity; Mul by a scalar
    1 (MIMIC's ablation switches, all on); Gather(i) along the axis of a Concat of Unsqueezes,
    i.e. x_i back from stack([x_0, x_1, ...])[:, i] (MIMIC's fusion head inputs)."""
    consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    producers = {o: n for n in graph.node for o in n.output}
    same = {}
    for node in graph.node:
        if node.op_type == "Identity":
            same[node.output[0]] = node.input[0]
        elif node.op_type == "Mul":
            for k in (0, 1):
                one = consts.get(node.input[k])
                if one is not None and one.ndim == 0 and one == 1:
                    same[node.output[0]] = node.input[1 - k]
        elif node.op_type == "Gather":
            source = _unstacked(node, producers, consts)
            if source is not None:
                same[node.output[0]] = source
    return same


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


def _bypass(graph: onnx.GraphProto, same: dict[str, str]) -> None:
    """Read `same[t]` wherever `t` is read (graph outputs keep their producers)."""
    outputs = {o.name for o in graph.output}
    same = {k: v for k, v in same.items() if k not in outputs}

    def resolve(name: str) -> str:
        while name in same:
            name = same[name]
        return name

    for node in graph.node:
        for k, name in enumerate(node.input):
            node.input[k] = resolve(name)


def _merge_unsqueezes(graph: onnx.GraphProto) -> None:
    """Unsqueeze(Unsqueeze(x, a), b) → Unsqueeze(x, a∘b) when the inner one has no other reader
    and both axes lists are constant and non-negative (x[:, :, None, None] traces as two)."""
    consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    producers = {o: n for n in graph.node for o in n.output}
    readers: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            readers[name] = readers.get(name, 0) + 1
    for outer in graph.node:
        inner = producers.get(outer.input[0]) if outer.op_type == "Unsqueeze" else None
        if inner is None or inner.op_type != "Unsqueeze" or readers.get(inner.output[0]) != 1:
            continue
        if len(inner.input) != 2 or len(outer.input) != 2 or not {inner.input[1], outer.input[1]} <= consts.keys():
            continue
        a, b = consts[inner.input[1]].tolist(), consts[outer.input[1]].tolist()
        if min(a + b) < 0:
            continue
        rank = len(a) + len(b) + max(a + b)  # enough positions to place every axis
        kept = [p for p in range(rank) if p not in b]  # final positions of the inner output's dims
        axes = sorted(set(b) | {kept[p] for p in a})
        name = f"{outer.output[0]}_axes"
        graph.initializer.append(numpy_helper.from_array(np.array(axes, np.int64), name))
        consts[name] = np.array(axes)
        outer.input[0], outer.input[1] = inner.input[0], name


def _remove_dead(graph: onnx.GraphProto) -> None:
    """Drop nodes whose outputs nobody reads (walking back from the graph outputs through the
    producers, so node order does not matter), then unread initializers."""
    producer = {o: node for node in graph.node for o in node.output}
    needed, live, stack = set(), set(), [o.name for o in graph.output]
    while stack:
        name = stack.pop()
        if name in needed:
            continue
        needed.add(name)
        node = producer.get(name)
        if node is not None and id(node) not in live:
            live.add(id(node))
            stack.extend(i for i in node.input if i)
    _replace_nodes(graph, [n for n in graph.node if id(n) in live])
    used = [t for t in graph.initializer if t.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(used)
    value_info = [v for v in graph.value_info if v.name in needed]
    del graph.value_info[:]
    graph.value_info.extend(value_info)


def _sort_topologically(graph: onnx.GraphProto) -> None:
    """Stable topological order (ONNX requires one; converters may append nodes at the end)."""
    available = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        ready = [n for n in pending if all(i in available for i in n.input)]
        if not ready:
            raise ValueError(f"graph has a cycle or a dangling input near node {pending[0].name!r}")
        for node in ready:
            available.update(node.output)
        ordered.extend(ready)
        pending = [n for n in pending if all(n is not r for r in ready)]
    _replace_nodes(graph, ordered)


def _replace_nodes(graph: onnx.GraphProto, nodes: list) -> None:
    kept = [onnx.NodeProto() for _ in nodes]
    for new, old in zip(kept, nodes):
        new.CopyFrom(old)
    del graph.node[:]
    graph.node.extend(kept)


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

