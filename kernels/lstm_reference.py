"""Plain-PyTorch reference of MIMIC's three BiLSTM encoders (paper Eq. 1, docs/design.md §3.1).

The definition the Triton recurrence kernel (kernels/lstm.py) is tested against and whose
gradient it uses: the model's own LSTM path, `mimic_edge.models.common.bilstm`, restated here
because this package imports nothing else of mimic_edge (tests check the two agree bit for bit).

With per-sample lengths, the forward direction runs over the whole padded sequence (its
states at padded steps continue through the padding), and the backward direction runs over a
copy of the batch rolled right by each sample's padding, so that it starts at the sample's own
last valid step; its outputs are rolled back. In index terms, with n the sample's length and
L the padded length, the backward direction's step s (s = 0 … L − 1) reads and writes time
(n − 1 − s) mod L: the valid steps n − 1 … 0 first, then the padding from L − 1 down to n.
Padded positions are finite and never reach MIMIC's output (attention masks padded keys and the
mean counts valid steps), but they are part of the definition: the kernel writes the same ones.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def roll_per_sample(x: Tensor, shift: Tensor) -> Tensor:
    """out[b, t] = x[b, (t - shift[b]) mod L] for x (B, L, D)."""
    seq_len = x.shape[1]
    t = torch.arange(seq_len, device=x.device)[None, :]  # (1, L)
    index = (t - shift[:, None]) % seq_len  # (B, L)
    return torch.gather(x, 1, index[:, :, None].expand(-1, -1, x.shape[2]))


def _lstm(x: Tensor, weights: Sequence[Tensor]) -> Tensor:
    """nn.LSTM(batch_first=True, bidirectional=True, 1 layer) outputs (B, L, 2H), zero initial state."""
    hidden = weights[1].shape[1]  # w_hh: (4H, H)
    zeros = x.new_zeros(2, x.shape[0], hidden)
    out, _, _ = torch.lstm(x, (zeros, zeros), list(weights), True, 1, 0.0, False, True, True)
    return out


def bilstm_reference(x: Tensor, weights: Sequence[Tensor], lengths: Tensor | None = None) -> Tensor:
    """The BiLSTM outputs (B, L, 2H) of `mimic_edge.models.common.bilstm` for one modality.

    x (B, L, d); weights: nn.LSTM's 8 tensors in its order, `[w for d in lstm.all_weights for w
    in d]` = (w_ih, w_hh, b_ih, b_hh) forward, then the same reverse; lengths (B,) or None.
    fp16/bf16 inputs are computed in fp32 (exact maths on the rounded inputs), output in the
    input dtype.
    """
    dtype = x.dtype
    if dtype in _DTYPES and dtype != torch.float32:
        x, weights = x.float(), [w.float() for w in weights]
    hidden = weights[1].shape[1]
    out = _lstm(x, weights)  # (B, L, 2H)
    if lengths is not None:
        shift = x.shape[1] - lengths  # padding per sample
        backward = roll_per_sample(_lstm(roll_per_sample(x, shift), weights)[..., hidden:], -shift)  # (B, L, H)
        out = torch.cat([out[..., :hidden], backward], dim=-1)  # (B, L, 2H)
    return out.to(dtype)


def bilstm_encoders_reference(xs: Sequence[Tensor], weights: Sequence[Sequence[Tensor]],
                              lengths: Sequence[Tensor | None] | None = None) -> list[Tensor]:
    """`bilstm_reference` for each modality: xs[m] (B, L_m, d_m), weights[m] 8 tensors,
    lengths[m] (B,) or None → [(B, L_m, 2H)]. Same signature as `bilstm_encoders`."""
    lengths = [None] * len(xs) if lengths is None else lengths
    return [bilstm_reference(x, w, n) for x, w, n in zip(xs, weights, lengths)]
