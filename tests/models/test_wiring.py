"""Wiring that the output shapes and parameter counts do not pin: which temperature the
contrastive loss divides by, and in which order MISA's transformer sees its six vectors."""
import pytest
import torch

from mimic_edge import build_model
from mimic_edge.config import MODALITIES, make_config


def infonce_reference(h_hat, tau):
    """docs/design.md §3.8 written out: for every ordered pair (m, n), m ≠ n, cross-entropy of the logits
    cos(ĥ_m^i, ĥ_n^k) / τ over the batch k against k = i; the mean over the pairs."""
    n_mod = h_hat.shape[1]
    pairs = []
    for m in range(n_mod):
        for n in range(n_mod):
            if m != n:
                cos = torch.cosine_similarity(h_hat[:, None, m], h_hat[None, :, n], dim=-1)  # (B, B)
                logits = cos / tau
                pairs.append((torch.logsumexp(logits, dim=1) - logits.diagonal()).mean())
    return torch.stack(pairs).mean()


def test_default_temperature_is_the_papers():
    assert make_config("mimic").temperature == 0.1  # τ = 0.1, paper Eq. 12 / docs/design.md §3.8


@pytest.mark.parametrize("tau", [None, 0.5, 2.0])
def test_contrastive_loss_uses_the_configured_temperature(make_inputs, tau):
    """The loss that training minimises, at the config's τ: a hard-coded or wrong default τ fails
    here (the three values give contrast terms that differ by far more than the tolerance)."""
    torch.manual_seed(0)
    model = build_model("mimic", **({} if tau is None else {"temperature": tau})).eval()  # eval: no dropout
    inputs = make_inputs(model.config, 6, (9, 7, 5))
    with torch.no_grad():
        _, parts = model.loss(*inputs, torch.zeros(6))
        h_hat = model.encode(*inputs)["h_hat"]
    expected = infonce_reference(h_hat, model.config.temperature).item()
    assert parts["contrast"] == pytest.approx(expected, rel=1e-5)
    assert parts["contrast"] != pytest.approx(infonce_reference(h_hat, 1.0).item(), rel=1e-3)  # τ matters here


def test_misa_transformer_sees_private_then_shared_in_t_v_a_order(make_inputs):
    """Official MISA: stack(private t, v, a, shared t, v, a) into the transformer. Our modality
    order is (text, audio, vision), so a fusion that kept it would pass every shape test."""
    torch.manual_seed(0)
    model = build_model("misa", "mmsa-mosi").eval()
    inputs = make_inputs(model.config, 3, (6, 5, 4))
    seen = []
    model.transformer.register_forward_hook(lambda module, args, out: seen.append(args[0]))
    with torch.no_grad():
        reps = model.encode(*inputs)
        model(*inputs)
    t, v, a = (MODALITIES.index(m) for m in ("text", "vision", "audio"))
    private, shared = reps["private"], reps["shared"]
    official = torch.stack([private[:, t], private[:, v], private[:, a], shared[:, t], shared[:, v], shared[:, a]],
                           dim=1)  # (B, 6, 128)
    assert len(seen) == 1
    torch.testing.assert_close(seen[0], official, rtol=0, atol=0)
