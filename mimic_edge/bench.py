"""`mimic-edge bench`: params, FLOPs and latency of MIMIC vs MISA per backend (DESIGN §7).

A backend is one `setup_<name>(model, inputs, device)` function that returns a callable
running one forward pass, or raises `BackendUnavailable(reason)`; the row then says
`skipped: <reason>`, never a number. Adding a backend is adding one function to BACKENDS.
"""
from __future__ import annotations

import platform
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from mimic_edge.config import DEFAULT_PRESET, get_preset
from mimic_edge.errors import ConfigError
from mimic_edge.flops import count_flops
from mimic_edge.models import build_model


class BackendUnavailable(Exception):
    """This machine cannot run the backend; the message is the reason shown in the table."""


@dataclass
class BenchConfig:
    models: tuple[str, ...] = ("mimic", "misa")
    presets: tuple[str, ...] = (DEFAULT_PRESET,)
    backends: tuple[str, ...] = ("eager",)
    batch_sizes: tuple[int, ...] = (1, 64)
    seq_len: int | None = None  # None: the preset's
    warmup: int = 10
    iters: int = 100  # timed runs per row; p99 needs about 100
    threads: int | None = None  # torch intra-op threads; None: torch's default
    device: str = "cpu"
    seed: int = 0


def setup_eager(model, inputs, device) -> Callable[[], object]:
    model = model.to(device).eval()
    inputs = [x.to(device) for x in inputs]

    def run():
        with torch.inference_mode():
            return model(*inputs)

    return run


BACKENDS: dict[str, tuple[str, Callable]] = {  # name → (precision, setup)
    "eager": ("fp32", setup_eager),
}


def time_runs(run: Callable[[], object], warmup: int, iters: int, device: str) -> list[float]:
    """Per-call latency in ms after `warmup` calls; synchronises CUDA around each call."""
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    for _ in range(warmup):
        run()
    sync()
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        run()
        sync()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in [0, 100])."""
    ordered = sorted(values)
    rank = max(1, round(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def example_inputs(config, batch: int, seq_len: int, seed: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, seq_len, d, generator=gen) for d in config.dims.values()]


def check_config(cfg: BenchConfig) -> None:
    for name in cfg.backends:
        if name not in BACKENDS:
            raise ConfigError(f"unknown backend {name!r}: expected some of {', '.join(BACKENDS)}")
    for preset in cfg.presets:
        get_preset(preset)
    if not cfg.batch_sizes or min(cfg.batch_sizes) < 1:
        raise ConfigError(f"batch sizes must be positive integers, got {list(cfg.batch_sizes)}")
    if cfg.iters < 1 or cfg.warmup < 0:
        raise ConfigError(f"iters must be >= 1 and warmup >= 0, got iters={cfg.iters}, warmup={cfg.warmup}")
    if cfg.seq_len is not None and cfg.seq_len < 1:
        raise ConfigError(f"seq_len must be >= 1, got {cfg.seq_len}")


def run_bench(cfg: BenchConfig, progress: Callable[[str], None] | None = None) -> list[dict]:
    """One row per model × preset × backend × batch size."""
    check_config(cfg)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    rows = []
    for preset in cfg.presets:
        seq_len = cfg.seq_len or get_preset(preset).seq_len
        for name in cfg.models:
            torch.manual_seed(cfg.seed)
            model = build_model(name, preset).eval()
            params = model.num_params()
            flops_per_sample = count_flops(model, *example_inputs(model.config, 1, seq_len, cfg.seed))
            for backend in cfg.backends:
                precision, setup = BACKENDS[backend]
                for batch in cfg.batch_sizes:
                    if progress:
                        progress(f"{name} {preset} {backend} batch {batch}")
                    row = dict(model=name, preset=preset, backend=backend, precision=precision,
                               device=cfg.device, batch_size=batch, seq_len=seq_len, params=params,
                               flops=flops_per_sample * batch, threads=torch.get_num_threads())
                    inputs = example_inputs(model.config, batch, seq_len, cfg.seed)
                    try:
                        run = setup(model, inputs, cfg.device)
                    except BackendUnavailable as e:
                        rows.append({**row, "p50_ms": None, "p99_ms": None, "throughput": None,
                                     "status": f"skipped: {e}"})
                        continue
                    times = time_runs(run, cfg.warmup, cfg.iters, cfg.device)
                    p50 = statistics.median(times)
                    rows.append({**row, "p50_ms": p50, "p99_ms": percentile(times, 99),
                                 "throughput": batch / p50 * 1e3, "status": "ok"})
    return rows


def machine_info() -> dict:
    return {
        "machine": platform.processor() or platform.machine(),
        "cpu_count": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d"),
    }


COLUMNS = [("model", "model"), ("preset", "preset"), ("backend", "backend"), ("precision", "prec"),
           ("batch_size", "batch"), ("params", "params"), ("flops", "MFLOPs"), ("p50_ms", "p50 ms"),
           ("p99_ms", "p99 ms"), ("throughput", "samples/s"), ("status", "status")]


def _cell(key: str, value) -> str:
    if value is None:
        return "–"
    if key == "params":
        return f"{value:,}"
    if key == "flops":
        return f"{value / 1e6:.2f}"
    if key in ("p50_ms", "p99_ms"):
        return f"{value:.3f}"
    if key == "throughput":
        return f"{value:,.0f}"
    return str(value)


def to_markdown(rows: list[dict], columns=COLUMNS) -> str:
    lines = ["| " + " | ".join(title for _, title in columns) + " |",
             "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(_cell(key, row.get(key)) for key, _ in columns) + " |" for row in rows]
    return "\n".join(lines)
