"""Judging an artifact's scores against the PyTorch model's: the checks, their thresholds and the
report. numpy only: the reference scores are computed once where the model is (export/validate.py,
with torch), and an artifact can then be judged wherever it runs, a torch-free runtime on another
CPU included, from a saved `Reference`.

Checks, thresholds per precision (the `thresholds` of its entry in mimic_edge.export.precisions):
- parity: on slices of the validation set at batch 1 and 7, with equal and unequal sequence
  lengths per modality: max |artifact − torch| per case, and per length setting the SQNR =
  20·log10(‖torch‖ / ‖artifact − torch‖) over both batches (the SQNR of a single score is
  its relative error, unstable for scores near 0);
- task: on the whole validation set, SQNR, and |Δ MAE|, |Δ Has0_acc_2|, |Δ Non0_acc_2| between
  the artifact's and the PyTorch model's metrics against the labels.
"""
from __future__ import annotations

import json
import math
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from mimic_edge.config import LENGTHS_INPUTS, MODALITIES
from mimic_edge.errors import ArtifactError, ArtifactValidationError
from mimic_edge.export.precisions import Thresholds
from mimic_edge.io import atomic_write
from mimic_edge.metrics import mosi_metrics

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


@dataclass(frozen=True)
class Limits:
    """The batch and sequence ranges a runner accepts (a TensorRT engine's profile)."""

    max_batch: int | None = None
    seq: tuple[int, int] | None = None  # (min, max) for every modality

    def admits(self, batch: int, lengths: tuple[int, ...]) -> bool:
        if self.max_batch is not None and batch > self.max_batch:
            return False
        return self.seq is None or all(self.seq[0] <= n <= self.seq[1] for n in lengths)


@dataclass
class ParityCase:
    batch: int
    lengths: tuple[int, ...]
    inputs: dict[str, np.ndarray]  # {"text": (batch, Lt, dt), ...} float32; a padded case: + LENGTHS_INPUTS
    expected: np.ndarray  # the PyTorch model's scores (batch, out); a padded case: each sample's alone

    @property
    def name(self) -> str:
        padded = " padded, per-sample lengths" if LENGTHS_INPUTS[MODALITIES[0]] in self.inputs else ""
        return f"b={self.batch} L={self.lengths}{padded}"


@dataclass
class Reference:
    """The inputs an artifact is judged on and the PyTorch model's scores for them."""

    parity: list[ParityCase]
    split: dict[str, np.ndarray]  # the validation inputs, cut to a length the runner admits
    expected: np.ndarray  # the PyTorch model's scores on `split`
    labels: np.ndarray  # the split's regression labels
    run_batch: int  # samples per run over `split`
    not_run: list[str] = field(default_factory=list)  # parity cases outside the runner's limits

    def save(self, path: str | Path) -> Path:
        """An .npz (no pickle) that `Reference.load` reads back, on any machine."""
        arrays = {"split/expected": self.expected, "split/labels": self.labels,
                  **{f"split/{m}": self.split[m] for m in MODALITIES}}
        for i, case in enumerate(self.parity):
            arrays[f"parity{i}/expected"] = case.expected
            arrays.update({f"parity{i}/{name}": array for name, array in case.inputs.items()})
        meta = {"run_batch": self.run_batch, "not_run": self.not_run,
                "parity": [{"batch": c.batch, "lengths": list(c.lengths)} for c in self.parity]}
        def write(tmp: str) -> None:
            with open(tmp, "wb") as f:
                np.savez(f, meta=np.array(json.dumps(meta)), **arrays)

        return atomic_write(path, write)

    @classmethod
    def load(cls, path: str | Path) -> Reference:
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                parity = [ParityCase(c["batch"], tuple(c["lengths"]),
                                     {k.split("/", 1)[1]: z[k] for k in z.files
                                      if k.startswith(f"parity{i}/") and not k.endswith("/expected")},
                                     z[f"parity{i}/expected"]) for i, c in enumerate(meta["parity"])]
                return cls(parity, {m: z[f"split/{m}"] for m in MODALITIES}, z["split/expected"], z["split/labels"],
                           meta["run_batch"], meta["not_run"])
        except (OSError, ValueError, KeyError) as e:
            raise ArtifactError(f"{path}: expected a reference saved by Reference.save, found an unreadable or "
                                f"foreign file ({type(e).__name__}: {e})") from None


def predictor_runner(predictor) -> ArtifactRunner:
    """The runner of a mimic_edge.runtime predictor: its `predict`, input checks included; the
    per-sample lengths of a padded case passed as `lengths`."""
    def run(inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        lengths = {m: inputs[LENGTHS_INPUTS[m]] for m in MODALITIES if LENGTHS_INPUTS[m] in inputs}
        return predictor.predict(*(inputs[m] for m in MODALITIES), **({"lengths": lengths} if lengths else {}))
    return run


def run_batched(run: ArtifactRunner, split: Mapping[str, np.ndarray], batch: int) -> np.ndarray:
    n = len(split[MODALITIES[0]])
    outs = [run({m: np.ascontiguousarray(split[m][i:i + batch], dtype=np.float32) for m in MODALITIES})
            for i in range(0, n, batch)]
    return np.concatenate(outs)


def judge(run: ArtifactRunner, reference: Reference, thresholds: Thresholds, precision: str,
          log: Callable[[str], None] = print) -> dict:
    """Every check of `run`'s scores against `reference`; the report (see the module doc)."""
    checks: list[Check] = []
    by_lengths: dict[tuple, list] = {}
    for case in reference.parity:
        found = run(case.inputs)
        checks.append(Check(f"parity {case.name} max_abs", _max_abs(case.expected, found), thresholds.max_abs, False))
        by_lengths.setdefault(case.lengths, []).append((case.expected, found))
    for lengths, pairs in by_lengths.items():  # SQNR of one score is a relative error: pool the batches
        expected, found = (np.concatenate(side) for side in zip(*pairs))
        checks.append(Check(f"parity L={lengths} sqnr_db", sqnr_db(expected, found), thresholds.sqnr_db, True))
    if reference.not_run:
        log(f"  not run, outside the profile: parity {', '.join(reference.not_run)}")

    expected = reference.expected
    found = run_batched(run, reference.split, reference.run_batch)
    checks.append(Check("validation set sqnr_db", sqnr_db(expected, found), thresholds.sqnr_db, True))
    metrics = {}
    if expected.shape[1] == 1:  # regression head: MMSA's metrics
        labels = reference.labels
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
        "not_run": reference.not_run,
        "metrics": {side: {k: _finite_or_str(v) for k, v in m.items()} for side, m in metrics.items()},
        "validation_samples": int(len(expected)),
        "validation_seq_len": int(reference.split[MODALITIES[0]].shape[1]),
        "versions": _versions(),
    }


def agreement(run: ArtifactRunner, reference: Reference) -> dict:
    """SQNR and max |Δ| of `run` against the reference on the validation set: information, no gate."""
    found = run_batched(run, reference.split, reference.run_batch)
    return {"sqnr_db": _finite_or_str(round(sqnr_db(reference.expected, found), 2)),
            "max_abs": _finite_or_str(float(f"{_max_abs(reference.expected, found):.4g}"))}


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
    """The libraries that judged the artifact (torch where the reference was computed here)."""
    import sys

    versions = {"python": platform.python_version()}
    for name in ("torch", "onnx", "onnxruntime"):
        module = sys.modules.get(name)
        if module is not None:
            versions[name] = module.__version__
    return versions
