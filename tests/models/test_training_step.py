"""Both models' losses train: each overfits a tiny batch in a few hundred Adam steps."""
import pytest
import torch

from mimic_edge import build_model


@pytest.mark.parametrize("name, preset, seq_len, lr, steps, parts", [
    ("mimic", "mosi", 10, 3e-3, 200, {"loss", "task", "contrast"}),
    ("misa", "mosi-bert", 5, 1e-3, 80, {"loss", "task", "diff", "cmd", "recon"}),
])
def test_overfits_a_tiny_batch(name, preset, seq_len, lr, steps, parts, make_inputs):
    torch.manual_seed(0)
    model = build_model(name, preset, dropout=0.0)
    inputs = make_inputs(model.config, 8, (seq_len,) * 3)
    target = torch.linspace(-3, 3, 8)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    first = None
    for _ in range(steps):
        loss, logged = model.loss(*inputs, target)
        first = first if first is not None else logged["task"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert set(logged) == parts
    assert logged["task"] < first / 50, (first, logged)
