"""Evaluation: predictions, modality removal (both models, one place), similarity (Table 2)."""
import math

import numpy as np
import pytest
import torch

from mimic_edge.config import MODALITIES
from mimic_edge.data import synthetic
from mimic_edge.errors import ConfigError
from mimic_edge.evaluate import (FULL, drop_inputs, mean_baseline_row, metrics_markdown, modality_rows, predict,
                                 similarity, similarity_markdown)
from mimic_edge.export.precisions import PRECISIONS
from mimic_edge.metrics import METRIC_KEYS
from mimic_edge.models import build_model

CASES = {"mimic": "mosi", "misa": "mmsa-mosi"}

FP32_ORDER = PRECISIONS["fp32"].thresholds.max_abs  # another batch: another summation order (export/precisions.py)


@pytest.fixture(scope="module")
def split():
    return {p: synthetic(p, n=(2, 2, 13), seed=2, seq_len=5)["test"] for p in set(CASES.values())}


@pytest.fixture(scope="module", params=list(CASES))
def model(request):
    torch.manual_seed(0)
    return build_model(request.param, CASES[request.param]).eval()


def _inputs(split):
    return [torch.from_numpy(split[m]) for m in MODALITIES]


def test_predict_matches_a_plain_forward_at_any_batch_size(model, split):
    data = split[model.config.preset]
    with torch.no_grad():
        expected = model(*_inputs(data))[:, 0].numpy()
    np.testing.assert_allclose(predict(model, data), expected, rtol=0, atol=FP32_ORDER)
    np.testing.assert_allclose(predict(model, data, batch_size=4), expected, rtol=0, atol=FP32_ORDER)


def test_predict_with_lengths_matches_a_plain_forward(model, split):
    data = {**split[model.config.preset], "audio_lengths": np.arange(13) % 5 + 1}
    lengths = {"audio": torch.from_numpy(data["audio_lengths"])}
    with torch.no_grad():
        expected = model(*_inputs(data), lengths)[:, 0].numpy()
    np.testing.assert_allclose(predict(model, data, batch_size=4), expected, rtol=0, atol=FP32_ORDER)


@pytest.mark.parametrize("dropped", MODALITIES)
def test_drop_matches_zeroed_inputs(model, split, dropped):
    data = split[model.config.preset]
    inputs = [torch.zeros_like(x) if m == dropped else x for m, x in zip(MODALITIES, _inputs(data))]
    with torch.no_grad():
        expected = model(*inputs)[:, 0].numpy()
    np.testing.assert_allclose(predict(model, data, drop=(dropped,)), expected, rtol=0, atol=FP32_ORDER)
    assert not np.allclose(expected, predict(model, data))


@pytest.mark.parametrize("dropped", MODALITIES)
def test_drop_agrees_with_mimics_own_switch(split, dropped):
    torch.manual_seed(0)
    plain = build_model("mimic").eval()
    switched = build_model("mimic", drop_modalities=(dropped,)).eval()
    switched.load_state_dict(plain.state_dict())
    np.testing.assert_allclose(predict(plain, split["mosi"], drop=(dropped,)), predict(switched, split["mosi"]),
                               rtol=0, atol=FP32_ORDER)


def test_drop_inputs_leaves_the_rest_alone():
    batch = {"text": torch.ones(2, 3, 4), "audio": torch.ones(2, 3, 1), "vision": torch.ones(2, 3, 1),
             "target": torch.ones(2), "lengths": None}
    out = drop_inputs(batch, ["audio"])
    assert out["audio"].abs().sum() == 0 and out["text"].sum() == 24 and out["target"].sum() == 2
    with pytest.raises(ConfigError, match=r"unknown modality \['face'\]"):
        drop_inputs(batch, ["face"])


def test_modality_rows(model, split):
    rows = modality_rows(model, split[model.config.preset], ["text", "vision"])
    assert [r["setting"] for r in rows] == [FULL, "w/o text", "w/o vision"]
    assert all(set(METRIC_KEYS) <= set(r) for r in rows)


def test_similarity_matches_a_plain_cosine(model, split):
    data = split[model.config.preset]
    key = {"mimic": "individual", "misa": "private"}[type(model).__name__.lower()]
    with torch.no_grad():
        reps = model.representations(*_inputs(data))[key].numpy().astype(np.float64)  # (N, 3, D)
    unit = reps / np.linalg.norm(reps, axis=-1, keepdims=True)
    t, a, v = unit[:, 0], unit[:, 1], unit[:, 2]
    expected = {"audio-text": np.mean(np.sum(a * t, -1)), "audio-vision": np.mean(np.sum(a * v, -1)),
                "text-vision": np.mean(np.sum(t * v, -1))}
    got = similarity(model, data, batch_size=4)
    assert list(got) == list(expected)
    for pair in expected:
        assert got[pair] == pytest.approx(expected[pair], abs=1e-5)


def test_mean_baseline_row(split):
    data = split["mosi"]
    row = mean_baseline_row(np.array([1.0, 2.0]), data)
    assert row["MAE"] == pytest.approx(np.mean(np.abs(data["regression_labels"] - 1.5)))
    assert math.isnan(row["Corr"])


def test_markdown_tables():
    row = {"setting": FULL, **dict.fromkeys(METRIC_KEYS, 0.5), "Corr": float("nan")}
    table = metrics_markdown([row, {**row, "setting": "w/o text"}]).splitlines()
    assert len(table) == 4 and table[0].startswith("| setting | Has0_acc_2 |")
    assert table[2] == "| all modalities | " + " | ".join(["0.5000"] * 7) + " | n/a |"
    sims = similarity_markdown("mimic", {"audio-text": 0.043, "audio-vision": 0.0421, "text-vision": -0.1})
    assert sims.splitlines()[-1] == "| mimic | 4.3 | 4.2 | -10.0 |"


def test_labels_column_or_flat_agree_and_other_shapes_are_refused(model, split):
    from mimic_edge.errors import DataError
    from mimic_edge.evaluate import evaluate

    data = split[model.config.preset]
    flat = evaluate(model, data)
    column = evaluate(model, {**data, "regression_labels": data["regression_labels"][:, None]})
    assert column == flat
    pairs = np.repeat(data["regression_labels"][:, None], 2, axis=1)  # (13, 2): two scores per sample
    with pytest.raises(DataError, match=r"evaluation split: regression_labels: expected shape \(13,\) or \(13, 1\)"):
        evaluate(model, {**data, "regression_labels": pairs})
