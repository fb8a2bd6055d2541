"""`mimic-edge bench`: params, FLOPs and latency, MIMIC vs MISA."""
from __future__ import annotations

import sys

from mimic_edge.cli._common import EXAMPLES_HELP, int_list, str_list

EXAMPLES = """examples:
  mimic-edge bench                                  # MIMIC vs MISA, preset mosi, batch 1 and 64
  mimic-edge bench --presets mosi,mosi-bert --batch-sizes 1,8,64 --json bench.json
  mimic-edge bench --models mimic --iters 500 --threads 1
"""


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="params, FLOPs and latency of MIMIC vs MISA",
                       description=__doc__, epilog=EXAMPLES, formatter_class=EXAMPLES_HELP)
    p.add_argument("--models", type=str_list, default=("mimic", "misa"), help="comma-separated (default: mimic,misa)")
    p.add_argument("--presets", type=str_list, default=("mosi",), help="comma-separated (default: mosi)")
    p.add_argument("--backends", type=str_list, default=("eager",), help="comma-separated (default: eager)")
    p.add_argument("--batch-sizes", type=int_list, default=(1, 64), help="comma-separated (default: 1,64)")
    p.add_argument("--seq-len", type=int, default=None, help="sequence length (default: the preset's, 50)")
    p.add_argument("--warmup", type=int, default=10, help="untimed runs first (default: 10)")
    p.add_argument("--iters", type=int, default=100, help="timed runs per row (default: 100)")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--json", metavar="FILE", help='also write {"machine": ..., "rows": [...]} to FILE')
    p.set_defaults(run=run)


def run(args) -> int:
    from mimic_edge.bench import BenchConfig, machine_info, run_bench, to_markdown
    from mimic_edge.io import atomic_write_json

    cfg = BenchConfig(models=args.models, presets=args.presets, backends=args.backends,
                      batch_sizes=args.batch_sizes, seq_len=args.seq_len, warmup=args.warmup,
                      iters=args.iters, threads=args.threads)
    rows = run_bench(cfg, progress=lambda msg: print(f"  {msg}", file=sys.stderr))
    info = machine_info()
    print(f"machine: {info['machine']}, {info['cpu_count']} threads, torch {info['torch']}, {info['date']}")
    print("FLOPs: multiply-add = 2, matmul-like ops incl. LSTM gates and attention (mimic_edge.flops)\n")
    print(to_markdown(rows))
    if args.json:
        atomic_write_json(args.json, {"machine": info, "rows": rows})
    return 0
