"""`mimic-edge bench`: params, FLOPs, latency and memory of MIMIC vs MISA per backend (docs/design.md §7).

What is timed, for every backend alike: `Predictor.predict(text, audio, vision)`, the call a
user makes, on float32 numpy arrays in host memory, from the input checks to the numpy scores
(PyTorch backends through `TorchPredictor.from_model`, ONNX Runtime and TensorRT through
`mimic_edge.runtime.load` of the exported artifact; on CUDA the host↔device copies are in).
`warmup` untimed calls, then `iters` timed ones; p50/p99 are nearest-rank percentiles.

  config.py      BenchConfig, the backends by name (BACKENDS, BACKEND_NAMES), check_config;
                 light (no torch), so the CLI checks names before loading anything heavy
  backends.py    one set-up per kind of backend, BackendUnavailable, the artifact cache
  timing.py      time_runs, percentile, memory_in_use_mb
  run.py         run_bench, bench_row, resolve_device: the rows
  report.py      machine_info, to_markdown, write_csv, plot_latency
  efficiency.py  `--table efficiency`: the paper's Table 3 on this machine
  flops.py       FLOP counting (the rule is in its doc)

Importing this package is light: config.py's names are imported at once, the others load their
module (and torch) on first access.
"""
from __future__ import annotations

import importlib

from mimic_edge.bench.config import BACKEND_NAMES, BACKENDS, Backend, BenchConfig, check_config

_LAZY = {
    "run": ("run_bench", "bench_row", "resolve_device", "example_inputs"),
    "backends": ("BackendUnavailable", "Context", "TimedCall", "SETUPS", "artifact_dir", "exported"),
    "timing": ("time_runs", "percentile", "memory_in_use_mb"),
    "report": ("machine_info", "to_markdown", "write_csv", "plot_latency", "COLUMNS"),
}


def __getattr__(name: str):
    for module, names in _LAZY.items():
        if name in names:
            return getattr(importlib.import_module(f"{__name__}.{module}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["BACKEND_NAMES", "BACKENDS", "Backend", "BenchConfig", "check_config",
           *(name for names in _LAZY.values() for name in names)]
