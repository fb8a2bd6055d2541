"""`mimic-edge bench`: params, FLOPs, latency and memory of MIMIC vs MISA on every backend
this machine has; unavailable backends are listed as skipped, with the reason."""
from __future__ import annotations

import sys

from mimic_edge.cli._common import EXAMPLES_HELP, int_list, str_list

EXAMPLES = """examples:
  mimic-edge bench                                   # every backend, preset mosi, batch 1, 8, 64
  mimic-edge bench --presets mosi,mosi-bert --backends eager,ort-fp32 --json bench.json --csv bench.csv
  mimic-edge bench --batch-sizes 1,16,256 --plot latency.png
  mimic-edge bench --table efficiency --train-log runs/mimic,runs/misa
  mimic-edge bench --table efficiency --presets mosi,mosi-bert --train   # trains on the synthetic set first
"""


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="params, FLOPs, latency and memory of MIMIC vs MISA per backend",
                       description=__doc__, epilog=EXAMPLES, formatter_class=EXAMPLES_HELP)
    what = p.add_argument_group("what to measure")
    what.add_argument("--models", type=str_list, default=("mimic", "misa"), help="comma-separated (default: mimic,misa)")
    what.add_argument("--presets", type=str_list, default=("mosi",), help="comma-separated (default: mosi)")
    what.add_argument("--backends", type=str_list, default=None,
                      help="comma-separated (default: all; those this machine lacks are listed as skipped)")
    what.add_argument("--batch-sizes", type=int_list, default=(1, 8, 64), help="comma-separated (default: 1,8,64)")
    what.add_argument("--seq-len", type=int, default=None, help="sequence length (default: the preset's, 50)")
    what.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="default: cuda when available")
    how = p.add_argument_group("how")
    how.add_argument("--warmup", type=int, default=10, help="untimed runs first (default: 10)")
    how.add_argument("--iters", type=int, default=100, help="timed runs per row (default: 100)")
    how.add_argument("--threads", type=int, default=None, help="intra-op threads, torch and ONNX Runtime (default: theirs)")
    how.add_argument("--cache-dir", default=".cache/mimic-edge", help="exported artifacts (default: .cache/mimic-edge)")
    table = p.add_argument_group("efficiency table (the paper's Table 3 on this machine)")
    table.add_argument("--table", choices=("latency", "efficiency"), default="latency",
                       help="latency: one row per backend and batch size (default); efficiency: params, "
                            "FLOPs, best batch-1 latency, convergence epochs and MAE/Acc-2 per model")
    table.add_argument("--train-log", type=str_list, default=(), metavar="DIR[,DIR]",
                       help="`mimic-edge train` output folders for the epochs and metrics columns")
    table.add_argument("--train", action="store_true",
                       help="train each model on the synthetic set first (minutes) for those columns")
    out = p.add_argument_group("output (markdown on stdout always)")
    out.add_argument("--json", metavar="FILE", help='write {"machine": ..., "rows": [...]}')
    out.add_argument("--csv", metavar="FILE", help="write the rows as CSV")
    out.add_argument("--plot", metavar="FILE.png", help="latency vs batch size per backend")
    p.set_defaults(run=run)


def run(args) -> int:
    from mimic_edge.bench import BenchConfig, machine_info, resolve_device, run_bench, to_markdown, write_csv
    from mimic_edge.io import atomic_write_json

    efficiency = args.table == "efficiency"
    cfg = BenchConfig(models=args.models, presets=args.presets, backends=args.backends,
                      batch_sizes=(1,) if efficiency else args.batch_sizes, seq_len=args.seq_len, warmup=args.warmup,
                      iters=args.iters, threads=args.threads, device=args.device, cache_dir=args.cache_dir)
    rows = run_bench(cfg, progress=sys.stderr.isatty())
    info = machine_info(resolve_device(args.device))
    print(f"machine: {info['cpu']}, {info['cpu_count']} CPUs, {info['threads']} threads" + (f", {info['gpu']}" if "gpu" in info else "")
          + f"; torch {info['torch']}, onnxruntime {info.get('onnxruntime', '–')}; {info['date']}")
    print("FLOPs: multiply-add = 2, matmul-like ops incl. LSTM gates and attention (mimic_edge.flops)\n")
    if efficiency:
        rows = _efficiency(args, rows)
    else:
        print(to_markdown(rows))
    if args.json:
        atomic_write_json(args.json, {"machine": info, "rows": rows})
    if args.csv:
        write_csv(rows, args.csv)
    if args.plot and not efficiency:
        from mimic_edge.bench_plot import plot_latency

        plot_latency(rows, args.plot)
    return 0


def _efficiency(args, bench_rows: list[dict]) -> list[dict]:
    from pathlib import Path

    from mimic_edge.efficiency import efficiency_markdown, efficiency_rows, read_run, train_runs

    folders = list(args.train_log)
    if args.train:
        folders += train_runs(args.models, args.presets, Path(args.cache_dir) / "train", progress=sys.stderr.isatty())
    rows = efficiency_rows(bench_rows, [read_run(f) for f in folders])
    print("Latency: the fastest backend at batch 1. Epochs, MAE, Acc-2: the best validation epoch of the "
          "training run (the paper's on CMU-MOSI).\n")
    print(efficiency_markdown(rows))
    return rows
