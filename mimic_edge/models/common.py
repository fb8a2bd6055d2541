"""Pieces both models share: exact bidirectional LSTMs over padded batches, masks, the task loss.

A padded batch with per-sample `lengths` must give the same result as each sample run alone.
The forward direction is exact on a padded batch up to each sample's last valid step; the
backward direction is not (it would start in the padding). So, when lengths are given, the
backward direction reads a copy of the batch rolled right by each sample's padding, where it
starts on the last valid step, and its outputs are rolled back. Two LSTM runs instead of one,
no packed sequences, no Python branches on data: it exports to plain ONNX.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def valid_mask(lengths: Tensor, seq_len: int) -> Tensor:
    """(B, L) bool: True at positions < length."""
    return torch.arange(seq_len, device=lengths.device)[None, :] < lengths[:, None]


def roll_per_sample(x: Tensor, shift: Tensor) -> Tensor:
    """out[b, t] = x[b, (t - shift[b]) mod L] for x (B, L, D)."""
    seq_len = x.shape[1]
    t = torch.arange(seq_len, device=x.device)[None, :]  # (1, L)
    index = (t - shift[:, None]) % seq_len  # (B, L)
    return torch.gather(x, 1, index[:, :, None].expand(-1, -1, x.shape[2]))


def bilstm(lstm: nn.LSTM, x: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Run a 1-layer bidirectional batch-first LSTM; return (outputs, final states).

    outputs (B, L, 2H): forward and backward hidden states per step (garbage past a length).
    final (B, 2H): [forward state at the last valid step, backward state at step 0].
    """
    hidden = lstm.hidden_size
    out, (h_n, _) = lstm(x)  # (B, L, 2H), (2, B, H)
    if lengths is None:
        return out, torch.cat([h_n[0], h_n[1]], dim=-1)
    shift = x.shape[1] - lengths  # padding per sample
    out_shifted, _ = lstm(roll_per_sample(x, shift))
    backward = roll_per_sample(out_shifted[..., hidden:], -shift)  # (B, L, H)
    out = torch.cat([out[..., :hidden], backward], dim=-1)  # (B, L, 2H)
    last = (lengths - 1)[:, None, None].expand(-1, 1, hidden)
    forward_final = torch.gather(out[..., :hidden], 1, last)[:, 0]  # (B, H)
    return out, torch.cat([forward_final, backward[:, 0]], dim=-1)


def masked_mean(x: Tensor, lengths: Tensor | None) -> Tensor:
    """Mean over time of x (B, L, D), counting only valid steps when lengths are given."""
    if lengths is None:
        return x.mean(dim=1)
    mask = valid_mask(lengths, x.shape[1]).to(x.dtype)[..., None]  # (B, L, 1)
    return (x * mask).sum(dim=1) / lengths[:, None].to(x.dtype)


def task_loss(score: Tensor, target: Tensor) -> Tensor:
    """MSE for regression (out = 1), cross-entropy over classes otherwise (Eqs. 13-14)."""
    if score.shape[-1] == 1:
        return F.mse_loss(score.view(-1), target.view(-1).to(score.dtype))
    return F.cross_entropy(score, target.view(-1).long())


class WithLengths(nn.Module):
    """A model with its per-sample valid lengths as three more inputs (B,) int64, for exports that
    take positional inputs (ONNX, torch.export): a padded batch is scored as each sample alone."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.config = model.config

    def forward(self, text: Tensor, audio: Tensor, vision: Tensor, text_lengths: Tensor, audio_lengths: Tensor,
                vision_lengths: Tensor) -> Tensor:
        return self.model(text, audio, vision, {"text": text_lengths, "audio": audio_lengths, "vision": vision_lengths})
