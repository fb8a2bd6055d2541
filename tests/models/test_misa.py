"""MISA (docs/design.md §4): shapes, parameter counts, the official utterance vector and losses."""
import pytest
import torch

from mimic_edge import build_model
from mimic_edge.config import MODALITIES, PRESETS
from mimic_edge.models.misa import StackedBiLSTM, cmd, diff_loss


@pytest.mark.parametrize("preset", list(PRESETS))
@pytest.mark.parametrize("batch", [1, 5])
@pytest.mark.parametrize("seq_lens", [(20, 20, 20), (12, 17, 7)], ids=["aligned", "unaligned"])
def test_output_shape(preset, batch, seq_lens, make_inputs):
    model = build_model("misa", preset).eval()
    out = model(*make_inputs(model.config, batch, seq_lens))
    assert out.shape == (batch, 1)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("preset, expected", [("mosi-bert", 1_477_453), ("mosi", 5_143_549)])
def test_param_count(preset, expected):
    assert build_model("misa", preset).num_params() == expected


def test_bert_text_path_is_masked_mean():
    model = build_model("misa", "mosi-bert")
    assert "text" not in model.utterance and model.project["text"][0].in_features == 768
    assert model.utterance["audio"].rnn1.hidden_size == 74


def test_utterance_vector_follows_official_layout():
    """Official: cat(final_h1, final_h2, dim=2).permute(1, 0, 2).view(B, -1)."""
    enc = StackedBiLSTM(5, 3).eval()
    x = torch.randn(4, 6, 5)
    with torch.no_grad():
        out1, (h1, _) = enc.rnn1(x)
        _, (h2, _) = enc.rnn2(enc.norm(out1))
        official = torch.cat((h1, h2), dim=2).permute(1, 0, 2).contiguous().view(4, -1)
        torch.testing.assert_close(enc(x), official)


def test_padding_does_not_change_outputs(make_inputs):
    torch.manual_seed(0)
    model = build_model("misa", "mosi-bert").eval()
    text, audio, vision = make_inputs(model.config, 2, (9, 8, 6))
    lengths = {"text": torch.tensor([9, 4]), "audio": torch.tensor([3, 8]), "vision": torch.tensor([6, 2])}
    with torch.no_grad():
        padded = model(text, audio, vision, lengths)
        for b in range(2):
            alone = model(*(x[b : b + 1, : lengths[m][b]] for x, m in zip((text, audio, vision), MODALITIES)))
            torch.testing.assert_close(padded[b : b + 1], alone, rtol=1e-4, atol=1e-5)


def test_diff_loss_matches_official_formula():
    x1, x2 = torch.randn(7, 4), torch.randn(7, 4)
    c1, c2 = x1 - x1.mean(0), x2 - x2.mean(0)
    n1 = c1 / (c1.norm(dim=1, keepdim=True) + 1e-6)
    n2 = c2 / (c2.norm(dim=1, keepdim=True) + 1e-6)
    expected = sum((n1[:, i] @ n2[:, j]) ** 2 for i in range(4) for j in range(4)) / 16
    torch.testing.assert_close(diff_loss(x1, x2), expected)


def test_cmd_is_zero_for_equal_and_grows_with_shift():
    x = torch.randn(50, 6)
    assert cmd(x, x, 5) == 0
    m1, m2 = x.mean(0), (x + 1).mean(0)
    torch.testing.assert_close(cmd(x, x + 1, 5), (m1 - m2).norm())  # a shift moves only the mean
    assert cmd(x, 2 * x, 5) > 0
