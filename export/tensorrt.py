"""TensorRT engines from the ONNX artifacts (docs/design.md §6): a thin layer over the `tensorrt` API.

The pure-Python parts run anywhere and are tested on CPU: the settings that depend on the
TensorRT version (the optimization profile is mimic_edge.export.shapes'). `build_engine` needs `tensorrt` and a CUDA GPU.

Version-dependent settings:
- TensorRT 10.x (JetPack 6 ships 10.3): a weakly typed network; the precision of the ONNX is
  enabled by builder flags, the `tensorrt_flags` of its entry in mimic_edge.export.precisions.
- TensorRT 11.x: no precision flags and no calibrators any more; networks are strongly typed,
  so the types in the ONNX (fp16 tensors, Q/DQ) are the precision, and the checker's
  `strongly-typed` rule (mimic_edge.export.checker) holds every artifact to it.

The network is created with no creation flags on both: 10.x builds it weakly typed (the flags
above set the precision), and 11.x always builds strongly typed; there `kSTRONGLY_TYPED` is
deprecated, ignored, and renumbered (1 in 10.x's NvInfer.h, 0 in 11.1's), so it is not passed.

Checked without TensorRT: mypy runs this module and the TensorRT predictor against
`tensorrt-stubs` (the 10.13 Python API), and tests/export/test_tensorrt.py finds the C++
counterpart of every TensorRT call made here in both header sets of
../shared/third_party/tensorrt-headers (10.3.0 and 11.1): the Python API mirrors the C++ one.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mimic_edge.errors import ConfigError, ExportError
from mimic_edge.export.precisions import PRECISIONS, Precision
from mimic_edge.export.shapes import Profile
from mimic_edge.io import atomic_write_bytes
from mimic_edge.sidecar import ENGINE, write_record
from mimic_edge.tensorrt_probe import cuda_runtime, require_tensorrt, tensorrt_missing

SUPPORTED_MAJORS = (10, 11)
WORKSPACE_BYTES = 1 << 30  # 1 GiB: ample for a 0.3 M-parameter model (MISA: 5 M)


def write_engine_sidecar(engine_path: str | Path, *, tensorrt_version: str, gpu_name: str, compute_capability: str,
                         precision: str, profile: dict, model: str, preset: str, config_digest: str,
                         dims: dict[str, int], onnx_sha256: str) -> Path:
    """Record what the (already written) engine at `engine_path` was built with and for
    (mimic_edge.sidecar.ENGINE: TensorRTPredictor checks it before the engine is loaded)."""
    return write_record(engine_path, ENGINE, {
        "tensorrt_version": tensorrt_version, "gpu_name": gpu_name, "compute_capability": compute_capability,
        "precision": precision, "profile": profile, "model": model, "preset": preset, "config_digest": config_digest,
        "dims": dict(dims), "onnx_sha256": onnx_sha256})




@dataclass(frozen=True)
class BuildSettings:
    builder_flags: tuple[str, ...]  # names of tensorrt.BuilderFlag members to set
    cleared_flags: tuple[str, ...] = ()  # and to clear (on by default)


def version_major(version: str) -> int:
    try:
        return int(str(version).split(".")[0])
    except ValueError:
        raise ConfigError(f"unrecognised TensorRT version {version!r}: expected MAJOR.MINOR.PATCH") from None


def build_settings(tensorrt_version: str, entry: Precision) -> BuildSettings:
    """How to build an engine that keeps the artifact's precision on this TensorRT version."""
    major = version_major(tensorrt_version)
    if major not in SUPPORTED_MAJORS:
        raise ConfigError(f"TensorRT {tensorrt_version}: expected 10.x or 11.x")
    if not entry.tensorrt:
        raise ConfigError(f"precision {entry.key!r} is made for {entry.target}, not TensorRT: expected one of "
                          f"{', '.join(k for k, p in PRECISIONS.items() if p.tensorrt)}")
    # 11.x builds every network strongly typed: the ONNX's types are the precision, no flags set
    return BuildSettings(entry.tensorrt_flags if major == 10 else (), entry.tensorrt_cleared_flags)


def unavailable_reason() -> str | None:
    """Why no engine can be built or run here, or None when TensorRT, the CUDA Python bindings
    (which the predictor and the sidecar check use) and a CUDA GPU are all present."""
    reason = tensorrt_missing()
    if reason:
        return reason
    try:
        cuda_runtime()
    except ConfigError as e:
        return str(e)
    import torch

    if not torch.cuda.is_available():
        return "no CUDA GPU is visible (TensorRT builds engines for the GPU it runs on)"
    return None


@dataclass(frozen=True)
class BuiltEngine:
    path: Path
    tensorrt_version: str
    gpu_name: str
    compute_capability: str


def build_engine(onnx_bytes: bytes, engine_path: Path, entry: Precision, profile: Profile,
                 dims: dict[str, int], timing_cache: Path, lengths: bool = False) -> BuiltEngine:
    """Parse the artifact, build a serialized engine for one profile, write it and the timing
    cache atomically. The caller writes the sidecar (mimic_edge.sidecar)."""
    require_tensorrt()
    import tensorrt as trt
    import torch

    settings = build_settings(trt.__version__, entry)
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # no flags: see the module doc
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_bytes):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ExportError(f"TensorRT {trt.__version__} could not parse the ONNX artifact: {errors}")

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    for flag in settings.builder_flags:
        config.set_flag(getattr(trt.BuilderFlag, flag))
    for flag in settings.cleared_flags:
        config.clear_flag(getattr(trt.BuilderFlag, flag))
    trt_profile = builder.create_optimization_profile()
    for name, (lo, opt, hi) in profile.shapes(dims, lengths).items():  # lengths: the graph's lengths inputs
        trt_profile.set_shape(name, trt.Dims(list(lo)), trt.Dims(list(opt)), trt.Dims(list(hi)))
    config.add_optimization_profile(trt_profile)
    cache = config.create_timing_cache(timing_cache.read_bytes() if timing_cache.is_file() else b"")
    if not config.set_timing_cache(cache, ignore_mismatch=False):  # made by another TensorRT or GPU: start afresh
        config.set_timing_cache(config.create_timing_cache(b""), ignore_mismatch=False)

    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise ExportError(f"TensorRT {trt.__version__} failed to build the engine (see its log above)")
    atomic_write_bytes(engine_path, bytes(plan))
    atomic_write_bytes(timing_cache, bytes(config.get_timing_cache().serialize()))
    major, minor = torch.cuda.get_device_capability()
    return BuiltEngine(engine_path, trt.__version__, torch.cuda.get_device_name(), f"{major}.{minor}")
