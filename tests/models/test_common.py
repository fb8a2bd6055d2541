"""The padded-batch BiLSTM equals running each sample alone, unpadded."""
import pytest
import torch
from torch import nn

from mimic_edge.models.common import bilstm, masked_mean, roll_per_sample


def test_roll_per_sample_matches_torch_roll():
    x = torch.randn(3, 7, 2)
    shift = torch.tensor([0, 2, 6])
    out = roll_per_sample(x, shift)
    for b in range(3):
        torch.testing.assert_close(out[b], torch.roll(x[b], int(shift[b]), dims=0))


@pytest.mark.parametrize("lengths", [[5, 5, 5], [1, 3, 5], [4, 2, 5]])
def test_bilstm_with_lengths_equals_unpadded_runs(lengths):
    lstm = nn.LSTM(6, 4, batch_first=True, bidirectional=True)
    x = torch.randn(3, 5, 6)
    out, final = bilstm(lstm, x, torch.tensor(lengths))
    for b, n in enumerate(lengths):
        ref_out, (ref_h, _) = lstm(x[b : b + 1, :n])
        torch.testing.assert_close(out[b, :n], ref_out[0])
        torch.testing.assert_close(final[b], torch.cat([ref_h[0, 0], ref_h[1, 0]]))


def test_bilstm_without_lengths_is_plain_lstm():
    lstm = nn.LSTM(6, 4, batch_first=True, bidirectional=True)
    x = torch.randn(2, 5, 6)
    out, final = bilstm(lstm, x)
    ref_out, (ref_h, _) = lstm(x)
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(final, torch.cat([ref_h[0], ref_h[1]], dim=-1))


def test_masked_mean_ignores_padding():
    x = torch.randn(2, 4, 3)
    out = masked_mean(x, torch.tensor([2, 4]))
    torch.testing.assert_close(out[0], x[0, :2].mean(0))
    torch.testing.assert_close(out[1], x[1].mean(0))
