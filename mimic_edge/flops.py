"""FLOP counting. Rule: one multiply-add = 2 FLOPs, counted on every matmul-like op
(linear, matmul, bmm, the LSTM gate GEMMs, attention) by torch's FlopCounterMode;
elementwise ops, norms, pooling and activations are not counted.

On CPU, PyTorch runs nn.LSTM through oneDNN (`mkldnn_rnn_layer`), which FlopCounterMode does
not see; with oneDNN disabled the LSTM decomposes into counted GEMMs, so counting runs inside
`torch.backends.mkldnn.flags(enabled=False)`.
"""
from __future__ import annotations

import warnings

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_flops(model: nn.Module, *inputs: torch.Tensor) -> int:
    """FLOPs of one forward pass of `model(*inputs)` under the rule above."""
    counter = FlopCounterMode(display=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mkldnn.flags warns about Intel-GPU TF32 on every call
        with torch.no_grad(), torch.backends.mkldnn.flags(enabled=False), counter:
            model(*inputs)
    return counter.get_total_flops()
