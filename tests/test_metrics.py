"""mosi_metrics against hand-computed cases and a plain precision/recall reference for F1."""
import numpy as np
import pytest
import torch

from mimic_edge.errors import InputError
from mimic_edge.metrics import METRIC_KEYS, mosi_metrics, weighted_f1


def f1_reference(truth, pred):
    """Weighted F1 from per-class precision and recall, 2PR/(P+R), 0 where undefined."""
    total = 0.0
    for label in set(truth.tolist()) | set(pred.tolist()):
        tp = np.sum((truth == label) & (pred == label))
        precision = tp / np.sum(pred == label) if np.any(pred == label) else 0.0
        recall = tp / np.sum(truth == label) if np.any(truth == label) else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        total += f1 * np.sum(truth == label)
    return total / len(truth)


def test_hand_computed_case():
    pred = np.array([1.0, -1.0, 0.0, 2.0])
    truth = np.array([2.0, -0.5, 0.0, -1.0])
    m = mosi_metrics(pred, truth)
    assert list(m) == list(METRIC_KEYS)
    assert m["Has0_acc_2"] == pytest.approx(3 / 4)
    # class True (support 2): TP 2, FP 1 -> 4/5; class False (support 2): TP 1, FN 1 -> 2/3
    assert m["Has0_F1"] == pytest.approx((2 * 0.8 + 2 * 2 / 3) / 4)
    # truth 0 dropped: pred>0 [T, F, T] vs truth>0 [T, F, F]
    assert m["Non0_acc_2"] == pytest.approx(2 / 3)
    assert m["Non0_F1"] == pytest.approx(2 / 3)
    # rounded classes: pred [1, -1, 0, 2] vs truth [2, -0 (half to even), 0, -1]
    assert m["Mult_acc_7"] == pytest.approx(1 / 4)
    assert m["Mult_acc_5"] == pytest.approx(1 / 4)
    assert m["MAE"] == pytest.approx(4.5 / 4)
    assert m["Corr"] == pytest.approx(np.corrcoef(pred, truth)[0, 1])


def test_ties_at_zero():
    # pred 0 is positive for Has0 (>= 0) and negative for Non0 (> 0); truth 0 is dropped by Non0
    m = mosi_metrics([0.0, 0.0, -1.0, 1.0], [0.0, 1.0, -1.0, -1.0])
    assert m["Has0_acc_2"] == pytest.approx(3 / 4)
    assert m["Non0_acc_2"] == pytest.approx(1 / 3)


@pytest.mark.parametrize("pred, truth, acc5, acc7", [
    (0.5, 0.0, 1, 1),  # half to even: 0.5 -> 0 (half away from zero would give 1)
    (0.5, 1.0, 0, 0),
    (-0.5, 0.0, 1, 1),
    (1.5, 2.0, 1, 1),
    (2.5, 2.0, 1, 1),  # 2.5 -> 2
    (2.5, 3.0, 1, 0),  # 5 classes: both clip to 2; 7 classes: 2.5 -> 2 != 3
    (-2.5, -3.0, 1, 0),
    (-2.5, -2.0, 1, 1),
    (3.4, 2.6, 1, 1),  # clipped to 3 (7 classes) and 2 (5 classes)
    (-7.0, -3.0, 1, 1),
    (1.4, 1.6, 0, 0),
])
def test_round_half_to_even_and_clipping(pred, truth, acc5, acc7):
    m = mosi_metrics([pred], [truth])
    assert (m["Mult_acc_5"], m["Mult_acc_7"]) == (acc5, acc7)


def test_all_zero_truths():
    m = mosi_metrics([1.0, -1.0, 0.0], [0.0, 0.0, 0.0])
    assert m["Has0_acc_2"] == pytest.approx(2 / 3)
    assert m["Has0_F1"] == pytest.approx(0.8)  # only class True has support: TP 2, FN 1
    assert np.isnan(m["Non0_acc_2"]) and np.isnan(m["Non0_F1"])
    assert np.isnan(m["Corr"])  # constant truth
    assert m["MAE"] == pytest.approx(2 / 3)


@pytest.mark.parametrize("seed", range(5))
def test_weighted_f1_matches_precision_recall_reference(seed):
    rng = np.random.default_rng(seed)
    truth = rng.random(50) < rng.random()
    pred = rng.random(50) < rng.random()
    assert weighted_f1(truth, pred) == pytest.approx(f1_reference(truth, pred))


def test_accepts_tensors_and_column_outputs():
    rng = np.random.default_rng(0)
    pred, truth = rng.normal(size=20), rng.normal(size=20)
    expected = mosi_metrics(pred, truth)
    got = mosi_metrics(torch.tensor(pred, dtype=torch.float64)[:, None], torch.tensor(truth))
    assert got == pytest.approx(expected)


@pytest.mark.parametrize("pred, truth, message", [
    ([1.0, 2.0], [1.0], "same length"),
    ([], [], "empty"),
    ([[1.0, 2.0]], [1.0], "expected shape"),
    ([float("nan")], [1.0], "NaN"),
])
def test_bad_input(pred, truth, message):
    with pytest.raises(InputError, match=message):
        mosi_metrics(pred, truth)
