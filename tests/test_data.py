"""Synthetic data: layout, determinism, labels; MMSA loaders: round trip, bad files, unsafe pickles."""
import numpy as np
import pytest

from mimic_edge.config import MODALITIES, PRESETS
from mimic_edge.data import SPLITS, synthetic
from mimic_edge.errors import ConfigError


@pytest.mark.parametrize("preset", list(PRESETS))
def test_synthetic_layout_matches_preset(preset):
    p = PRESETS[preset]
    data = synthetic(preset, n=(5, 3, 4), seed=1)
    assert list(data) == list(SPLITS)
    dims = {"text": p.text_dim, "audio": p.audio_dim, "vision": p.vision_dim}
    for split, size in zip(SPLITS, (5, 3, 4)):
        s = data[split]
        assert set(s) == {"text", "audio", "vision", "regression_labels", "id"}
        for m in MODALITIES:
            assert s[m].shape == (size, p.seq_len, dims[m]) and s[m].dtype == np.float32
        assert s["regression_labels"].shape == (size,) and s["regression_labels"].dtype == np.float32
        assert s["id"].shape == (size,) and len(set(s["id"])) == size


def test_synthetic_is_deterministic_by_seed():
    a, b, c = (synthetic(n=30, seed=s, seq_len=6) for s in (0, 0, 1))
    for split in SPLITS:
        for key in a[split]:
            np.testing.assert_array_equal(a[split][key], b[split][key])
    assert not np.array_equal(a["train"]["text"], c["train"]["text"])


def test_synthetic_total_size_uses_mosi_proportions():
    data = synthetic(n=2199, seq_len=2)
    assert [len(data[s]["id"]) for s in SPLITS] == [1284, 229, 686]


def test_synthetic_labels_are_mosi_like():
    y = synthetic(n=2000, seq_len=2)["train"]["regression_labels"]
    assert y.min() >= -3 and y.max() <= 3
    np.testing.assert_allclose(y / 0.2, np.round(y / 0.2), atol=1e-4)  # multiples of 0.2
    assert 0.02 < np.mean(y == 0) < 0.2  # some exact zeros, so Non0 differs from Has0
    assert y.std() > 1.0


def _quadratic_probe_mae(train, test, modality):
    """Ridge regression of the label on one modality's time-pooled features and their squares."""
    def features(split):
        pooled = split[modality].mean(axis=1)
        return np.hstack([pooled, pooled ** 2, np.ones((len(pooled), 1))])
    x, y = features(train), train["regression_labels"]
    w = np.linalg.solve(x.T @ x + 1.0 * np.eye(x.shape[1]), x.T @ y)
    return np.mean(np.abs(features(test) @ w - test["regression_labels"]))


@pytest.fixture(scope="module")
def probe_data():
    return synthetic("mmsa-mosi", n=(3000, 10, 1000), seq_len=8)


@pytest.mark.parametrize("modality", MODALITIES)
def test_no_single_modality_predicts_the_label(probe_data, modality):
    data = probe_data
    baseline = np.mean(np.abs(data["test"]["regression_labels"] - data["train"]["regression_labels"].mean()))
    assert _quadratic_probe_mae(data["train"], data["test"], modality) > 0.97 * baseline


@pytest.mark.parametrize("n", [(0, 1, 1), (1, 2), 2])
def test_synthetic_rejects_empty_splits(n):
    with pytest.raises(ConfigError, match="at least 1 sample"):
        synthetic(n=n, seq_len=2)
