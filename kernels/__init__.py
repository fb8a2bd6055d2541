"""Kernels for MIMIC's fusion head. Importing this package needs only torch: Triton is
imported by the fused kernel's own module, on first use."""
from mimic_edge.kernels.reference import fusion_head_reference

__all__ = ["fusion_head_reference"]
