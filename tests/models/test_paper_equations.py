"""The models against values worked out independently of their code: MIMIC's Eq. 1 attention
by a plain numpy re-implementation (float64, so the comparison is at float64 roundoff), MISA's CMD
with K = 5 moments on numbers computed by hand."""
import math

import numpy as np
import pytest
import torch

from mimic_edge.config import make_config
from mimic_edge.models import build_model
from mimic_edge.models.misa import cmd, cmd_loss_total


def attention_pool(u: np.ndarray, encoder, lengths: np.ndarray) -> np.ndarray:
    """Eq. 1 after the BiLSTM: softmax(Q Kᵀ / √d) V, then O, then the mean over the valid steps."""
    def linear(layer, x):
        return x @ layer.weight.detach().double().numpy().T + layer.bias.detach().double().numpy()

    d = u.shape[-1]
    out = []
    for b in range(len(u)):
        x = u[b, :lengths[b]]  # the valid steps: padding is neither a key nor averaged
        scores = linear(encoder.q, x) @ linear(encoder.k, x).T / math.sqrt(d)
        weights = np.exp(scores - scores.max(axis=1, keepdims=True))
        weights /= weights.sum(axis=1, keepdims=True)
        out.append(linear(encoder.o, weights @ linear(encoder.v, x)).mean(axis=0))
    return np.stack(out)


def test_mimic_attention_is_scaled_by_the_root_of_d():
    torch.manual_seed(0)
    encoder = build_model("mimic").encoders["text"].double()
    rng = np.random.default_rng(0)
    u = rng.standard_normal((3, 7, 64)) * 3  # large scores: a wrong scale changes the softmax a lot
    lengths = np.array([7, 4, 1])
    with torch.no_grad():
        got = encoder(torch.zeros(3, 7, 300, dtype=torch.float64), torch.from_numpy(lengths),
                      states=torch.from_numpy(u)).numpy()
    # float64 throughout: the two differ by roundoff, ~1e-16 relative per operation, over ~10³ of them
    np.testing.assert_allclose(got, attention_pool(u, encoder, lengths), rtol=0, atol=1e-12)


def test_cmd_with_five_moments_by_hand():
    """x1 = (0, 0, 3): mean 1, central moments E[c^k] = 2, 2, 6, 10 for k = 2..5; x2 = (1, 1, 1):
    the same mean, no spread. CMD(5) = 0 + 2 + 2 + 6 + 10 = 20 (four moments: 10, six: 42)."""
    x1 = torch.tensor([[0.0], [0.0], [3.0]], dtype=torch.float64)
    x2 = torch.ones(3, 1, dtype=torch.float64)
    assert cmd(x1, x2, 5).item() == pytest.approx(20, abs=1e-12)
    assert cmd(x1, x2, 4).item() == pytest.approx(10, abs=1e-12)
    # over MISA's three pairs (text, audio, vision shared vectors): (t, v) 20, (t, a) 20, (a, v) 0
    shared = torch.stack([x1, x2, x2], dim=1)  # (N, 3, 1)
    assert cmd_loss_total(shared, 5).item() == pytest.approx(40 / 3, abs=1e-12)


def test_misa_trains_with_five_cmd_moments(monkeypatch):
    """The paper's (and the official code's) K = 5 reaches the loss."""
    import mimic_edge.models.misa as misa

    assert make_config("misa").cmd_moments == 5
    seen, total = [], misa.cmd_loss_total
    monkeypatch.setattr(misa, "cmd_loss_total", lambda shared, k: seen.append(k) or total(shared, k))
    model = build_model("misa")
    x = [torch.randn(4, 5, d) for d in model.config.dims.values()]
    model.loss(*x, torch.zeros(4))
    assert seen == [5]
