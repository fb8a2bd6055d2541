"""What an export is asked to do: `ExportConfig` and its checks. Light (no torch, no onnx), so
that the CLI builds its parser and checks options without loading the export's dependencies."""
from __future__ import annotations

from dataclasses import dataclass

from mimic_edge.config import DEFAULT_MODEL, MODEL_NAMES
from mimic_edge.errors import ConfigError
from mimic_edge.export.formats import MODEL_FORMATS, get_format
from mimic_edge.export.precisions import DEFAULT_PRECISION, DEFAULT_TARGET, Precision, find_precision

DEFAULT_CALIB_SAMPLES = 256  # min/max calibration: a few hundred samples settle every range
DEFAULT_VALID_SAMPLES = 229  # CMU-MOSI's validation split size
FORMATS = MODEL_FORMATS  # what --format takes: mimic_edge.export.formats
DEVICES = ("cpu", "cuda")  # what a pt2 package is compiled for (an ONNX artifact runs on either)


@dataclass(frozen=True)
class ExportConfig:
    model: str | None = None  # one of MODEL_NAMES; None: the checkpoint's, else DEFAULT_MODEL
    precision: str = DEFAULT_PRECISION  # a precision name of mimic_edge.export.precisions.PRECISIONS
    target: str = DEFAULT_TARGET  # the runtime the artifact is made for: with `precision`, one registry entry
    checkpoint: str | None = None  # None: freshly initialised weights (seeded), for trying the pipeline
    preset: str | None = None  # None: the checkpoint's, else the default preset
    calib_data: str = "synthetic"  # "synthetic" or an MMSA .pkl / .npz file (train split: calibration)
    calib_samples: int = DEFAULT_CALIB_SAMPLES
    valid_samples: int = DEFAULT_VALID_SAMPLES  # validation split samples used (all when fewer)
    batch: str = "1:1:64"  # MIN:OPT:MAX: the TensorRT profile, or the pt2 package's dynamic batch range
    seq: str | None = None  # MIN:OPT:MAX for every modality (TensorRT profile, pt2 ranges); None: 1:L:2L
    opset: int = 17
    engine: bool = False  # also build a TensorRT engine (needs tensorrt and a CUDA GPU)
    out: str = "artifacts"
    seed: int = 0  # fresh weights and the synthetic data
    force: bool = False  # replace an artifact of another model or config under the same name
    format: str = "onnx"  # one of FORMATS (mimic_edge.export.formats)
    lengths: bool = False  # ONNX inputs for per-sample valid lengths (LENGTHS_INPUTS): padded batches score as alone
    device: str = "cpu"  # one of DEVICES: what a pt2 package is compiled for, or a Triton model's instances run on
    # --format triton (mimic_edge.export.triton): the model repository's serving settings
    instances: int = 1  # model instances per device
    max_queue_delay_us: int = 100  # the dynamic batcher's wait to fill a batch
    accelerator: str | None = None  # "tensorrt": ONNX Runtime's TensorRT execution accelerator (GPU)
    model_version: int = 1  # the repository's version folder


def model_of(config: ExportConfig) -> str:
    """The model to export: --model, else the checkpoint's (like the preset), else DEFAULT_MODEL."""
    if config.model is not None:
        return config.model
    if config.checkpoint is None:
        return DEFAULT_MODEL
    from mimic_edge.checkpoint import read_checkpoint_meta

    return read_checkpoint_meta(config.checkpoint)["model"]


def check_options(config: ExportConfig) -> Precision:
    """The options that need no model or data; a ConfigError naming the first bad one. Returns
    the registry entry of the precision and target."""
    if config.model is not None and config.model not in MODEL_NAMES:
        raise ConfigError(f"unknown model {config.model!r}: expected one of {', '.join(MODEL_NAMES)}")
    entry = find_precision(config.precision, config.target)
    if config.engine and not entry.tensorrt:
        raise ConfigError(f"--engine builds TensorRT engines, but {entry.key} artifacts are made for target "
                          f"{entry.target}: expected --target {DEFAULT_TARGET} (the default) with --engine")
    get_format(config.format)
    if config.device not in DEVICES:
        raise ConfigError(f"unknown device {config.device!r}: expected one of {', '.join(DEVICES)}")
    if config.lengths and not entry.batch_independent:
        raise ConfigError(f"--lengths: {entry.key} quantizes activations with scales computed over the whole batch, "
                          "padding included, so a padded batch cannot score each sample as alone: expected "
                          "--precision fp32, fp16 or int8 (TensorRT's static scales)")
    if config.format == "pt2":
        if entry.key != DEFAULT_PRECISION:
            raise ConfigError(f"--format pt2 compiles the fp32 model (AOTInductor has no fp16/int8 path here): "
                              f"expected --precision {DEFAULT_PRECISION} (the default), found {entry.key}")
        if config.engine:
            raise ConfigError("--engine builds a TensorRT engine from an ONNX artifact: expected --format onnx "
                              "(the default) with --engine, found --format pt2")
    elif config.format == "triton":
        _check_triton(config, entry)
    elif config.device != "cpu":
        raise ConfigError(f"--device {config.device} chooses what a pt2 package is compiled for or a Triton model "
                          f"runs on: expected --format pt2 or triton with --device, found --format {config.format} "
                          "(ONNX artifacts run on any device)")
    for field in ("calib_samples", "valid_samples"):
        value = getattr(config, field)
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"{field} must be a positive integer, found {value!r}")
    return entry


def _check_triton(config: ExportConfig, entry: Precision) -> None:
    """A repository whose server would run the artifact by other arithmetic than it was judged by
    is refused: an artifact is judged by its target (mimic_edge.export.precisions)."""
    from mimic_edge.export.triton import ACCELERATORS

    if config.engine and config.device != "cuda":
        raise ConfigError("--engine with --format triton adds the engine as a tensorrt_plan model, which runs on GPU "
                          f"instances: expected --device cuda, found --device {config.device}")
    if config.accelerator is not None and config.accelerator not in ACCELERATORS:
        raise ConfigError(f"unknown accelerator {config.accelerator!r}: expected one of {', '.join(ACCELERATORS)}")
    if config.accelerator and config.device != "cuda":
        raise ConfigError(f"--accelerator {config.accelerator} runs on a GPU: expected --device cuda, found "
                          f"--device {config.device}")
    if entry.qdq and config.accelerator != "tensorrt":
        raise ConfigError(f"{entry.key} (Q/DQ for TensorRT) is judged by TensorRT's int8 arithmetic, which Triton's "
                          "onnxruntime backend gives only through TensorRT: expected --device cuda --accelerator "
                          "tensorrt, or --target cpu for CPU instances")
    if entry.target == "cpu" and config.device != "cpu":
        raise ConfigError(f"{entry.key} is made for ONNX Runtime's CPU integer kernels: expected --device cpu, "
                          f"found --device {config.device}")
    for field, least in (("instances", 1), ("max_queue_delay_us", 0), ("model_version", 1)):
        value = getattr(config, field)
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            raise ConfigError(f"{field} must be an integer >= {least}, found {value!r}")
