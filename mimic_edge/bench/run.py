"""The rows: one per preset × backend × model × batch size (docs/design.md §7).

Per row: the backend's set-up (mimic_edge.bench.backends) on seeded random inputs, then its
`Predictor.predict` timed (mimic_edge.bench.timing); what the loaded artifact holds and what a call adds
measured the same way for every backend.
Params and FLOPs are the PyTorch model's, counted once per model and preset.

Every row is kept, whatever happens to the others: a backend this machine lacks is
`skipped: <reason>`, one that raises is `failed: <error>` (one line on stderr; its traceback too
with `verbose`), and
once a time budget is spent the rows left are `skipped` with that reason. `run_bench` hands
the rows to `on_row` after each one, so a caller can save them as they come (the CLI rewrites
its JSON): a run killed from outside keeps every row it finished.
"""
from __future__ import annotations

import gc
import math
import statistics
import sys
import time
import traceback
from typing import Callable

import numpy as np
import torch

from mimic_edge.bench.backends import SETUPS, BackendUnavailable, Context, artifact_dir
from mimic_edge.bench.config import BACKENDS, BenchConfig, check_config
from mimic_edge.bench.flops import flops_breakdown
from mimic_edge.bench.timing import memory_in_use_mb, percentile, time_runs
from mimic_edge.config import get_preset
from mimic_edge.errors import ConfigError
from mimic_edge.models import build_model

PARTS = ("encoders", "fusion", "head")  # FLOPs per sample, by part (mimic_edge.bench.flops)
MAX_ERROR_CHARS = 300  # a row's `failed: ...` keeps the error's first line, this long at most


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


def error_text(e: BaseException) -> str:
    """`Type: first line of the message`, short enough for a table cell."""
    lines = str(e).strip().splitlines()
    text = f"{type(e).__name__}: {lines[0]}" if lines else type(e).__name__
    return text if len(text) <= MAX_ERROR_CHARS else text[:MAX_ERROR_CHARS - 1] + "…"


def _log_failure(what: str, e: BaseException, verbose: bool) -> None:
    """One line on stderr; the traceback too when `verbose` (a failed row is its own, not a crash)."""
    print(f"bench: {what} failed: {error_text(e)}", file=sys.stderr, flush=True)
    if verbose:
        traceback.print_exception(type(e), e, e.__traceback__, file=sys.stderr)


def model_static(name: str, preset: str, seq_len: int, cfg: BenchConfig) -> dict:
    """What every row of (model, preset) shares: the model, its params, FLOPs per sample by part
    and artifact folder; {"error": text} when the model cannot even be built or counted."""
    try:
        torch.manual_seed(cfg.seed)
        model = build_model(name, preset).eval()
        flops = flops_breakdown(model, *example_inputs(model.config, 1, seq_len, cfg.seed))
        return {"model": model, "params": model.num_params(), "flops": flops,
                "artifact_dir": artifact_dir(model, name, preset, cfg.cache_dir)}
    except Exception as e:
        _log_failure(f"{name} {preset}", e, cfg.verbose)
        return {"error": error_text(e)}


def base_row(name: str, preset: str, backend: str, batch: int, seq_len: int, cfg: BenchConfig, device: str,
             static: dict) -> dict:
    """A row's identity and the model's counts, measurements empty."""
    flops = static.get("flops")
    return dict(model=name, preset=preset, backend=backend, precision=BACKENDS[backend].precision, device=device,
                batch_size=batch, seq_len=seq_len, threads=cfg.threads or torch.get_num_threads(),
                params=static.get("params"), flops=flops["total"] * batch if flops else None,
                **{f"flops_{part}_per_sample": flops[part] if flops else None for part in PARTS},
                p50_ms=None, p99_ms=None, throughput=None, loaded_mb=None, growth_kb_per_call=None, artifact_bytes=None,
                note="")


def bench_row(name: str, preset: str, backend: str, batch: int, seq_len: int, cfg: BenchConfig,
              device: str, static: dict) -> dict:
    """Set up one backend for one batch size and time it; `static`: see `model_static`. Never
    raises for the backend's sake: its row says `skipped: <reason>` or `failed: <error>`."""
    row = base_row(name, preset, backend, batch, seq_len, cfg, device, static)
    if "error" in static:
        return {**row, "status": f"failed: {static['error']}"}
    model = static["model"]
    entry = BACKENDS[backend]
    ctx = Context(name, preset, device, cfg.threads, static["artifact_dir"], cfg.seed, entry,
                  max_batch=max(cfg.batch_sizes), export_failures=static.setdefault("export_failures", {}))
    # what a user hands to predict: float32 numpy arrays in host memory
    inputs: list[np.ndarray] = [x.numpy() for x in example_inputs(model.config, batch, seq_len, cfg.seed)]
    try:
        timed, times, loaded_mb, growth = _set_up_and_time(model, inputs, ctx, cfg, device, static)
    except BackendUnavailable as e:
        return {**row, "status": f"skipped: {e}"}
    except Exception as e:  # one backend's failure (a build error, out of memory...) is its row's alone
        _log_failure(f"{name} {preset} {backend} batch {batch}", e, cfg.verbose)
        if device == "cuda":
            torch.cuda.empty_cache()
        return {**row, "status": f"failed: {error_text(e)}"}
    p50 = statistics.median(times)
    return {**row, "p50_ms": p50, "p99_ms": percentile(times, 99), "throughput": batch / p50 * 1e3,
            "loaded_mb": loaded_mb, "growth_kb_per_call": growth, "artifact_bytes": timed.artifact_bytes,
            "note": timed.note, "status": "ok"}


def _set_up_and_time(model, inputs, ctx: Context, cfg: BenchConfig, device: str, static: dict):
    """(the set-up, the timed calls' ms, MB the loaded artifact holds, KB a timed call adds).

    Memory is measured the same way for every backend (mimic_edge.bench.timing.memory_in_use_mb).
    A backend's first set-up in a run (per model) is a warm-up, discarded: it imports libraries,
    exports or compiles into the cache, which is not what a loaded artifact holds. Growth per call
    is over the timed calls, after the warm-up calls (lazy initialisation, arenas sized)."""
    setup = SETUPS[ctx.backend.setup]
    warmed = static.setdefault("warmed", set())
    if ctx.backend.name not in warmed:
        setup(model, inputs, ctx)
        gc.collect()
        warmed.add(ctx.backend.name)
    before = memory_in_use_mb(device)
    timed = setup(model, inputs, ctx)
    loaded = memory_in_use_mb(device)
    time_runs(timed.call, cfg.warmup, 0, device)
    steady = memory_in_use_mb(device)
    times = time_runs(timed.call, 0, cfg.iters, device)
    after = memory_in_use_mb(device)
    loaded_mb = loaded - before if None not in (loaded, before) else None
    growth = (after - steady) * 1024 / cfg.iters if None not in (after, steady) else None
    return timed, times, loaded_mb, growth


def run_bench(cfg: BenchConfig, progress: bool = False, on_row: Callable[[list[dict]], None] | None = None,
              budget_s: float | None = None) -> list[dict]:
    """One row per preset × backend × model × batch size, in that order: every model gets its rows
    of the cheap backends (eager, ONNX Runtime) before any model's costly ones (engine builds,
    compiles), so a budget spent by one model's engines still leaves the others' rows. `on_row(rows)` after each
    row; rows that would start after `budget_s` seconds are skipped (a row under way finishes)."""
    check_config(cfg)
    if budget_s is not None and not 0 < budget_s < math.inf:  # nan and inf too
        raise ConfigError(f"budget must be a positive number of seconds, got {budget_s}")
    device = resolve_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    backends = cfg.backends or tuple(BACKENDS)
    plan = [(p, m, b, n) for p in cfg.presets for b in backends for m in cfg.models for n in cfg.batch_sizes]
    deadline = time.monotonic() + budget_s if budget_s is not None else None
    rows: list[dict] = []
    static: dict[tuple[str, str], dict] = {}
    bar = _progress(plan, progress)
    for preset, name, backend, batch in bar:
        seq_len = cfg.seq_len or get_preset(preset).seq_len
        if deadline is not None and time.monotonic() > deadline:
            row = base_row(name, preset, backend, batch, seq_len, cfg, device, static.get((preset, name), {}))
            rows.append({**row, "status": f"skipped: the bench's time budget ({budget_s:g} s) was spent"})
        else:
            if hasattr(bar, "set_postfix_str"):
                bar.set_postfix_str(f"{name} {preset} {backend} batch {batch}")
            if (preset, name) not in static:
                static[(preset, name)] = model_static(name, preset, seq_len, cfg)
            rows.append(bench_row(name, preset, backend, batch, seq_len, cfg, device, static[(preset, name)]))
        if on_row is not None:
            on_row(rows)
    return rows


def _progress(plan: list, progress: bool):
    """A tqdm bar over `plan` when asked for and tqdm is installed (a bare GPU image may lack it)."""
    if not progress:
        return plan
    try:
        from tqdm import tqdm
    except ImportError:
        return plan
    return tqdm(plan, desc="bench", unit="row", leave=False)
