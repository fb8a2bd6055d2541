"""Plain-PyTorch reference of MIMIC's fusion head (paper Eqs. 7-11, docs/design.md §5).

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


def pooled_outer_factorized(x: Tensor) -> Tensor:
    """`pooled_outer` without the n³ cube, exactly: x (B, 3, n) → (B, (n/2)³).

    A max over a box of a product of independent factors is reached at an extreme of each
    factor, for any signs: each pooled value is the max over the 8 products of the block
    minima/maxima. Taken in two steps: y = v·a over a (q, r) box ranges over its 4 corner
    products, and max over t of t·y is t·y_max for t ≥ 0, t·y_min for t < 0. Tensors of
    (n/2)³ values at most, no data-dependent Python branch: it exports as it is (ONNX too).
    """
    pairs = x.unflatten(-1, (-1, 2))  # (B, 3, n/2, 2)
    lo, hi = pairs.amin(dim=-1), pairs.amax(dim=-1)  # (B, 3, n/2) each
    v = torch.stack([lo[:, 1], hi[:, 1]], dim=-1)  # (B, n/2, 2)
    a = torch.stack([lo[:, 2], hi[:, 2]], dim=-1)  # (B, n/2, 2)
    corners = (v[:, :, None, :, None] * a[:, None, :, None, :]).flatten(3)  # (B, n/2, n/2, 4)
    y_max = corners.amax(dim=-1)[:, None]  # (B, 1, n/2, n/2)
    y_min = corners.amin(dim=-1)[:, None]
    t_lo, t_hi = lo[:, 0, :, None, None], hi[:, 0, :, None, None]  # (B, n/2, 1, 1)
    pooled = torch.maximum(t_lo * torch.where(t_lo >= 0, y_max, y_min),
                           t_hi * torch.where(t_hi >= 0, y_max, y_min))  # (B, n/2, n/2, n/2)
    return pooled.flatten(1)  # (B, (n/2)³), t slowest


def fusion_head_reference(h: Tensor, i: Tensor, s: Tensor, w_m: Tensor, b_m: Tensor,
                          w_i: Tensor, b_i: Tensor, w_g: Tensor, b_g: Tensor) -> Tensor:
    """F = G ⊙ concat[S, I, M] with M, I = FC(MaxPool(outer)), G = σ(W_g F0 + b_g).

    h, i: (B, 3, 16) in modality order (t, v, a); s: (B, 64); weights in nn.Linear layout.
    """
    m = F.linear(pooled_outer(h), w_m, b_m)  # (B, 64), Eq. 7
    ind = F.linear(pooled_outer(i), w_i, b_i)  # (B, 64), Eq. 8
    f0 = torch.cat([s, ind, m], dim=-1)  # (B, 192), Eq. 9
    return torch.sigmoid(F.linear(f0, w_g, b_g)) * f0  # Eqs. 10-11
