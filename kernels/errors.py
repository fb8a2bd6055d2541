"""The kernels' own errors: `mimic_edge.kernels` imports only torch and triton (docs/design.md §1's
layering rule), so it cannot raise `mimic_edge.errors` types.

Both are ValueErrors, as `mimic_edge.errors.InputError` and `ConfigError` (what the kernels
raised before) are: a caller that catches ValueError gets them as before.
"""
from __future__ import annotations


class KernelInputError(ValueError):
    """A bad argument to a kernel: an option value, a tensor's shape, an empty batch."""


class KernelTypeError(KernelInputError, TypeError):
    """A bad kind of argument: not a tensor, an unsupported or mixed dtype, a wrong or mixed
    device. Also a TypeError, and a KernelInputError so that one except clause catches all."""


__all__ = ["KernelInputError", "KernelTypeError"]
