"""Kernels for MIMIC's fusion head (docs/design.md §5) and its three BiLSTM encoders (paper Eq. 1).

Layering: this package imports only torch and triton (nothing else of mimic_edge), and
importing it has no side effects. Triton is imported by `fusion_head` (the fused kernel,
kernels/fused_head.py) and `bilstm_encoders` (the recurrence kernel, kernels/lstm.py) on
first access, so `import mimic_edge.kernels` works where Triton is not installed (Jetson,
CPU-only machines). Its errors are its own: `KernelInputError` (a
ValueError) and `KernelTypeError` (also a TypeError), in kernels/errors.py.
"""
from __future__ import annotations

import os
from importlib.util import find_spec

from mimic_edge.kernels.errors import KernelInputError, KernelTypeError
from mimic_edge.kernels.lstm_reference import bilstm_encoders_reference, bilstm_reference
from mimic_edge.kernels.reference import fusion_head_reference, pooled_outer, pooled_outer_factorized

_TRITON_INSTALLED = find_spec("triton") is not None  # a path lookup: triton is not imported
_TRITON_OPS = ("triton_op", "wrap_triton")  # torch.library's, since torch 2.6; JetPack 6's torch is older


def missing_torch_api() -> str | None:
    """Why this torch cannot register the kernels, or None: they are torch.library.triton_ops."""
    import torch

    missing = [name for name in _TRITON_OPS if not hasattr(torch.library, name)]
    if not missing:
        return None
    return (f"the Triton kernels need torch >= 2.6 (torch.library.{' and '.join(missing)}), found torch "
            f"{torch.__version__}; everything else works on it: the models run their PyTorch encoders and head")


def triton_head_usable(device) -> bool:
    """Whether the fused head (and every Triton kernel of this package: the rule is the same)
    can run on `device`: CUDA with Triton installed, or the CPU with Triton's interpreter asked
    for (TRITON_INTERPRET=1, as Triton reads it); and a torch that has triton_op."""
    if not _TRITON_INSTALLED or missing_torch_api():
        return False
    if device.type == "cuda":
        return True
    return device.type == "cpu" and os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "on")


def __getattr__(name: str):
    reason = missing_torch_api() if name in ("fusion_head", "bilstm_encoders") else None
    if reason:
        raise ImportError(f"mimic_edge.kernels.{name}: {reason}")
    if name == "fusion_head":  # imports triton: only on first use
        from mimic_edge.kernels.fused_head import fusion_head

        globals()["fusion_head"] = fusion_head  # later lookups skip this function
        return fusion_head
    if name == "bilstm_encoders":  # imports triton: only on first use
        from mimic_edge.kernels.lstm import bilstm_encoders

        globals()["bilstm_encoders"] = bilstm_encoders
        return bilstm_encoders
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["KernelInputError", "KernelTypeError", "bilstm_encoders", "bilstm_encoders_reference", "bilstm_reference",
           "fusion_head", "fusion_head_reference", "missing_torch_api", "pooled_outer", "pooled_outer_factorized",
           "triton_head_usable"]
