"""Kernels for MIMIC's fusion head (DESIGN §5).

Importing this package needs only torch: Triton is imported by `fusion_head` (the fused
kernel, kernels/fusion_head.py) on first access, so `import mimic_edge.kernels` works where
Triton is not installed (Jetson, CPU-only machines).
"""
from __future__ import annotations

import os
import sys
import types
from importlib.util import find_spec

from mimic_edge.kernels.reference import fusion_head_reference, pooled_outer, pooled_outer_factorized

_TRITON_INSTALLED = find_spec("triton") is not None  # a path lookup: triton is not imported


def triton_head_usable(device) -> bool:
    """Whether the fused head can run on `device`: CUDA with Triton installed, or the CPU
    with Triton's interpreter asked for (TRITON_INTERPRET=1, as Triton reads it)."""
    if not _TRITON_INSTALLED:
        return False
    if device.type == "cuda":
        return True
    return device.type == "cpu" and os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "on")


def __getattr__(name: str):
    if name == "fusion_head":  # imports triton: only on first use
        from mimic_edge.kernels.fusion_head import fusion_head

        return fusion_head
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _Package(types.ModuleType):
    """Keeps `mimic_edge.kernels.fusion_head` the function: importing the submodule of the
    same name would otherwise rebind the package attribute to the module."""

    def __setattr__(self, name: str, value) -> None:
        if name == "fusion_head" and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

__all__ = ["fusion_head", "fusion_head_reference", "pooled_outer", "pooled_outer_factorized", "triton_head_usable"]
