"""Validation of an ONNX artifact against the PyTorch model it came from (DESIGN §6).

Every check runs, every result is printed (✓/✗, measured value, threshold) and recorded in
the report; `raise_if_failed` then raises one ArtifactValidationError naming each failure.

Checks, thresholds per precision (the `thresholds` of its entry in mimic_edge.export.formats):
- parity: on slices of the validation set at batch 1 and 7, with equal and unequal sequence
  lengths per modality: max |artifact − torch| per case, and per length setting the SQNR =
  20·log10(‖torch‖ / ‖artifact − torch‖) over both batches (the SQNR of a single score is
  its relative error, unstable for scores near 0);
- task: on the whole validation set, SQNR, and |Δ MAE|, |Δ Has0_acc_2|, |Δ Non0_acc_2| between
  the artifact's and the PyTorch model's metrics against the labels.
"""
from __future__ import annotations

import math
import platform
from dataclasses import asdict, dataclass
from typing import Callable, Mapping

import numpy as np
import torch

from mimic_edge.config import MODALITIES
from mimic_edge.errors import ArtifactValidationError
from mimic_edge.export.formats import get_precision
from mimic_edge.metrics import mosi_metrics
from mimic_edge.runtime.onnx_predictor import ORT_OPTIMIZATION, OnnxPredictor

BATCH_SIZES = (1, 7)  # 7: odd, not a power of two
RUN_BATCH = 64  # samples per run over the validation set
ArtifactRunner = Callable[[dict], np.ndarray]  # {"text": (B, Lt, dt), ...} float32 → scores (B, out)


@dataclass
class Check:
    name: str
    value: float
    threshold: float
    higher_is_better: bool

    @property
    def passed(self) -> bool:
        if math.isnan(self.value):
            return False
        return self.value >= self.threshold if self.higher_is_better else self.value <= self.threshold

    def line(self) -> str:
        op = "≥" if self.higher_is_better else "≤"
        return f"{'✓' if self.passed else '✗'} {self.name}: {self.value:.6g} ({op} {self.threshold:g})"

    def to_dict(self) -> dict:
        return {"check": self.name, "value": _finite_or_str(self.value), "threshold": self.threshold,
                "rule": "min" if self.higher_is_better else "max", "passed": self.passed}


def sqnr_db(reference: np.ndarray, test: np.ndarray) -> float:
    """20·log10(‖reference‖ / ‖reference − test‖) in float64; inf when they are equal."""
    reference, test = np.asarray(reference, np.float64), np.asarray(test, np.float64)
    noise = np.linalg.norm(reference - test)
    signal = np.linalg.norm(reference)
    if noise == 0:
        return math.inf
    if signal == 0:
        return -math.inf
    return float(20 * np.log10(signal / noise))


def parity_cases(seq_len: int) -> list[tuple[int, tuple[int, int, int]]]:
    """(batch, (Lt, La, Lv)): the preset's length, and unequal lengths per modality, long and short."""
    def cut(*fractions):
        return tuple(max(1, round(seq_len * f)) for f in fractions)

    lengths = (cut(1, 1, 1), cut(1, 0.4, 0.7), cut(0.2, 0.1, 0.24))  # 50 → (50,50,50) (50,20,35) (10,5,12)
    return [(b, ls) for ls in lengths for b in BATCH_SIZES]


def _slice_inputs(split: Mapping[str, np.ndarray], batch: int, lengths: tuple[int, ...]) -> dict[str, np.ndarray]:
    """The first `batch` samples (repeated if the split is smaller), each modality cut to its length."""
    index = np.arange(batch) % len(split[MODALITIES[0]])
    return {m: np.ascontiguousarray(split[m][index, :n], dtype=np.float32) for m, n in zip(MODALITIES, lengths)}


def _run_torch(model: torch.nn.Module, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
    with torch.no_grad():
        return model(*(torch.from_numpy(inputs[m]) for m in MODALITIES)).numpy()


def _run_batched(run: ArtifactRunner, split: Mapping[str, np.ndarray], batch: int) -> np.ndarray:
    n = len(split[MODALITIES[0]])
    outs = [run({m: np.ascontiguousarray(split[m][i:i + batch], dtype=np.float32) for m in MODALITIES})
            for i in range(0, n, batch)]
    return np.concatenate(outs)


@dataclass(frozen=True)
class Limits:
    """The batch and sequence ranges a runner accepts (a TensorRT engine's profile)."""

    max_batch: int | None = None
    seq: tuple[int, int] | None = None  # (min, max) for every modality

    def admits(self, batch: int, lengths: tuple[int, ...]) -> bool:
        if self.max_batch is not None and batch > self.max_batch:
            return False
        return self.seq is None or all(self.seq[0] <= n <= self.seq[1] for n in lengths)


def validate(artifact: bytes, precision: str, model: torch.nn.Module, valid: Mapping[str, np.ndarray],
             log: Callable[[str], None] = print, name: str = "artifact.onnx") -> dict:
    """Run every check of `artifact` (serialized ONNX) against `model` (eval mode) on the
    validation split `valid` ({"text", "audio", "vision", "regression_labels"}), through the
    ONNX Runtime predictor that users load (CPU); return the report."""
    # Threads sleep between runs: validation alternates with PyTorch, which needs the cores.
    predictor = OnnxPredictor.from_bytes(artifact, name, providers=["CPUExecutionProvider"], spinning=False)
    report = validate_runner(predictor_runner(predictor), precision, model, valid, log)
    report["onnxruntime_optimization"] = ORT_OPTIMIZATION
    return report


def predictor_runner(predictor) -> ArtifactRunner:
    """The runner of a mimic_edge.runtime predictor: its `predict`, input checks included."""
    return lambda inputs: predictor.predict(*(inputs[m] for m in MODALITIES))


def validate_runner(run: ArtifactRunner, precision: str, model: torch.nn.Module, valid: Mapping[str, np.ndarray],
                    log: Callable[[str], None] = print, limits: Limits = Limits()) -> dict:
    """The checks of `validate` for any runner of the artifact ({"text": (B, L, d), ...} → (B, out)).
    Parity cases outside `limits` are listed as not run; the validation set is run in batches
    and at a length the limits admit."""
    thresholds = get_precision(precision).thresholds
    model = model.eval()
    checks: list[Check] = []
    seq_len = valid[MODALITIES[0]].shape[1]
    cases = parity_cases(seq_len)
    outside = [f"b={b} L={ls}" for b, ls in cases if not limits.admits(b, ls)]
    by_lengths: dict[tuple, list] = {}
    for batch, lengths in (c for c in cases if limits.admits(*c)):
        inputs = _slice_inputs(valid, batch, lengths)
        expected, found = _run_torch(model, inputs), run(inputs)
        checks.append(Check(f"parity b={batch} L={lengths} max_abs", _max_abs(expected, found),
                            thresholds.max_abs, False))
        by_lengths.setdefault(lengths, []).append((expected, found))
    for lengths, pairs in by_lengths.items():  # SQNR of one score is a relative error: pool the batches
        expected, found = (np.concatenate(side) for side in zip(*pairs))
        checks.append(Check(f"parity L={lengths} sqnr_db", sqnr_db(expected, found), thresholds.sqnr_db, True))
    if outside:
        log(f"  not run, outside the profile: parity {', '.join(outside)}")

    run_batch = min(RUN_BATCH, limits.max_batch or RUN_BATCH)
    length = min(seq_len, limits.seq[1]) if limits.seq else seq_len
    split = {m: valid[m][:, :length] for m in MODALITIES}
    expected = _run_batched(lambda x: _run_torch(model, x), split, run_batch)
    found = _run_batched(run, split, run_batch)
    checks.append(Check("validation set sqnr_db", sqnr_db(expected, found), thresholds.sqnr_db, True))
    metrics = {}
    if expected.shape[1] == 1:  # regression head: MMSA's metrics
        labels = valid["regression_labels"]
        metrics = {"torch": mosi_metrics(expected, labels), "artifact": mosi_metrics(found, labels)}
        for key, limit in (("MAE", thresholds.mae_delta), ("Has0_acc_2", thresholds.acc2_delta),
                           ("Non0_acc_2", thresholds.acc2_delta)):
            delta = abs(metrics["artifact"][key] - metrics["torch"][key])
            checks.append(Check(f"validation set |Δ {key}|", delta, limit, False))
    else:
        log(f"  task metrics skipped: a {expected.shape[1]}-class head (MAE and Acc-2 need out_dim 1)")

    for check in checks:
        log(f"  {check.line()}")
    return {
        "precision": precision,
        "passed": all(c.passed for c in checks),
        "thresholds": asdict(thresholds),
        "checks": [c.to_dict() for c in checks],
        "not_run": outside,
        "metrics": {side: {k: _finite_or_str(v) for k, v in m.items()} for side, m in metrics.items()},
        "validation_samples": int(len(expected)),
        "validation_seq_len": int(length),
        "versions": _versions(),
    }


def raise_if_failed(report: dict, artifact_name: str, report_path) -> None:
    failed = [c for c in report["checks"] if not c["passed"]]
    if failed:
        lines = "\n  ".join(f"{c['check']}: {c['value']} (limit {c['threshold']})" for c in failed)
        raise ArtifactValidationError(
            f"{artifact_name} failed {len(failed)} of {len(report['checks'])} validation checks "
            f"(report: {report_path}); the artifact was not written:\n  {lines}", report)


def _max_abs(expected: np.ndarray, found: np.ndarray) -> float:
    if expected.shape != found.shape:
        return math.inf
    diff = np.abs(expected.astype(np.float64) - found.astype(np.float64))
    return float(np.nanmax(diff)) if not np.isnan(found).any() else math.nan


def _finite_or_str(value: float):
    """JSON has no inf/nan: those become strings."""
    return value if math.isfinite(value) else str(value)


def _versions() -> dict[str, str]:
    import onnx
    import onnxruntime

    return {"python": platform.python_version(), "torch": torch.__version__, "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__}
