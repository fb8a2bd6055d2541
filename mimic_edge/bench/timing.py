"""Timing and memory of one bench row.

Timing: `warmup` untimed calls, then `iters` timed calls, each followed by a CUDA synchronise on
CUDA; p50/p99 are nearest-rank percentiles of the per-call times. Memory (`memory_in_use_mb`):
what the process holds, measured the same way for every backend, so that a row can say what
its loaded artifact holds and how much a call adds (mimic_edge.bench.run).
"""
from __future__ import annotations

import ctypes
import functools
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


def memory_in_use_mb(device: str) -> float | None:
    """The memory this process holds, in MB, for set-up and per-call differences. CPU: what its
    allocations hold (glibc's mallinfo2: bytes in use, whoever allocated them: ONNX Runtime,
    torch, numpy), which memory freed and reused does not blur as RSS does; RSS elsewhere. CUDA:
    the device's memory in use (cudaMemGetInfo, through torch): TensorRT's, ONNX Runtime's and
    torch's alike, torch's cache emptied first so that it counts what is held. None: not measurable here."""
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        free, total = torch.cuda.mem_get_info()
        return (total - free) / 2**20
    held = _malloc_in_use()
    if held is not None:
        return held / 2**20
    rss_kb = _proc_status_kb("VmRSS")
    return rss_kb / 1024 if rss_kb is not None else None


class _MallInfo2(ctypes.Structure):  # glibc ≥ 2.33, malloc.h
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                      "fsmblks", "uordblks", "fordblks", "keepcost")]


@functools.cache
def _mallinfo2():
    try:
        function = ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError):  # not glibc, or older than 2.33
        return None
    function.restype = _MallInfo2
    return function


def _malloc_in_use() -> int | None:
    """Bytes allocated and not freed, over every malloc arena: chunks in use plus mmapped ones."""
    function = _mallinfo2()
    if function is None:
        return None
    info = function()
    return info.uordblks + info.hblkhd


def _proc_status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None
