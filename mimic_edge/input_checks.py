"""Input checks shared by every entry point (docs/design.md §9).

Torch-free on purpose: the runtime validates numpy inputs for ONNX Runtime and TensorRT
without importing torch. Torch tensors are handled by duck typing.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from mimic_edge.config import MODALITIES
from mimic_edge.errors import InputError

_FLOAT_KINDS = ("float16", "bfloat16", "float32", "float64")


def _dtype_name(x: Any) -> str:
    """float32 for numpy's <f4 and >f4 alike (the cast to float32 fixes the byte order), torch's by name."""
    return getattr(x.dtype, "name", None) or str(x.dtype).removeprefix("torch.")


def _all_finite(x: Any) -> bool:
    if isinstance(x, np.ndarray):
        return bool(np.isfinite(x).all())
    return bool(x.isfinite().all())  # torch.Tensor


def _max_abs(x: Any) -> float:
    if isinstance(x, np.ndarray):
        return float(np.abs(x).max())
    return float(x.abs().max())  # torch.Tensor


def _overflows_float32(value: float) -> bool:
    """True if `value` becomes ±inf when cast to float32, the dtype every model runs in. The cast
    is monotonic, so a whole array stays finite exactly when its largest |x| does."""
    with np.errstate(over="ignore"):
        return not np.isfinite(np.float32(value))


def check_inputs(
    inputs: Mapping[str, Any],
    dims: Mapping[str, int],
    lengths: Mapping[str, Any] | None = None,
    seq_range: Mapping[str, tuple[int, int]] | None = None,
) -> int:
    """Check `text`, `audio`, `vision` feature sequences; return the batch size.

    Each must be a floating array of shape (B, L_m, dims[m]) with B ≥ 1, L_m ≥ 1, the same B
    for all, and only values that are finite once cast to float32 (what every runtime does).
    `seq_range` bounds L_m (an engine's optimization profile);
    `lengths` are optional per-modality valid lengths in [1, L_m].
    """
    missing = [m for m in MODALITIES if m not in inputs]
    if missing:
        raise InputError(f"missing input(s) {missing}: expected {list(MODALITIES)}")
    batch = None
    for m in MODALITIES:
        x = inputs[m]
        if not hasattr(x, "shape") or not hasattr(x, "dtype"):
            raise InputError(f"{m}: expected a numpy array or torch tensor, found {type(x).__name__}")
        shape = tuple(x.shape)
        if len(shape) != 3:
            raise InputError(f"{m}: expected rank 3 (batch, seq_len, {dims[m]}), found shape {shape}")
        if shape[2] != dims[m]:
            raise InputError(f"{m}: expected feature dim {dims[m]}, found {shape[2]} (shape {shape})")
        if shape[0] == 0:
            raise InputError(f"{m}: empty batch (shape {shape}): expected at least one sample")
        if shape[1] == 0:
            raise InputError(f"{m}: empty sequence (shape {shape}): expected seq_len >= 1")
        if batch is not None and shape[0] != batch:
            raise InputError(f"batch sizes differ: expected {batch} for all modalities, found {shape[0]} for {m}")
        batch = shape[0]
        if _dtype_name(x) not in _FLOAT_KINDS:
            raise InputError(f"{m}: expected a floating dtype (float32), found {_dtype_name(x)}")
        if seq_range is not None and m in seq_range:
            lo, hi = seq_range[m]
            if not lo <= shape[1] <= hi:
                raise InputError(f"{m}: seq_len {shape[1]} is outside the supported range [{lo}, {hi}]")
        if not _all_finite(x):
            raise InputError(f"{m}: found NaN or Inf values: expected finite features")
        # float64 is finite up to 1.8e308, float32 only to 3.4e38: 1e39 would pass the check above
        # and turn into inf in the cast every runtime makes, then into a silent NaN or a wrong score.
        if _dtype_name(x) == "float64":
            largest = _max_abs(x)
            if _overflows_float32(largest):
                raise InputError(f"{m}: found values beyond float32's range (max |x| {largest:.3g} > "
                                 f"{np.finfo(np.float32).max:.3g}): expected features finite as float32, "
                                 f"the dtype the models run in")
    if lengths is not None:
        if not isinstance(lengths, Mapping):
            raise InputError(f"lengths: expected a dict of modality → (batch,) integers, found {type(lengths).__name__}")
        for m, n in lengths.items():
            if m not in MODALITIES:
                raise InputError(f"lengths: unknown modality {m!r}, expected some of {list(MODALITIES)}")
            n = np.asarray(n.cpu() if hasattr(n, "cpu") else n)
            if n.dtype.kind not in "iu":
                raise InputError(f"lengths[{m}]: expected integers, found dtype {n.dtype}")
            seq_len = inputs[m].shape[1]
            if n.shape != (batch,):
                raise InputError(f"lengths[{m}]: expected shape ({batch},), found {n.shape}")
            if n.size and (n.min() < 1 or n.max() > seq_len):
                raise InputError(f"lengths[{m}]: expected values in [1, {seq_len}], found [{n.min()}, {n.max()}]")
    return batch
