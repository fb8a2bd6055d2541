"""MIMIC (docs/design.md §3): shapes, parameter counts, the equations, masking, training."""
import pytest
import torch
import torch.nn.functional as F

from mimic_edge import build_model
from mimic_edge.config import MODALITIES, PRESETS
from mimic_edge.export.precisions import PRECISIONS
from mimic_edge.models.mimic import contrastive_loss


@pytest.mark.parametrize("preset", list(PRESETS))
@pytest.mark.parametrize("batch", [1, 5])
@pytest.mark.parametrize("seq_lens", [(50, 50, 50), (12, 31, 7)], ids=["aligned", "unaligned"])
def test_output_shape(preset, batch, seq_lens, make_inputs):
    model = build_model("mimic", preset).eval()
    out = model(*make_inputs(model.config, batch, seq_lens))
    assert out.shape == (batch, 1)
    assert torch.isfinite(out).all()


def test_classification_output_shape(make_inputs):
    model = build_model("mimic", out_dim=7).eval()
    assert model(*make_inputs(model.config, 3)).shape == (3, 7)


@pytest.mark.parametrize("preset, expected", [("mosi", 305_569), ("mosi-bert", 425_377)])
def test_param_count(preset, expected):
    assert build_model("mimic", preset).num_params() == expected


def direct_pooled_outer(x):
    """Reference for Eqs. 7-8 written independently of max_pool3d: reshape into 2×2×2 boxes."""
    t, v, a = x[:, 0], x[:, 1], x[:, 2]
    cube = torch.einsum("bi,bj,bk->bijk", t, v, a)  # (B, 16, 16, 16) indexed (t, v, a)
    boxes = cube.reshape(-1, 8, 2, 8, 2, 8, 2).amax(dim=(2, 4, 6))  # (B, 8, 8, 8)
    return boxes.reshape(x.shape[0], 512)  # row-major, t slowest


@pytest.fixture(scope="module")
def reps_and_model(make_inputs):
    torch.manual_seed(0)
    model = build_model("mimic").eval()
    inputs = make_inputs(model.config, 6, (20, 15, 10))
    with torch.no_grad():
        return model.representations(*inputs), model, inputs


def test_shared_is_mean_of_aligned_and_individuals_sum_to_zero(reps_and_model):
    reps, _, _ = reps_and_model
    torch.testing.assert_close(reps["shared"], reps["h_hat"].mean(dim=1))  # Eq. 3
    torch.testing.assert_close(reps["individual"], reps["h_hat"] - reps["shared"][:, None])  # Eq. 4
    assert reps["individual"].sum(dim=1).abs().max() < 1e-5


def test_alignment_is_layernorm_plus_residual(reps_and_model):
    _, model, inputs = reps_and_model
    with torch.no_grad():
        h_text = model.encoders["text"](inputs[0])
        expected = F.layer_norm(h_text, (64,), model.align["text"].weight, model.align["text"].bias) + h_text
        torch.testing.assert_close(model.representations(*inputs)["h_hat"][:, 0], expected)  # Eq. 2


def test_fusion_equations(reps_and_model):
    reps, model, _ = reps_and_model
    with torch.no_grad():
        order = [MODALITIES.index(m) for m in ("text", "vision", "audio")]
        i_tilde = F.relu(model.bottleneck_i(reps["individual"][:, order]))  # Eq. 5
        h_tilde = F.relu(model.bottleneck_h(reps["h_hat"][:, order]))  # Eq. 6
        torch.testing.assert_close(reps["i_tilde"], i_tilde)
        torch.testing.assert_close(reps["h_tilde"], h_tilde)
        m = model.fc_m(direct_pooled_outer(h_tilde))  # Eq. 7
        i = model.fc_i(direct_pooled_outer(i_tilde))  # Eq. 8
        f0 = torch.cat([reps["shared"], i, m], dim=-1)  # Eq. 9
        torch.testing.assert_close(reps["F0"], f0)
        gate = reps["G"]
        assert ((gate > 0) & (gate < 1)).all()  # Eq. 10
        torch.testing.assert_close(reps["fused"], gate * f0)  # Eq. 11
        torch.testing.assert_close(reps["score"], model.head(reps["fused"]))


def test_forward_equals_representations_score(reps_and_model):
    reps, model, inputs = reps_and_model
    with torch.no_grad():
        torch.testing.assert_close(model(*inputs), reps["score"])


@pytest.mark.parametrize("switch, part", [("use_shared", slice(0, 64)), ("use_individual", slice(64, 128)),
                                          ("use_interaction", slice(128, 192))])
def test_ablation_switch_zeroes_its_part(switch, part, make_inputs):
    torch.manual_seed(0)
    model = build_model("mimic", **{switch: False}).eval()
    inputs = make_inputs(model.config, 3)
    with torch.no_grad():
        reps = model.representations(*inputs)
        assert reps["F0"][:, part].abs().max() == 0
        assert reps["F0"].abs().sum() > 0
        torch.testing.assert_close(model(*inputs), reps["score"])  # fused head and reference agree


def test_drop_modality_equals_zero_input(make_inputs):
    torch.manual_seed(0)
    full = build_model("mimic").eval()
    dropped = build_model("mimic", drop_modalities=("audio",)).eval()
    dropped.load_state_dict(full.state_dict())
    text, audio, vision = make_inputs(full.config, 4)
    with torch.no_grad():
        torch.testing.assert_close(dropped(text, audio, vision), full(text, torch.zeros_like(audio), vision))
        assert not torch.allclose(dropped(text, audio, vision), full(text, audio, vision))


def test_padding_does_not_change_outputs(make_inputs):
    """With lengths, a padded batch gives each sample's unpadded output, whatever the padding."""
    torch.manual_seed(0)
    model = build_model("mimic").eval()
    text, audio, vision = make_inputs(model.config, 3, (20, 15, 10))
    lengths = {"text": torch.tensor([20, 9, 4]), "audio": torch.tensor([15, 15, 3]), "vision": torch.tensor([1, 10, 6])}
    noisy = [x.clone() for x in (text, audio, vision)]
    for x, m in zip(noisy, MODALITIES):
        for b, n in enumerate(lengths[m]):
            x[b, n:] = 1e3 * torch.randn_like(x[b, n:])
    with torch.no_grad():
        padded = model(text, audio, vision, lengths)
        torch.testing.assert_close(model(*noisy, lengths), padded)
        for b in range(3):
            alone = model(*(x[b : b + 1, : lengths[m][b]] for x, m in zip((text, audio, vision), MODALITIES)))
            # another batch, another summation order: the fp32 bound of export/precisions.py
            torch.testing.assert_close(padded[b : b + 1], alone, rtol=0, atol=PRECISIONS["fp32"].thresholds.max_abs)


def test_contrastive_loss_matches_direct_infonce():
    torch.manual_seed(0)
    h_hat = torch.randn(5, 3, 64)
    tau = 0.1
    total = 0.0
    for m in range(3):
        for n in range(3):
            if m == n:
                continue
            for i in range(5):
                sims = torch.stack([F.cosine_similarity(h_hat[i, m], h_hat[k, n], dim=0) for k in range(5)]) / tau
                total += -(sims[i] - torch.logsumexp(sims, dim=0))
    expected = total / (6 * 5)
    torch.testing.assert_close(contrastive_loss(h_hat, tau), expected)


def test_contrastive_loss_is_low_for_aligned_modalities():
    z = torch.randn(8, 1, 64)
    aligned = contrastive_loss(z.expand(8, 3, 64), 0.1)
    shuffled = contrastive_loss(torch.randn(8, 3, 64), 0.1)
    assert aligned < 0.1 < shuffled
