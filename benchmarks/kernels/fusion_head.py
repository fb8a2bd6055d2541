"""Benchmark of MIMIC's fusion head (docs/design.md §5) on a CUDA GPU: the PyTorch reference, eager
and torch.compile'd, against the fused Triton kernel, factorized and direct.

    python benchmarks/kernels/fusion_head.py --out benchmarks/results/fusion_head.json
    python benchmarks/kernels/fusion_head.py --dtypes fp32,tf32,bf16,fp16 --block-b 32

Per dtype and batch size B: GPU time by triton.testing.do_bench (L2 flushed before each run;
p20, p50, p80), host time per call (a loop of calls, then one synchronize: what a Python
caller waits, launch overhead included), samples/s, and achieved GB/s over the compulsory
traffic (h̃, ĩ, S read, F written, the weights once: the fused kernel's bytes, the same count
for every provider). Each output is checked against the fp32 reference on the same inputs
first. Plus an empty Triton kernel's launch, the floor for B = 1, and the speed targets.
"tf32" is fp32 data under torch.set_float32_matmul_precision("high") for every provider.

The JSON is rewritten after every row, so a run cut short keeps what it measured; rows left
when --budget-s is spent are recorded as skipped. Without a GPU: says so and exits 0.
Exit 1 when a fused kernel's error exceeds its dtype's tolerance.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import torch

from mimic_edge.bench.kernel_bench import empty_launch, gpu_times_us, host_time_us
from mimic_edge.bench.report import machine_info
from mimic_edge.io import atomic_write_json
from mimic_edge.kernels import fusion_head_reference

DTYPES = {"fp32": torch.float32, "tf32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
# max |F − F_fp32| / max |F_fp32| accepted from the fused kernel (fp32: 3×TF32 dots; the
# others: unit roundoff u = 4.9e-4 for fp16 and TF32 operands, 3.9e-3 for bf16, about 4u-6u)
TOLERANCES = {"fp32": 1e-5, "tf32": 2e-3, "fp16": 2e-3, "bf16": 2.5e-2}
# The project's kernels first: a spent --budget-s skips the baselines (cold torch.compile: seconds), not them
PROVIDERS = ("triton-factorized", "triton-direct", "eager", "compiled")
SAMPLE_ELEMENTS = 2 * 3 * 16 + 64 + 192  # h̃, ĩ, S read; F written
WEIGHT_ELEMENTS = 2 * (64 * 512 + 64) + 192 * 192 + 192


def make_inputs(batch: int, dtype: torch.dtype) -> list[torch.Tensor]:
    """Bottleneck outputs after ReLU (as in MIMIC), S, and nn.Linear-scaled weights, on CUDA."""
    g = torch.Generator(device="cuda").manual_seed(batch)

    def randn(*shape, scale=1.0):
        return (torch.randn(*shape, generator=g, device="cuda") * scale).to(dtype)

    return [randn(batch, 3, 16).relu(), randn(batch, 3, 16).relu(), randn(batch, 64),
            randn(64, 512, scale=512 ** -0.5), randn(64, scale=0.1), randn(64, 512, scale=512 ** -0.5),
            randn(64, scale=0.1), randn(192, 192, scale=192 ** -0.5), randn(192, scale=0.1)]


def setup(provider: str, block_b: int | None):
    """A function of the 9 head inputs for `provider`; one per dtype, reused for every B."""
    from mimic_edge.kernels import fusion_head

    if provider == "eager":
        return fusion_head_reference
    if provider == "compiled":
        return torch.compile(fusion_head_reference)  # recompiles once to a dynamic batch after B = 1
    algorithm = provider.removeprefix("triton-")
    return lambda *inputs: fusion_head(*inputs, algorithm=algorithm, block_b=block_b)


def relative_error(got: torch.Tensor, expected: torch.Tensor) -> float:
    return float((got.float() - expected).abs().max() / expected.abs().max())


def measure(fn, batch: int, dtype: torch.dtype, expected: torch.Tensor, args) -> dict:
    """One row: error against the fp32 reference, GPU and host times, rates."""
    error = relative_error(fn(), expected)  # also the warm-up: compiles here
    p20, p50, p80 = gpu_times_us(fn, args.warmup_ms, args.rep_ms)
    moved = (SAMPLE_ELEMENTS * batch + WEIGHT_ELEMENTS) * dtype.itemsize
    return {"p20_us": p20, "p50_us": p50, "p80_us": p80, "host_us": host_time_us(fn, p50),
            "samples_per_s": batch / (p50 * 1e-6), "gb_per_s": moved / (p50 * 1e-6) / 1e9,
            "bytes": moved, "max_rel_err": error}


def targets(rows: list[dict], empty_us: float | None) -> list[dict]:
    """The speed targets of the fused factorized kernel, from the measured rows."""
    by_key = {(r["dtype"], r["provider"], r["batch_size"]): r for r in rows if r["status"] == "ok"}
    checks = []
    for (dtype, provider, batch), row in by_key.items():
        if provider != "triton-factorized":
            continue
        for base, goal in (("eager", 5.0), ("compiled", 1.5)):
            other = by_key.get((dtype, base, batch))
            if batch >= 1024 and other:
                ratio = other["p50_us"] / row["p50_us"]
                checks.append({"dtype": dtype, "batch_size": batch, "target": f">= {goal}x faster than {base}",
                               "ratio": ratio, "met": ratio >= goal})
        if batch == 1 and empty_us:
            ratio = row["p50_us"] / empty_us
            checks.append({"dtype": dtype, "batch_size": 1, "target": "<= 2x an empty Triton launch",
                           "ratio": ratio, "met": ratio <= 2.0})
    return checks


def print_row(row: dict) -> None:
    if row["status"] != "ok":
        print(f"{row['dtype']:>5} {row['provider']:<18} {row['batch_size']:>6}  {row['status']}")
        return
    print(f"{row['dtype']:>5} {row['provider']:<18} {row['batch_size']:>6} {row['p50_us']:>10.1f} "
          f"{row['p20_us']:>8.1f}-{row['p80_us']:<8.1f} {row['host_us']:>9.1f} {row['samples_per_s']:>12.3g} "
          f"{row['gb_per_s']:>8.1f} {row['max_rel_err']:>9.1e}")


def run(args) -> int:
    os.environ["TRITON_INTERPRET"] = "0"  # real kernels: before the first Triton kernel is defined
    started = time.perf_counter()
    record = {"machine": machine_info("cuda"), "args": vars(args), "rows": [], "empty_launch_us": None, "targets": []}

    def save():
        record["targets"] = targets(record["rows"], record["empty_launch_us"])
        atomic_write_json(args.out, record)

    def over_budget() -> bool:
        return time.perf_counter() - started > args.budget_s

    print(f"{record['machine']['gpu']}, torch {torch.__version__}, triton {record['machine']['triton']}")
    empty = empty_launch()
    empty()
    record["empty_launch_us"] = gpu_times_us(empty, args.warmup_ms, args.rep_ms)[1]
    record["empty_launch_host_us"] = host_time_us(empty, record["empty_launch_us"])
    print(f"empty Triton kernel: {record['empty_launch_us']:.1f} µs GPU, {record['empty_launch_host_us']:.1f} µs host")
    print(f"{'dtype':>5} {'provider':<18} {'B':>6} {'p50 µs':>10} {'p20-p80 µs':>17} {'host µs':>9} "
          f"{'samples/s':>12} {'GB/s':>8} {'max err':>9}")
    failed = False
    for dtype_name in args.dtypes:
        dtype = DTYPES[dtype_name]
        torch.set_float32_matmul_precision("high" if dtype_name == "tf32" else "highest")
        torch._dynamo.reset()
        for provider in PROVIDERS:
            fn = None
            for batch in args.batch_sizes:
                row = {"dtype": dtype_name, "provider": provider, "batch_size": batch}
                if over_budget():
                    row["status"] = f"skipped: time budget ({args.budget_s:.0f} s) spent"
                else:
                    try:
                        fn = fn or setup(provider, args.block_b)
                        inputs = make_inputs(batch, dtype)
                        expected = fusion_head_reference(*(x.float() for x in inputs))
                        row.update(measure(lambda: fn(*inputs), batch, dtype, expected, args), status="ok")
                        if provider.startswith("triton") and not row["max_rel_err"] <= TOLERANCES[dtype_name]:
                            row["status"] = f"ok, but error above tolerance {TOLERANCES[dtype_name]:.0e}"
                            failed = True
                    except Exception as error:  # a provider that cannot run is a row, not a crash
                        row["status"] = f"failed: {type(error).__name__}: {str(error).splitlines()[0][:200]}"
                        failed = failed or provider.startswith("triton")
                    finally:
                        torch.cuda.empty_cache()
                record["rows"].append(row)
                print_row(row)
                save()
    torch.set_float32_matmul_precision("highest")
    for check in record["targets"]:
        print(f"target {check['dtype']} B={check['batch_size']}: {check['target']}: "
              f"{check['ratio']:.2f}x, {'met' if check['met'] else 'NOT met'}")
    print(f"wrote {args.out} ({time.perf_counter() - started:.0f} s)")
    return 1 if failed else 0


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  python benchmarks/kernels/fusion_head.py --out benchmarks/results/fusion_head.json\n"
               "  python benchmarks/kernels/fusion_head.py --dtypes fp32,tf32,bf16,fp16 --batch-sizes 1,65536 --block-b 32")
    parser.add_argument("--out", default="benchmarks/results/fusion_head.json", help="JSON file to write")
    parser.add_argument("--batch-sizes", default="1,64,1024,16384,65536",
                        type=lambda text: [int(b) for b in text.split(",")], help="comma-separated")
    parser.add_argument("--dtypes", default="fp32,bf16", type=lambda text: text.split(","),
                        help=f"comma-separated, among {', '.join(DTYPES)}")
    parser.add_argument("--block-b", type=int, default=None, choices=(16, 32, 64),
                        help="samples per Triton program (default: by B)")
    parser.add_argument("--warmup-ms", type=int, default=25, help="do_bench warm-up time")
    parser.add_argument("--rep-ms", type=int, default=100, help="do_bench measuring time")
    parser.add_argument("--budget-s", type=float, default=80.0,
                        help="stop measuring after this many seconds; the rest is recorded as skipped")
    args = parser.parse_args(argv)
    unknown = [d for d in args.dtypes if d not in DTYPES]
    if unknown:
        parser.error(f"unknown dtype(s) {unknown}: expected some of {list(DTYPES)}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if not torch.cuda.is_available():
        print("no CUDA GPU: nothing measured (the fused head's benchmark needs one)")
        return 0
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
