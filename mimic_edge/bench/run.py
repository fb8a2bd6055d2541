"""The rows: one per preset × model × backend × batch size (DESIGN §7).

Per row: the backend's set-up (mimic_edge.bench.backends) on seeded random inputs, then its
`Predictor.predict` timed (mimic_edge.bench.timing), memory watched over set-up and runs.
Params and FLOPs are the PyTorch model's, counted once per model and preset.
"""
from __future__ import annotations

import statistics

import numpy as np
import torch

from mimic_edge.bench.backends import SETUPS, BackendUnavailable, Context, artifact_dir
from mimic_edge.bench.config import BACKENDS, BenchConfig, check_config
from mimic_edge.bench.flops import flops_breakdown
from mimic_edge.bench.timing import PeakMemory, percentile, time_runs
from mimic_edge.config import get_preset
from mimic_edge.errors import ConfigError
from mimic_edge.models import build_model


def example_inputs(config, batch: int, seq_len: int, seed: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, seq_len, d, generator=gen) for d in config.dims.values()]


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda"):
        raise ConfigError(f"device must be auto, cpu or cuda, got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device cuda requested, but torch sees no CUDA GPU")
    return device


def bench_row(name: str, preset: str, backend: str, batch: int, seq_len: int, cfg: BenchConfig,
              device: str, static: dict) -> dict:
    """Set up one backend for one batch size and time it; `static`: the model, its params,
    FLOPs per sample and artifact folder."""
    model = static["model"]
    entry = BACKENDS[backend]
    row = dict(model=name, preset=preset, backend=backend, precision=entry.precision, device=device,
               batch_size=batch, seq_len=seq_len, threads=cfg.threads or torch.get_num_threads(),
               params=static["params"], flops=static["flops"]["total"] * batch,
               **{f"flops_{part}_per_sample": static["flops"][part] for part in ("encoders", "fusion", "head")},
               p50_ms=None, p99_ms=None,
               throughput=None, peak_mem_mb=None, artifact_bytes=None, note="")
    ctx = Context(name, preset, device, cfg.threads, static["artifact_dir"], cfg.seed, entry)
    # what a user hands to predict: float32 numpy arrays in host memory
    inputs: list[np.ndarray] = [x.numpy() for x in example_inputs(model.config, batch, seq_len, cfg.seed)]
    try:
        with PeakMemory(device) as memory:
            timed = SETUPS[entry.setup](model, inputs, ctx)
            times = time_runs(timed.call, cfg.warmup, cfg.iters, device)
    except BackendUnavailable as e:
        return {**row, "status": f"skipped: {e}"}
    p50 = statistics.median(times)
    return {**row, "p50_ms": p50, "p99_ms": percentile(times, 99), "throughput": batch / p50 * 1e3,
            "peak_mem_mb": memory.mb, "artifact_bytes": timed.artifact_bytes, "note": timed.note,
            "status": "ok"}


def run_bench(cfg: BenchConfig, progress: bool = False) -> list[dict]:
    """One row per preset × model × backend × batch size, in that order."""
    from tqdm import tqdm

    check_config(cfg)
    device = resolve_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    backends = cfg.backends or tuple(BACKENDS)
    plan = [(p, m, b, n) for p in cfg.presets for m in cfg.models for b in backends for n in cfg.batch_sizes]
    rows, static = [], {}
    bar = tqdm(plan, desc="bench", unit="row", disable=not progress, leave=False)
    for preset, name, backend, batch in bar:
        bar.set_postfix_str(f"{name} {preset} {backend} batch {batch}")
        seq_len = cfg.seq_len or get_preset(preset).seq_len
        if (preset, name) not in static:
            torch.manual_seed(cfg.seed)
            model = build_model(name, preset).eval()
            flops = flops_breakdown(model, *example_inputs(model.config, 1, seq_len, cfg.seed))
            static[(preset, name)] = {"model": model, "params": model.num_params(), "flops": flops,
                                      "artifact_dir": artifact_dir(model, name, preset, cfg.cache_dir)}
        s = static[(preset, name)]
        rows.append(bench_row(name, preset, backend, batch, seq_len, cfg, device, s))
    return rows
