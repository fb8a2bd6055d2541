"""What this machine offers TensorRT engines: the `tensorrt` package (a real one, not its type
stubs), the CUDA Python bindings and the GPU. Standard library only until TensorRT or CUDA is
asked for: the runtime imports this module on a Jetson.
"""
from __future__ import annotations

from typing import Any

from mimic_edge.errors import ConfigError

TENSORRT_HELP = ("TensorRT is not on PyPI alone: JetPack ships it on a Jetson; elsewhere pip install "
                 "'mimic-edge[tensorrt]' fetches it from NVIDIA's index, or unpack NVIDIA's tar archive "
                 "(docs/export.md)")


def tensorrt_missing() -> str | None:
    """Why the `tensorrt` Python package cannot run engines here, or None when it can.

    `tensorrt-stubs` (the types mypy checks this layer against) installs a `tensorrt/` folder
    holding only `__init__.pyi`, which Python imports as an empty namespace package: a
    successful `import tensorrt` alone proves nothing."""
    try:
        import tensorrt
    except ImportError:
        return f"the tensorrt package is not installed. {TENSORRT_HELP}"
    if getattr(tensorrt, "__file__", None) is None or not hasattr(tensorrt, "Builder"):
        return f"the tensorrt package found is only type stubs (tensorrt-stubs), not TensorRT. {TENSORRT_HELP}"
    return None


def require_tensorrt() -> str:
    """TensorRT's version; a ConfigError saying what is missing when TensorRT cannot run here.
    Callers then `import tensorrt as trt`, which mypy checks against the stubs."""
    reason = tensorrt_missing()
    if reason:
        raise ConfigError(reason)
    import tensorrt

    return str(tensorrt.__version__)


def current_environment() -> dict:
    """TensorRT version, name and compute capability of CUDA device 0 (TensorRT and the CUDA
    Python bindings, imported here)."""
    version = require_tensorrt()
    name, major, minor = _cuda_device()
    return {"tensorrt_version": version, "gpu_name": name, "compute_capability": f"{major}.{minor}"}


def cuda_runtime() -> Any:
    """cuda-python's runtime module, under its >= 12.6 name or the older one (untyped: cuda-python
    ships no type information)."""
    try:
        from cuda.bindings import runtime  # cuda-python >= 12.6
    except ImportError:
        try:
            from cuda import cudart as runtime  # older cuda-python
        except ImportError:
            raise ConfigError("TensorRT engines need the CUDA Python bindings, which are not installed: "
                              "pip install cuda-python (its major version matching your CUDA, e.g. "
                              "'cuda-python<13' for CUDA 12 / JetPack 6)") from None
    return runtime


def _cuda_device() -> tuple[str, int, int]:
    cudart = cuda_runtime()
    err, props = cudart.cudaGetDeviceProperties(0)
    if getattr(err, "value", err) != 0:
        raise ConfigError(f"no CUDA device to run a TensorRT engine on ({err})")
    name = props.name.decode() if isinstance(props.name, bytes) else str(props.name)
    return name.rstrip("\x00"), props.major, props.minor
