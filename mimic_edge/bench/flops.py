"""FLOP counting. Rule: one multiply-add = 2 FLOPs, counted on every matmul-like op
(linear, matmul, bmm, the LSTM gate GEMMs, attention) by torch's FlopCounterMode;
elementwise ops, norms, pooling and activations are not counted.

Two PyTorch fast paths hide ops from FlopCounterMode, so counting turns both off:
- on CPU, nn.LSTM runs through oneDNN (`mkldnn_rnn_layer`), invisible unless
  `torch.backends.mkldnn.flags(enabled=False)`, under which it decomposes into GEMMs;
- in eval mode nn.TransformerEncoder runs one fused `_transformer_encoder_layer_fwd`
  (7.1 MFLOPs of MISA's 39 hidden), unless the MHA fast path is disabled; and the slow path's
  CPU flash attention (`_scaled_dot_product_flash_attention_for_cpu`) has no FLOP formula, so
  attention runs on SDPA's math backend while counting.
The tests check the counts against analytic formulas for both models and every preset.
"""
from __future__ import annotations

import contextlib
import warnings

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode


@contextlib.contextmanager
def _visible_ops():
    was_fast = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # mkldnn.flags warns about Intel-GPU TF32 on every call
            with torch.no_grad(), torch.backends.mkldnn.flags(enabled=False), sdpa_kernel(SDPBackend.MATH):
                yield
    finally:
        torch.backends.mha.set_fastpath_enabled(was_fast)


def _count(model: nn.Module, inputs) -> FlopCounterMode:
    counter = FlopCounterMode(display=False)
    with _visible_ops(), counter:
        model(*inputs)
    return counter


def count_flops(model: nn.Module, *inputs: torch.Tensor) -> int:
    """FLOPs of one forward pass of `model(*inputs)` under the rule above."""
    return _count(model, inputs).get_total_flops()


def flops_breakdown(model: nn.Module, *inputs: torch.Tensor) -> dict[str, int]:
    """{"encoders", "fusion", "head", "total"} for a model with a FLOP_GROUPS table.

    A group sums the submodules it names; "fusion" is the rest (the fusion head's functional
    ops are attributed to the model itself, not to a submodule).
    """
    counter = _count(model, inputs)
    per_module = {name: sum(ops.values()) for name, ops in counter.get_flop_counts().items()}
    root = type(model).__name__
    groups = {}
    for group, children in model.FLOP_GROUPS.items():
        names = []
        for child in children:  # a ModuleDict is never called itself: count its entries
            module = getattr(model, child)
            keys = module.keys() if isinstance(module, nn.ModuleDict) else [None]
            names += [f"{root}.{child}" + (f".{k}" if k else "") for k in keys]
        groups[group] = sum(per_module.get(n, 0) for n in names)
    total = counter.get_total_flops()
    return {"encoders": groups["encoders"], "fusion": total - groups["encoders"] - groups["head"],
            "head": groups["head"], "total": total}
