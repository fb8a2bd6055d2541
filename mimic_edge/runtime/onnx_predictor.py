"""Run an ONNX artifact (fp32, fp16 or int8) with ONNX Runtime. Imports numpy and onnxruntime only.

The artifact's contract (docs/design.md §6): inputs `text`, `audio`, `vision` float32 (B, L_m, d_m),
output `score` float32 (B, out). Feature dims and any fixed batch or sequence length are read
from the artifact, so inputs are checked before ONNX Runtime sees them.

Only artifacts that `mimic-edge export` wrote are loaded: the export stamps producer
"mimic-edge" and metadata (`model`, `preset`, `config_digest`, `precision`, ...), and a graph
without that stamp is refused with an ArtifactError, since any graph with the same input and
output names would otherwise run and return plausible-looking numbers. A graph of your own
(same inputs and output) loads with `allow_foreign=True`. The metadata is `predictor.metadata`.

Q/DQ graphs (`--precision int8`, made for TensorRT) run their QuantizeLinear/DequantizeLinear
pairs in float (ONNX Runtime's `session.disable_quant_qdq`): values are rounded and clipped to
int8 as TensorRT does, then the products are summed in float32 instead of int32, which differs
from TensorRT's exact integer sums by float32 rounding only (~K·2^-24 relative for K terms, far
below int8's own rounding), the same on every CPU. ONNX
Runtime's own integer kernels (`integer_qdq=True`) give this host's integer math instead, which
on x86 without VNNI saturates int16 pair sums (mimic_edge.runtime.host). Graphs without Q/DQ
pairs (fp32, fp16, int8 --target cpu) are not affected by the setting.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from mimic_edge.config import LENGTHS_INPUTS, MODALITIES, OUTPUT_NAME
from mimic_edge.errors import ArtifactError, ConfigError, InputError
from mimic_edge.runtime.inputs import check_scores, lengths_feeds, prepare_inputs

ORT_OPTIMIZATION = "ORT_ENABLE_EXTENDED"  # recorded in export validation reports
# Tried in this order, keeping those the installed onnxruntime build offers: onnxruntime-gpu
# brings TensorRT and CUDA, the plain wheel CPU only.
PREFERRED_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
# What mimic_edge.export.onnx.stamp writes into every artifact it exports.
STAMP_PRODUCER = "mimic-edge"
STAMP_KEYS = ("model", "config_digest")


class OnnxPredictor:
    """`predict(text, audio, vision) -> (B, out)` on an ONNX Runtime session.

    Thread-safe: ONNX Runtime allows concurrent `run` calls on one session.
    """

    backend = "onnxruntime"

    def __init__(self, path: str | Path, providers: Sequence[str] | None = None, threads: int | None = None,
                 *, allow_foreign: bool = False, integer_qdq: bool = False):
        """`allow_foreign=True`: also run a graph without mimic-edge's export stamp; `integer_qdq=True`:
        run Q/DQ pairs with ONNX Runtime's integer kernels, not in float (see the module doc)."""
        self.path = Path(path)
        if not self.path.is_file():
            raise ArtifactError(f"ONNX artifact not found: expected a file at {self.path}")
        self._open(str(self.path), providers, threads, True, allow_foreign, integer_qdq)

    @classmethod
    def from_bytes(cls, model: bytes, name: str, providers: Sequence[str] | None = None,
                   threads: int | None = None, spinning: bool = True, *, allow_foreign: bool = False,
                   integer_qdq: bool = False) -> OnnxPredictor:
        """A predictor for a serialized model that is not (yet) a file: the export validates
        its artifact through this, the loader users run. `name` stands for the path in errors.
        `spinning=False`: threads sleep between runs (for callers that alternate with other work)."""
        predictor = cls.__new__(cls)
        predictor.path = Path(name)
        predictor._open(model, providers, threads, spinning, allow_foreign, integer_qdq)
        return predictor

    def _open(self, model: str | bytes, providers: Sequence[str] | None, threads: int | None,
              spinning: bool, allow_foreign: bool, integer_qdq: bool) -> None:
        import onnxruntime as ort

        self.providers = _choose_providers(providers, ort.get_available_providers())
        self.integer_qdq = integer_qdq
        self.session = _session(model, self.providers, threads, spinning, integer_qdq, self.path)
        self.dims, self.out_dim, self.seq_range, self.batch_range, self.takes_lengths = _read_signature(
            self.session, self.path)
        meta = self.session.get_modelmeta()
        self.metadata: dict[str, str] = dict(meta.custom_metadata_map)  # model, preset, precision, ...
        if not allow_foreign:
            _check_stamp(meta.producer_name, self.metadata, self.path)

    def predict(self, text: Any, audio: Any, vision: Any, lengths: Mapping[str, Any] | None = None) -> np.ndarray:
        """Scores (B, out). `lengths`: per modality (B,) valid lengths of a padded batch, for an
        artifact exported with --lengths (`takes_lengths`; without them: every step is valid)."""
        if lengths is not None and not self.takes_lengths:
            raise InputError(f"{self.path}: lengths given, but this artifact has no lengths inputs: expected none, "
                             "or an artifact exported with --lengths")
        feeds = prepare_inputs(text, audio, vision, self.dims, self.seq_range, self.batch_range, lengths)
        if self.takes_lengths:
            feeds.update({LENGTHS_INPUTS[m]: n for m, n in lengths_feeds(lengths, feeds).items()})
        return check_scores(self.session.run([OUTPUT_NAME], feeds)[0], self.path)  # (B, out) float32

    def __repr__(self) -> str:
        qdq = ", integer_qdq=True" if self.integer_qdq else ""
        return f"OnnxPredictor({str(self.path)!r}, providers={self.session.get_providers()}{qdq})"


def _session(model: str | bytes, providers: list[str], threads: int | None, spinning: bool, integer_qdq: bool,
             path: Path):
    """The one place ONNX Runtime sessions are made, for every artifact and every caller."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    # EXTENDED, not ALL: ALL segfaults at session creation for FP16 models on CPUs with
    # AVX-512-FP16, and gains nothing on this model (batch 1 on a 2-core x86_64 CPU:
    # fp32 0.227 vs 0.228 ms, int8 0.376 vs 0.378 ms), so every precision gets one setting.
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, ORT_OPTIMIZATION)
    if threads is not None:
        if threads < 1:
            raise ConfigError(f"threads must be >= 1, got {threads}")
        options.intra_op_num_threads = threads
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if not integer_qdq:
        options.add_session_config_entry("session.disable_quant_qdq", "1")  # Q/DQ in float: see the module doc
    try:
        return ort.InferenceSession(model, options, providers=providers)
    except Exception as e:  # onnxruntime's errors (InvalidProtobuf, InvalidArgument, ...) share no base
        raise ArtifactError(f"{path}: expected an ONNX model, found a corrupt or foreign file "
                            f"({str(e).strip().splitlines()[0]})") from None


def _choose_providers(requested: Sequence[str] | None, available: Sequence[str]) -> list[str]:
    if requested is None:
        return [p for p in PREFERRED_PROVIDERS if p in available]
    missing = [p for p in requested if p not in available]
    if missing or not requested:
        raise ConfigError(f"execution providers {missing or list(requested)} are not available: "
                          f"expected some of {list(available)}")
    return list(requested)


def _check_stamp(producer: str, metadata: dict[str, str], path: Path) -> None:
    """Refuse a graph that mimic-edge's export did not write: its signature alone proves nothing."""
    missing = [k for k in STAMP_KEYS if k not in metadata]
    if producer != STAMP_PRODUCER or missing:
        raise ArtifactError(
            f"{path}: expected an ONNX model exported by mimic-edge (producer {STAMP_PRODUCER!r}, metadata "
            f"{', '.join(STAMP_KEYS)}), found producer {producer!r} and metadata keys {sorted(metadata)}: "
            f"a foreign graph with the same inputs may compute anything. To run a graph you made yourself, "
            f"load it with allow_foreign=True (mimic-edge predict --allow-foreign)")


def _read_signature(session, path: Path):
    """Feature dims, output size, fixed sequence lengths and batch size, from the session's I/O."""
    inputs = {i.name: i for i in session.get_inputs()}
    outputs = session.get_outputs()
    expected = (f"expected inputs {', '.join(MODALITIES)}: float32 (batch, seq_len, dim) "
                f"and one output {OUTPUT_NAME}: float32 (batch, out)")
    found = (f"found inputs {[(i.name, i.type, i.shape) for i in inputs.values()]}, "
             f"outputs {[(o.name, o.type, o.shape) for o in outputs]}")
    lengths = set(LENGTHS_INPUTS.values())
    ok = (set(inputs) in (set(MODALITIES), set(MODALITIES) | lengths) and len(outputs) == 1
          and outputs[0].name == OUTPUT_NAME and len(outputs[0].shape) == 2
          and all(inputs[m].type == "tensor(float)" and len(inputs[m].shape) == 3 and isinstance(inputs[m].shape[2], int)
                  for m in MODALITIES)
          and all(i.type == "tensor(int64)" and len(i.shape) == 1 for name, i in inputs.items() if name in lengths))
    if not ok:
        raise ArtifactError(f"{path}: not a mimic-edge model: {expected} (and optionally "
                            f"{', '.join(LENGTHS_INPUTS.values())}: int64 (batch,)), {found}")
    shapes = {m: inputs[m].shape for m in MODALITIES}  # (batch, seq_len, dim); a str for a dynamic axis
    dims = {m: shape[2] for m, shape in shapes.items()}
    out = outputs[0].shape[1] if isinstance(outputs[0].shape[1], int) else None
    # Fixed axes (an artifact exported without dynamic axes) become one-value ranges.
    seq_range = {m: (shape[1], shape[1]) for m, shape in shapes.items() if isinstance(shape[1], int)} or None
    batch = next((shape[0] for shape in shapes.values() if isinstance(shape[0], int)), None)
    return dims, out, seq_range, (batch, batch) if batch else None, lengths <= set(inputs)
