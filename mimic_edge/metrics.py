"""Sentiment-regression metrics exactly as MMSA defines them (`MMSA/utils/metricsTop.py`,
`__eval_mosi_regression`), in plain numpy so the torch-free runtime can use them too.

- Has0_acc_2 / Has0_F1: pred >= 0 vs truth >= 0 over all samples (zero counts as positive).
- Non0_acc_2 / Non0_F1: samples with truth == 0 dropped, then pred > 0 vs truth > 0.
- F1 is sklearn's `f1_score(truth, pred, average="weighted")`: per-class F1 weighted by the
  class's support in the truth; a class with no predicted (or no true) member scores 0.
- Mult_acc_5 / Mult_acc_7: clip both to [-2, 2] / [-3, 3], round half to even (np.round),
  count equal classes.
- MAE: mean |pred - truth|.  Corr: Pearson correlation.

MMSA rounds every value to 4 decimals; we return full precision. Values that are undefined
(Non0 metrics when every truth is 0, Corr when pred or truth is constant) are NaN.
"""
from __future__ import annotations

import numpy as np

from mimic_edge.errors import InputError

METRIC_KEYS = ("Has0_acc_2", "Has0_F1", "Non0_acc_2", "Non0_F1", "Mult_acc_5", "Mult_acc_7", "MAE", "Corr")


def weighted_f1(truth: np.ndarray, pred: np.ndarray) -> float:
    """sklearn's f1_score(truth, pred, average="weighted") for label arrays of equal length."""
    if truth.size == 0:
        return float("nan")
    total = 0.0
    for label in np.union1d(truth, pred):
        is_true, is_pred = truth == label, pred == label
        tp = np.sum(is_true & is_pred)
        # F1 = 2TP / (2TP + FP + FN); 0 when the class is neither predicted right nor at all
        denom = is_true.sum() + is_pred.sum()
        f1 = 2 * tp / denom if denom else 0.0
        total += f1 * is_true.sum()
    return float(total / truth.size)


def multiclass_acc(pred: np.ndarray, truth: np.ndarray, bound: float) -> float:
    """Clip to [-bound, bound], round half to even, fraction of equal classes."""
    return float(np.mean(np.round(np.clip(pred, -bound, bound)) == np.round(np.clip(truth, -bound, bound))))


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation in float64; NaN when either side is constant."""
    x, y = x - x.mean(), y - y.mean()
    denom = np.sqrt(np.sum(x * x) * np.sum(y * y))
    return float(np.sum(x * y) / denom) if denom > 0 else float("nan")


def _as_vector(x, name: str) -> np.ndarray:
    x = np.asarray(x.detach().cpu() if hasattr(x, "detach") else x, dtype=np.float64)
    if x.ndim == 2 and x.shape[1] == 1:
        x = x[:, 0]  # (N, 1) model outputs
    if x.ndim != 1:
        raise InputError(f"{name}: expected shape (N,) or (N, 1), found {x.shape}")
    if not np.isfinite(x).all():
        raise InputError(f"{name}: found NaN or Inf values: expected finite scores")
    return x


def mosi_metrics(pred, truth) -> dict[str, float]:
    """MMSA's MOSI/MOSEI regression metrics of `pred` against `truth` (arrays or tensors, (N,))."""
    pred, truth = _as_vector(pred, "pred"), _as_vector(truth, "truth")
    if pred.shape != truth.shape:
        raise InputError(f"pred and truth must have the same length: found {pred.size} and {truth.size}")
    if pred.size == 0:
        raise InputError("pred and truth are empty: expected at least one sample")
    nonzero = truth != 0
    has0_pred, has0_truth = pred >= 0, truth >= 0
    non0_pred, non0_truth = pred[nonzero] > 0, truth[nonzero] > 0
    return {
        "Has0_acc_2": float(np.mean(has0_pred == has0_truth)),
        "Has0_F1": weighted_f1(has0_truth, has0_pred),
        "Non0_acc_2": float(np.mean(non0_pred == non0_truth)) if nonzero.any() else float("nan"),
        "Non0_F1": weighted_f1(non0_truth, non0_pred),
        "Mult_acc_5": multiclass_acc(pred, truth, 2.0),
        "Mult_acc_7": multiclass_acc(pred, truth, 3.0),
        "MAE": float(np.mean(np.abs(pred - truth))),
        "Corr": pearson(pred, truth),
    }
