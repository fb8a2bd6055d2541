"""Plain-PyTorch reference of MIMIC's fusion head (paper Eqs. 7-11, DESIGN §5).

It materialises both 16×16×16 outer products and max-pools them with `max_pool3d`: the
definition the fused kernels are tested against, and the head MIMIC uses by default.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def pooled_outer(x: Tensor) -> Tensor:
    """MaxPool3d(2)(x_t ⊗ x_v ⊗ x_a) flattened row-major (t slowest): x (B, 3, n) → (B, (n/2)³)."""
    t, v, a = x[:, 0], x[:, 1], x[:, 2]  # (B, n) each
    cube = t[:, :, None, None] * v[:, None, :, None] * a[:, None, None, :]  # (B, n, n, n)
    return F.max_pool3d(cube[:, None], kernel_size=2, stride=2).flatten(1)  # (B, (n/2)³)


def fusion_head_reference(h: Tensor, i: Tensor, s: Tensor, w_m: Tensor, b_m: Tensor,
                          w_i: Tensor, b_i: Tensor, w_g: Tensor, b_g: Tensor) -> Tensor:
    """F = G ⊙ concat[S, I, M] with M, I = FC(MaxPool(outer)), G = σ(W_g F0 + b_g).

    h, i: (B, 3, 16) in modality order (t, v, a); s: (B, 64); weights in nn.Linear layout.
    """
    m = F.linear(pooled_outer(h), w_m, b_m)  # (B, 64), Eq. 7
    ind = F.linear(pooled_outer(i), w_i, b_i)  # (B, 64), Eq. 8
    f0 = torch.cat([s, ind, m], dim=-1)  # (B, 192), Eq. 9
    return torch.sigmoid(F.linear(f0, w_g, b_g)) * f0  # Eqs. 10-11
