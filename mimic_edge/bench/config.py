"""What a bench is asked to measure: `BenchConfig`, the backends by name, and the checks.

Light (no torch): the CLI checks names with `check_config` before anything heavy is imported.
Backend names come from the registries, not from spelling: `ort-<key>` for every entry of
`mimic_edge.export.precisions.PRECISIONS`, `trt-<key>` for every entry made for TensorRT; models
from `mimic_edge.config.MODEL_NAMES`, presets from `mimic_edge.config.PRESETS`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from mimic_edge.config import DEFAULT_PRESET, MODEL_NAMES, PRESETS
from mimic_edge.errors import ConfigError
from mimic_edge.export.precisions import DEFAULT_PRECISION, PRECISIONS

DEVICES = ("auto", "cpu", "cuda")  # auto: cuda when torch sees a GPU


@dataclass(frozen=True)
class Backend:
    """One way of running a model, a row kind of the bench table."""

    name: str  # what --backends takes; the rows' "backend"
    setup: str  # its set-up function: a key of mimic_edge.bench.backends.SETUPS
    precision: str = DEFAULT_PRECISION  # the rows' "precision"
    artifact: str | None = None  # the exported artifact it runs: a key of PRECISIONS


# In the order a run plans them, cheapest set-up first (the bench runs every model's rows of a backend
# before the next backend): a time budget spent on compiles and engine builds leaves the rest.
BACKENDS: dict[str, Backend] = {b.name: b for b in (
    Backend("eager", "eager"),
    *(Backend(f"ort-{key}", "ort", p.name, key) for key, p in PRECISIONS.items()),
    Backend("triton", "triton"),  # MIMIC on its Triton kernels (BiLSTM encoders, fused head), CUDA
    Backend("compile", "compile"),
    Backend("aoti", "aoti"),  # AOTInductor package (.pt2) for the bench's device; on CUDA with the fused head
    *(Backend(f"trt-{key}", "tensorrt", p.name, key) for key, p in PRECISIONS.items() if p.tensorrt),
    Backend("torch-tensorrt", "torch-tensorrt", "fp16"),  # torch-tensorrt's own setting, not an artifact
)}
BACKEND_NAMES = tuple(BACKENDS)  # in table order
# `mimic-edge bench` without --all: the fastest backends of each kind a machine may have (a minute or
# so on a 2-core CPU at batch 1 and 8); those the machine lacks are listed as skipped.
QUICK_BACKENDS = ("eager", "ort-fp32", "ort-int8-cpu", "triton", "trt-fp16")
QUICK_BATCH_SIZES = (1, 8)


@dataclass
class BenchConfig:
    models: tuple[str, ...] = MODEL_NAMES
    presets: tuple[str, ...] = (DEFAULT_PRESET,)
    backends: tuple[str, ...] | None = None  # None: every backend, unavailable ones skipped
    batch_sizes: tuple[int, ...] = (1, 8, 64)
    seq_len: int | None = None  # None: the preset's
    warmup: int = 10
    iters: int = 100  # timed runs per row; p99 needs about 100
    threads: int | None = None  # intra-op threads for torch and ONNX Runtime; None: their defaults
    device: str = "auto"  # one of DEVICES
    seed: int = 0
    cache_dir: str = ".cache/mimic-edge"  # exported artifacts, reused across runs
    verbose: bool = False  # a failed row's traceback on stderr (otherwise its one-line error)


def check_config(cfg: BenchConfig) -> None:
    """A ConfigError naming the first bad field, before any model is built."""
    _check_names("model", cfg.models, MODEL_NAMES)
    _check_names("preset", cfg.presets, PRESETS)
    if cfg.backends is not None:
        _check_names("backend", cfg.backends, BACKENDS)
    if cfg.device not in DEVICES:
        raise ConfigError(f"device must be one of {', '.join(DEVICES)}, got {cfg.device!r}")
    if not cfg.batch_sizes or min(cfg.batch_sizes) < 1:
        raise ConfigError(f"batch sizes must be positive integers, got {list(cfg.batch_sizes)}")
    if cfg.iters < 1 or cfg.warmup < 0:
        raise ConfigError(f"iters must be >= 1 and warmup >= 0, got iters={cfg.iters}, warmup={cfg.warmup}")
    if cfg.seq_len is not None and cfg.seq_len < 1:
        raise ConfigError(f"seq_len must be >= 1, got {cfg.seq_len}")
    if cfg.threads is not None and cfg.threads < 1:
        raise ConfigError(f"threads must be >= 1, got {cfg.threads}")
    _check_inputs_fit(cfg)


def _check_inputs_fit(cfg: BenchConfig) -> None:
    """The largest batch's inputs must fit in this machine's memory: a row holds them as numpy
    arrays and as the backend's copy, and the model's activations come on top."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not a POSIX system: no check
        return
    batch = max(cfg.batch_sizes)
    for name in cfg.presets:
        preset = PRESETS[name]
        needed = 2 * batch * (cfg.seq_len or preset.seq_len) * sum(preset.dims.values()) * 4  # float32, two copies
        if needed > memory / 2:
            raise ConfigError(f"batch size {batch} needs {needed / 2**30:.3g} GiB of inputs (preset {name}), this "
                              f"machine has {memory / 2**30:.3g} GiB: expected a batch size whose inputs take at most "
                              "half of it")


def _check_names(kind: str, names, valid) -> None:
    if not names:
        raise ConfigError(f"no {kind} given: expected one or more of {', '.join(valid)}")
    for name in names:
        if name not in valid:
            raise ConfigError(f"unknown {kind} {name!r}: expected some of {', '.join(valid)}")
