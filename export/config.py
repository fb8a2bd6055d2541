"""What an export is asked to do: `ExportConfig` and its checks. Light (no torch, no onnx), so
that the CLI builds its parser and checks options without loading the export's dependencies."""
from __future__ import annotations

from dataclasses import dataclass

from mimic_edge.config import DEFAULT_MODEL, MODEL_NAMES
from mimic_edge.errors import ConfigError
from mimic_edge.export.formats import DEFAULT_PRECISION, DEFAULT_TARGET, Precision, find_precision

DEFAULT_CALIB_SAMPLES = 256  # min/max calibration: a few hundred samples settle every range
DEFAULT_VALID_SAMPLES = 229  # CMU-MOSI's validation split size


@dataclass(frozen=True)
class ExportConfig:
    model: str = DEFAULT_MODEL  # one of MODEL_NAMES; must match the checkpoint's when one is given
    precision: str = DEFAULT_PRECISION  # a precision name of mimic_edge.export.formats.PRECISIONS
    target: str = DEFAULT_TARGET  # the runtime the artifact is made for: with `precision`, one registry entry
    checkpoint: str | None = None  # None: freshly initialised weights (seeded), for trying the pipeline
    preset: str | None = None  # None: the checkpoint's, else the default preset
    calib_data: str = "synthetic"  # "synthetic" or an MMSA .pkl / .npz file (train split: calibration)
    calib_samples: int = DEFAULT_CALIB_SAMPLES
    valid_samples: int = DEFAULT_VALID_SAMPLES  # validation split samples used (all when fewer)
    batch: str = "1:1:64"  # TensorRT profile MIN:OPT:MAX
    seq: str | None = None  # TensorRT profile MIN:OPT:MAX for every modality; None: 1:L:2L
    opset: int = 17
    engine: bool = False  # also build a TensorRT engine (needs tensorrt and a CUDA GPU)
    out: str = "artifacts"
    seed: int = 0  # fresh weights and the synthetic data


def check_options(config: ExportConfig) -> Precision:
    """The options that need no model or data; a ConfigError naming the first bad one. Returns
    the registry entry of the precision and target."""
    if config.model not in MODEL_NAMES:
        raise ConfigError(f"unknown model {config.model!r}: expected one of {', '.join(MODEL_NAMES)}")
    entry = find_precision(config.precision, config.target)
    if config.engine and not entry.tensorrt:
        raise ConfigError(f"--engine builds TensorRT engines, but {entry.key} artifacts are made for target "
                          f"{entry.target}: expected --target {DEFAULT_TARGET} (the default) with --engine")
    for field in ("calib_samples", "valid_samples"):
        value = getattr(config, field)
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"{field} must be a positive integer, found {value!r}")
    return entry
