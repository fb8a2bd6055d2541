"""Validation of an artifact against the PyTorch model it came from (docs/design.md §6): the reference
scores computed here with torch, then judged by export/judge.py (the checks and thresholds).

Every check runs, every result is printed (✓/✗, measured value, threshold) and recorded in
the report; `raise_if_failed` then raises one ArtifactValidationError naming each failure.

An artifact is judged by the arithmetic of the runtime it is made for (`judged_by` in the
report, with this host's CPU): a TensorRT int8 artifact by its Q/DQ math in float, which is
TensorRT's (this host's integer kernels are reported beside it, as information); an int8
`--target cpu` artifact by ONNX Runtime's CPU integer kernels here, made so that no CPU's
kernels saturate (export/precision.py); fp32 and fp16 by ONNX Runtime's float kernels.
"""
from __future__ import annotations

import platform
from typing import Callable, Mapping

import numpy as np
import torch

from mimic_edge.config import LENGTHS_INPUTS, MODALITIES
from mimic_edge.export.judge import (RUN_BATCH, ArtifactRunner, Limits, ParityCase, Reference, agreement, judge,
                                     parity_cases, predictor_runner, raise_if_failed, run_batched)
from mimic_edge.export.precisions import Precision
from mimic_edge.runtime.host import cpu_name, int8_isa, u8s8_saturates
from mimic_edge.runtime.onnx_predictor import ORT_OPTIMIZATION, OnnxPredictor

__all__ = ["Limits", "host", "judged_by", "predictor_runner", "raise_if_failed", "reference", "validate",
           "validate_runner"]


def reference(model: torch.nn.Module, valid: Mapping[str, np.ndarray], limits: Limits = Limits(),
              padded: bool = False) -> Reference:
    """The parity cases and the validation split that `limits` admits, with `model`'s scores.
    `padded` (an artifact with lengths inputs): also a padded batch of samples of different
    lengths, judged against each sample run alone, unpadded (where `limits` admit it)."""
    model = model.eval()
    seq_len = valid[MODALITIES[0]].shape[1]
    cases = parity_cases(seq_len)
    parity = []
    for batch, lengths in (c for c in cases if limits.admits(*c)):
        inputs = _slice_inputs(valid, batch, lengths)
        parity.append(ParityCase(batch, lengths, inputs, _run_torch(model, inputs)))
    if padded and limits.admits(len(PADDED_FRACTIONS), (seq_len,) * len(MODALITIES)):
        parity.append(_padded_case(model, valid, seq_len))
    run_batch = min(RUN_BATCH, limits.max_batch or RUN_BATCH)
    length = min(seq_len, limits.seq[1]) if limits.seq else seq_len
    split = {m: np.ascontiguousarray(valid[m][:, :length], dtype=np.float32) for m in MODALITIES}
    expected = run_batched(lambda x: _run_torch(model, x), split, run_batch)
    return Reference(parity, split, expected, np.asarray(valid["regression_labels"]), run_batch,
                     [f"b={b} L={ls}" for b, ls in cases if not limits.admits(b, ls)])


def validate(artifact: bytes, entry: Precision, model: torch.nn.Module, valid: Mapping[str, np.ndarray],
             log: Callable[[str], None] = print, name: str = "artifact.onnx", ref: Reference | None = None) -> dict:
    """Run every check of `artifact` (serialized ONNX) against `model` (eval mode) on the
    validation split `valid` ({"text", "audio", "vision", "regression_labels"}), through the
    ONNX Runtime predictor that users load (CPU); return the report. `ref`: `reference(model,
    valid)` when the caller has it already."""
    # Threads sleep between runs: validation alternates with PyTorch, which needs the cores.
    predictor = OnnxPredictor.from_bytes(artifact, name, providers=["CPUExecutionProvider"], spinning=False)
    ref = ref if ref is not None else reference(model, valid, padded=predictor.takes_lengths)
    report = judge(predictor_runner(predictor), ref, entry.thresholds, entry.key, log)
    report["onnxruntime_optimization"] = ORT_OPTIMIZATION
    report["judged_by"] = judged_by(entry)
    if entry.qdq:
        integer = OnnxPredictor.from_bytes(artifact, name, providers=["CPUExecutionProvider"], spinning=False,
                                           integer_qdq=True)
        report["host_integer_kernels"] = {**agreement(predictor_runner(integer), ref), "int8_isa": int8_isa(),
                                          "u8s8_saturates": u8s8_saturates(),
                                          "note": "information, not a gate: ONNX Runtime's integer kernels here"}
        info = report["host_integer_kernels"]
        saturating = ", whose u8s8 sums saturate" if info["u8s8_saturates"] else ""
        log(f"  (information) ONNX Runtime's integer kernels on this {int8_isa()} CPU{saturating}: validation set "
            f"SQNR {info['sqnr_db']} dB, max abs {info['max_abs']}")
    return report


def judged_by(entry: Precision) -> dict:
    """What computed the scores that judged an ONNX artifact of `entry`, on which CPU."""
    import onnxruntime

    if entry.qdq:
        arithmetic = ("int8 Q/DQ computed in float (session.disable_quant_qdq=1): TensorRT's int8 math, "
                      "independent of this CPU's integer kernels")
    elif entry.integer_kernels:
        arithmetic = f"ONNX Runtime's CPU integer kernels on this host ({int8_isa()})"
    else:
        arithmetic = "ONNX Runtime's CPU float kernels"
    return {"runtime": f"onnxruntime {onnxruntime.__version__} CPUExecutionProvider", "arithmetic": arithmetic,
            "host": host()}


def host() -> dict:
    """The exporting host's CPU, as reports record it."""
    return {"machine": platform.machine(), "int8_isa": int8_isa(), "cpu": cpu_name()}


def validate_runner(run: ArtifactRunner, entry: Precision, model: torch.nn.Module, valid: Mapping[str, np.ndarray],
                    log: Callable[[str], None] = print, limits: Limits = Limits(), padded: bool = False) -> dict:
    """The checks of `validate` for any runner of the artifact ({"text": (B, L, d), ...} → (B, out)).
    Parity cases outside `limits` are listed as not run; the validation set is run in batches
    and at a length the limits admit."""
    return judge(run, reference(model, valid, limits, padded), entry.thresholds, entry.key, log)


PADDED_FRACTIONS = ((1.0, 0.4, 0.7), (0.2, 1.0, 0.1), (0.5, 0.06, 1.0), (0.02, 0.3, 0.5))  # per sample, per modality


def _padded_case(model: torch.nn.Module, valid: Mapping[str, np.ndarray], seq_len: int) -> ParityCase:
    """Four samples padded to the split's length, each modality's valid length its own (the
    padding is the split's real data past it: it must change nothing); expected: each alone."""
    n = len(PADDED_FRACTIONS)
    lengths = np.array([[max(1, round(seq_len * f)) for f in sample] for sample in PADDED_FRACTIONS], np.int64)
    inputs = _slice_inputs(valid, n, (seq_len,) * len(MODALITIES))
    alone = [_run_torch(model, {m: inputs[m][i:i + 1, :lengths[i, k]] for k, m in enumerate(MODALITIES)})
             for i in range(n)]
    inputs.update({LENGTHS_INPUTS[m]: lengths[:, k].copy() for k, m in enumerate(MODALITIES)})
    return ParityCase(n, (seq_len,) * len(MODALITIES), inputs, np.concatenate(alone))


def _slice_inputs(split: Mapping[str, np.ndarray], batch: int, lengths: tuple[int, ...]) -> dict[str, np.ndarray]:
    """The first `batch` samples (repeated if the split is smaller), each modality cut to its length."""
    index = np.arange(batch) % len(split[MODALITIES[0]])
    return {m: np.ascontiguousarray(split[m][index, :n], dtype=np.float32) for m, n in zip(MODALITIES, lengths)}


def _run_torch(model: torch.nn.Module, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
    with torch.no_grad():
        return model(*(torch.from_numpy(inputs[m]) for m in MODALITIES)).numpy()
