"""`mimic-edge bench`: params, FLOPs, latency and memory of MIMIC vs MISA on every backend
this machine has; unavailable backends are listed as skipped, with the reason.

Exit status: 0 when every row is ok or skipped; 3 when a row failed (the table, JSON and CSV
still hold every row); 1 for a bad option or an error that stops the run."""
from __future__ import annotations

import math
import os
import sys
import textwrap
from pathlib import Path

from mimic_edge.bench.config import (BACKEND_NAMES, DEVICES, QUICK_BACKENDS, QUICK_BATCH_SIZES, BenchConfig,
                                     check_config)
from mimic_edge.cli._common import EXAMPLES_HELP, int_list, str_list
from mimic_edge.config import MODEL_NAMES, PRESETS
from mimic_edge.errors import ConfigError
from mimic_edge.io import check_writable, check_writable_file

DEFAULTS = BenchConfig()
FAILED_ROWS = 3  # the exit status of a run with failed rows


class _Help(EXAMPLES_HELP):
    """Wraps help at spaces only, so that names such as mosi-bert stay whole."""

    def _split_lines(self, text, width):
        return textwrap.wrap(text, width, break_on_hyphens=False)

EXAMPLES = """examples:
  mimic-edge bench                                   # quick: the fastest backends, preset mosi, batch 1, 8
  mimic-edge bench --all                             # every backend, batch 1, 8, 64
  mimic-edge bench --presets mosi,mosi-bert --backends eager,ort-fp32 --json bench.json --csv bench.csv
  mimic-edge bench --batch-sizes 1,16,256 --plot latency.png
  mimic-edge bench --device cuda --budget-s 120 --json bench.json   # rows left after 2 minutes: skipped
  mimic-edge bench --table efficiency --train-log runs/mimic,runs/misa
  mimic-edge bench --table efficiency --presets mosi,mosi-bert --train   # trains on the synthetic set first
"""


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="params, FLOPs, latency and memory of MIMIC vs MISA per backend",
                       description=__doc__, epilog=EXAMPLES, formatter_class=_Help)
    what = p.add_argument_group("what to measure")
    what.add_argument("--models", type=str_list, default=DEFAULTS.models, metavar="NAME[,NAME]",
                      help=f"comma-separated, some of: {_names(MODEL_NAMES)} (default: {_names(DEFAULTS.models)})")
    what.add_argument("--presets", type=str_list, default=DEFAULTS.presets, metavar="NAME[,NAME]",
                      help=f"comma-separated, some of: {_names(PRESETS)} (default: {_names(DEFAULTS.presets)})")
    what.add_argument("--backends", type=str_list, default=None, metavar="NAME[,NAME]",
                      help=f"comma-separated, some of: {_names(BACKEND_NAMES)} (default: {_names(QUICK_BACKENDS)}; "
                           "with --all, every one; those this machine lacks are listed as skipped)")
    what.add_argument("--batch-sizes", type=int_list, default=None,
                      help=f"comma-separated (default: {_names(QUICK_BATCH_SIZES)}; with --all, "
                           f"{_names(DEFAULTS.batch_sizes)})")
    what.add_argument("--all", action="store_true",
                      help="the full sweep: every backend and batch sizes "
                           f"{_names(DEFAULTS.batch_sizes)} (minutes; the default run is a quick one)")
    what.add_argument("--seq-len", type=int, default=None, help="sequence length (default: the preset's, 50)")
    what.add_argument("--device", default=DEFAULTS.device, choices=DEVICES, help="default: cuda when available")
    how = p.add_argument_group("how")
    how.add_argument("--warmup", type=int, default=DEFAULTS.warmup, help=f"untimed runs first (default: {DEFAULTS.warmup})")
    how.add_argument("--iters", type=int, default=DEFAULTS.iters, help=f"timed runs per row (default: {DEFAULTS.iters})")
    how.add_argument("--threads", type=int, default=None, help="intra-op threads, torch and ONNX Runtime (default: theirs)")
    how.add_argument("--cache-dir", default=DEFAULTS.cache_dir, help=f"exported artifacts (default: {DEFAULTS.cache_dir})")
    how.add_argument("--verbose", action="store_true",
                     help="print a failed row's traceback (default: its error, one line)")
    how.add_argument("--budget-s", type=float, default=None, metavar="SECONDS",
                     help="rows that would start after this many seconds are listed as skipped (default: no limit)")
    table = p.add_argument_group("efficiency table (the paper's Table 3 on this machine)")
    table.add_argument("--table", choices=("latency", "efficiency"), default="latency",
                       help="latency: one row per backend and batch size (default); efficiency: params, "
                            "FLOPs, best batch-1 latency, convergence epochs and MAE/Acc-2 per model")
    table.add_argument("--train-log", type=str_list, default=(), metavar="DIR[,DIR]",
                       help="`mimic-edge train` output folders for the epochs and metrics columns")
    table.add_argument("--train", action="store_true",
                       help="train each model on the synthetic set first (minutes) for those columns")
    out = p.add_argument_group("output (markdown on stdout always)")
    out.add_argument("--json", metavar="FILE", help='write {"machine": ..., "rows": [...], "finished": ...}, '
                     "rewritten after every row, so that a run cut short keeps the rows it made")
    out.add_argument("--csv", metavar="FILE", help="write the rows as CSV")
    out.add_argument("--plot", metavar="FILE.png", help="latency vs batch size per backend")
    p.set_defaults(run=run)


def _names(values) -> str:
    return ", ".join(map(str, values))


def run(args) -> int:
    efficiency = args.table == "efficiency"
    backends = args.backends or (None if args.all else QUICK_BACKENDS)
    batch_sizes = args.batch_sizes or (DEFAULTS.batch_sizes if args.all else QUICK_BATCH_SIZES)
    cfg = BenchConfig(models=args.models, presets=args.presets, backends=backends,
                      batch_sizes=(1,) if efficiency else batch_sizes, seq_len=args.seq_len, warmup=args.warmup,
                      iters=args.iters, threads=args.threads, device=args.device, cache_dir=args.cache_dir,
                      verbose=args.verbose)
    check_config(cfg)  # names and numbers, before torch is imported: a typo fails at once
    if args.budget_s is not None and not 0 < args.budget_s < math.inf:  # nan and inf too
        raise ConfigError(f"--budget-s must be a positive number of seconds, got {args.budget_s}")

    for option in ("json", "csv", "plot"):  # before minutes of measuring, not after
        if getattr(args, option):
            check_writable_file(getattr(args, option), f"--{option}")
    check_writable(args.cache_dir, "--cache-dir")
    _warn_if_busy()

    from mimic_edge.bench import machine_info, plot_latency, resolve_device, run_bench, to_markdown, write_csv
    from mimic_edge.io import atomic_write_json

    info = machine_info(resolve_device(args.device))
    quiet = sys.stderr.isatty()  # a terminal gets the progress bar; a log gets a line per row

    def save(rows: list[dict], finished: bool = False) -> None:
        if not quiet and rows and not finished and not rows[-1]["status"].startswith("failed"):  # run.py said it
            r = rows[-1]
            p50 = f"p50 {r['p50_ms']:.3f} ms" if r.get("p50_ms") is not None else r["status"]
            print(f"bench: {r['model']} {r['preset']} {r['backend']} batch {r['batch_size']}: {p50}",
                  file=sys.stderr, flush=True)
        if args.json:
            atomic_write_json(args.json, {"machine": info, "rows": rows, "finished": finished})

    rows = run_bench(cfg, progress=sys.stderr.isatty(), on_row=save, budget_s=args.budget_s)
    print(f"machine: {info['cpu']} ({info['int8_isa']}), {info['cpu_count']} CPUs, {info['threads']} threads"
          + (f", {info['gpu']}" if "gpu" in info else "")
          + f"; torch {info['torch']}, onnxruntime {info.get('onnxruntime', '–')}; {info['date']}")
    print("FLOPs: multiply-add = 2, matmul-like ops incl. LSTM gates and attention (mimic_edge.bench.flops)\n")
    if efficiency:
        rows = _efficiency(args, rows)
    else:
        print(to_markdown(rows))
    save(rows, finished=True)
    if args.csv:
        write_csv(rows, args.csv)
    if args.plot and not efficiency:
        plot_latency(rows, args.plot)
    failed = [r for r in rows if str(r.get("status", "")).startswith("failed")]
    if failed:
        print(f"mimic-edge bench: {len(failed)} of {len(rows)} rows failed (see their status)", file=sys.stderr)
        return FAILED_ROWS
    return 0


def _efficiency(args, bench_rows: list[dict]) -> list[dict]:
    from mimic_edge.bench.efficiency import efficiency_markdown, efficiency_rows, read_run

    folders = list(args.train_log)
    if args.train:
        folders += _train_runs(args.models, args.presets, Path(args.cache_dir) / "train", progress=sys.stderr.isatty())
    rows = efficiency_rows(bench_rows, [read_run(f) for f in folders])
    print("Latency: the fastest backend at batch 1. Epochs, MAE, Acc-2: the best validation epoch of the "
          "training run (the paper's on CMU-MOSI).\n")
    print(efficiency_markdown(rows))
    return rows


def _train_runs(models, presets, out_dir: Path, progress: bool) -> list[Path]:
    """Train each model on the synthetic set of each preset (default sizes); the run folders."""
    from mimic_edge.data import synthetic
    from mimic_edge.train import TrainConfig, train

    folders = []
    for preset in presets:
        dataset = synthetic(preset)
        for name in models:
            folder = out_dir / f"{name}-{preset}"
            # the bench's own cache: each --train run replaces the previous one there
            train(dataset, TrainConfig(model=name, preset=preset), folder, progress=progress, force=True)
            folders.append(folder)
    return folders


def _warn_if_busy() -> None:
    """Other processes on the cores make every latency a measure of them: say so up front. A
    1-minute load average above half the cores (this process not yet running) is busy."""
    cores = os.cpu_count() or 1
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if load > cores / 2:
        print(f"mimic-edge bench: warning: the machine is busy (load average {load:.1f} on {cores} cores): "
              f"latencies will measure the other work too; compare rows of one run only", file=sys.stderr)
