"""The jobs beyond running an artifact, and what each needs installed: pyproject.toml's extras.

`pip install mimic-edge` is the runtime alone (numpy and onnxruntime: what `mimic-edge predict`
and `mimic_edge.runtime.load` need for an ONNX artifact), so that a Jetson or a Pi that only runs
artifacts gets no torch. A job whose modules are missing is refused in one line that names the
extra to install. Standard library only.
"""
from __future__ import annotations

import importlib.util

from mimic_edge.errors import MimicEdgeError

# extra → the Python modules it provides (its distributions in pyproject.toml; tests keep them equal)
EXTRAS: dict[str, tuple[str, ...]] = {
    "torch": ("torch", "safetensors"),  # running PyTorch artifacts: checkpoints, .pt2 packages
    "export": ("torch", "onnx", "onnxslim", "safetensors"),
    "train": ("torch", "safetensors", "tqdm"),
    "bench": ("torch", "onnx", "onnxslim", "safetensors", "tqdm"),
    "triton": ("triton",),
    "tensorrt": ("tensorrt", "cuda"),
    "serve": ("pytriton",),  # nvidia-pytriton: Triton Inference Server in the wheel (numpy < 2)
}
# What a command refuses to start without. bench starts with torch alone: a row whose backend lacks a
# module (onnx, tensorrt...) is skipped with the reason (mimic_edge.bench.backends), the others run.
COMMAND_EXTRAS = {"train": "train", "eval": "torch", "export": "export", "bench": "torch", "serve": "serve"}


class MissingExtra(MimicEdgeError):
    """A job needs modules that are not installed; the message names the extra that brings them."""


def install_hint(extra: str) -> str:
    return f"pip install 'mimic-edge[{extra}]'"


def require_extra(extra: str, job: str) -> None:
    """MissingExtra unless every module of `extra` is installed."""
    missing = [m for m in EXTRAS[extra] if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingExtra(f"{job} needs {', '.join(missing)}, not installed here: {install_hint(extra)}")


def extra_providing(module: str) -> str | None:
    """The first extra (in EXTRAS' order) that installs top-level `module`, or None."""
    return next((extra for extra, modules in EXTRAS.items() if module in modules), None)
