"""Timing and memory of one bench row.

Timing: `warmup` untimed calls, then `iters` timed calls, each followed by a CUDA synchronise on
CUDA; p50/p99 are nearest-rank percentiles of the per-call times. Memory: the peak RSS growth
of the process over set-up and runs on CPU (Linux, from /proc), the peak of torch's CUDA
allocator on CUDA.
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable

import torch


def time_runs(call: Callable[[], object], warmup: int, iters: int, device: str) -> list[float]:
    """Per-call latency in ms after `warmup` calls; synchronises CUDA around each call."""
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    for _ in range(warmup):
        call()
    sync()
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        call()
        sync()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def interleaved_runs(calls: dict[str, Callable[[], object]], warmup: int, rounds: int, iters: int,
                     device: str = "cpu") -> dict[str, list[float]]:
    """Per-call latencies in ms of several calls timed side by side: `warmup` calls of each, then
    `rounds` rounds in each of which every call runs `iters` times in turn, so that a change of
    load on a shared machine falls on all of them alike (the way to compare backends)."""
    for call in calls.values():
        time_runs(call, warmup, 0, device)
    times: dict[str, list[float]] = {key: [] for key in calls}
    for _ in range(rounds):
        for key, call in calls.items():
            times[key] += time_runs(call, 0, iters, device)
    return times


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in [0, 100]): the smallest value with at least q % of the values
    at or below it, so the rank is ceil(q/100 · n): p99 of 150 runs is the 149th value."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered) / 100))  # q·n/100 is exact when it is an integer
    return ordered[min(rank, len(ordered)) - 1]


class PeakMemory:
    """Peak memory growth over a block: RSS high-water mark on CPU, torch's allocator on CUDA."""

    def __init__(self, device: str):
        self.device = device
        self.mb: float | None = None

    def __enter__(self):
        if self.device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
        else:
            self.base = _reset_rss_peak()
        return self

    def __exit__(self, *exc):
        if self.device == "cuda":
            self.mb = (torch.cuda.max_memory_allocated() - self.base) / 2**20
        elif self.base is not None:
            peak = _proc_status_kb("VmHWM")
            self.mb = max(0, peak - self.base) / 1024 if peak is not None else None


def _proc_status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_rss_peak() -> int | None:
    """Reset the process's RSS high-water mark to its current RSS (Linux); return that RSS in kB."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return None  # not Linux, or not allowed: memory is reported as not measured
    return _proc_status_kb("VmRSS")
