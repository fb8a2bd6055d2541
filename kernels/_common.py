"""Helpers both Triton kernels share (kernels/fused_head.py, kernels/lstm.py). Imports triton."""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from mimic_edge.kernels.errors import KernelTypeError


@triton.jit
def _operand(x, OPERAND: tl.constexpr, UPCAST: tl.constexpr):
    """x rounded to the dot's operand dtype; UPCAST: then back to fp32 (interpreter, bf16)."""
    y = x.to(OPERAND)
    if UPCAST:
        y = y.to(tl.float32)
    return y


def dot_precision(dtype: torch.dtype) -> str:
    """fp32 dots follow torch's matmul precision: "highest" (the default) gets 3×TF32 on
    tensor cores, about fp32's accuracy; "high" and "medium" get TF32, as cuBLAS does then."""
    if dtype != torch.float32:
        return "ieee"  # unused: fp16/bf16 dots are tensor-core dots
    return "tf32x3" if torch.get_float32_matmul_precision() == "highest" else "tf32"


def check_device(op: str, devices: set[str], device: torch.device, interpreted: bool) -> None:
    """All of `op`'s tensors (`devices`) on one device, `device`, and one its kernel can run on."""
    if len(devices) > 1:
        raise KernelTypeError(f"{op}: expected all tensors on one device, found {sorted(devices)}")
    if device.type == "cpu" and not interpreted:
        raise KernelTypeError(f"{op}: CPU tensors need Triton's interpreter, which is off (TRITON_INTERPRET=1 "
                              f"must be set before mimic_edge.kernels.{op} is first used): use CUDA tensors, "
                              f"the interpreter, or {op}_reference")
    if device.type not in ("cpu", "cuda"):
        raise KernelTypeError(f"{op}: expected CUDA tensors (or CPU ones under Triton's interpreter), found {device}")


def shape_text(shape) -> str:
    """A shape as Python writes a tuple, for error messages: (3,) (2, 16)."""
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"
