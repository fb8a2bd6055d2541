"""Soak: N predictions from T threads on one predictor, looking for errors, wrong results and leaks.

    .venv/bin/python benchmarks/serving/soak.py                 # 100,000 calls from 4 threads, fp32 ONNX of MIMIC
    .venv/bin/python benchmarks/serving/soak.py --model artifacts/best.int8.onnx --calls 20000 --threads 8
    .venv/bin/python benchmarks/serving/soak.py --json benchmarks/results/soak-<machine>-<date>.json

Without --model, MIMIC (preset mosi, seeded fresh weights) is exported to fp32 ONNX first, through
`mimic_edge.export.export` like `mimic-edge export`; --model takes any artifact `mimic_edge.runtime.load`
does (.onnx, .engine, a checkpoint). The calls cycle through a fixed set of jobs (batch 1-4,
unequal sequence lengths), whose serial results are computed first: every threaded result must
equal its job's serial one exactly. Reported: throughput, errors by type, mismatches, and the
process RSS (VmRSS, Linux) at 10 % of the calls and at the end; the growth between them is the
leak measure (the first 10 % are warm-up: allocator pools, ONNX Runtime arenas). The goal: no
error, no mismatch, RSS growth under 5 MB. Exit status 1 when the goal is missed.
"""
from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

GOAL_RSS_GROWTH_MB = 5.0
JOBS = 32  # distinct inputs the calls cycle through
LENGTHS = ((50, 50, 50), (50, 37, 23), (12, 50, 7), (1, 3, 2))  # per modality, in MODALITIES order


def rss_mb() -> float | None:
    """Resident set size of this process (VmRSS), in MB; None where /proc is missing."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return None


def make_jobs(dims: dict[str, int], n: int = JOBS, seed: int = 0) -> list[list[np.ndarray]]:
    """`n` input triples: batch 1-4, the sequence lengths of LENGTHS in turn."""
    from mimic_edge.config import MODALITIES

    rng = np.random.default_rng(seed)
    return [[rng.standard_normal((1 + k % 4, length, dims[m]), dtype=np.float32)
             for m, length in zip(MODALITIES, LENGTHS[k % len(LENGTHS)])] for k in range(n)]


def soak(predictor, calls: int, threads: int, jobs: list | None = None) -> dict:
    """Run `calls` predictions from `threads` threads; return the measurements (see the module doc)."""
    jobs = jobs or make_jobs(predictor.dims)
    serial = [predictor.predict(*job) for job in jobs]
    errors: dict[str, int] = {}
    first_error: list[str] = []
    mismatches = itertools.count()  # next() on a count is atomic under the GIL
    done = itertools.count(1)
    mark = max(1, calls // 10)
    rss_at_mark: list[float | None] = []
    lock = threading.Lock()
    start_barrier = threading.Barrier(threads + 1)

    def worker(k: int) -> None:
        start_barrier.wait()
        for i in range(k, calls, threads):
            job = i % len(jobs)
            try:
                out = predictor.predict(*jobs[job])
                if not np.array_equal(out, serial[job]):
                    next(mismatches)
            except Exception as e:  # counted, never fatal: the soak reports every failure
                with lock:
                    errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
                    if not first_error:
                        first_error.append(f"{type(e).__name__}: {e}")
            if next(done) == mark:
                rss_at_mark.append(rss_mb())

    pool = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(threads)]
    for t in pool:
        t.start()
    rss_start = rss_mb()
    load_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    start_barrier.wait()
    start = time.perf_counter()
    for t in pool:
        t.join()
    seconds = time.perf_counter() - start
    rss_end = rss_mb()
    samples = sum(len(jobs[i % len(jobs)][0]) for i in range(calls))
    growth = rss_end - rss_at_mark[0] if rss_end is not None and rss_at_mark and rss_at_mark[0] is not None else None
    result = {
        "calls": calls, "threads": threads, "jobs": len(jobs), "seconds": seconds,
        "calls_per_s": calls / seconds, "samples_per_s": samples / seconds,
        "errors": sum(errors.values()), "errors_by_type": errors,
        "first_error": first_error[0] if first_error else None,
        "mismatches": next(mismatches),
        "rss_mb": {"before": rss_start, "at_10_percent": rss_at_mark[0] if rss_at_mark else None, "end": rss_end,
                   "growth_10_percent_to_end": growth},
        "load_average_1min": {"start": load_start, "end": os.getloadavg()[0] if hasattr(os, "getloadavg") else None},
    }
    result["passed"] = (result["errors"] == 0 and result["mismatches"] == 0
                        and (growth is None or growth < GOAL_RSS_GROWTH_MB))
    return result


def default_artifact(folder: Path) -> Path:
    """MIMIC (mosi, seeded fresh weights) exported to fp32 ONNX, validated like `mimic-edge export`."""
    from mimic_edge.export import ExportConfig, export

    return export(ExportConfig(model="mimic", precision="fp32", out=str(folder), valid_samples=64),
                  log=lambda message: None).onnx_path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", metavar="PATH", help="artifact to soak (default: MIMIC fp32 ONNX, exported now)")
    parser.add_argument("--calls", type=int, default=100_000, help="predictions in all (default: 100000)")
    parser.add_argument("--threads", type=int, default=4, help="caller threads (default: 4)")
    parser.add_argument("--intra-threads", type=int, default=1,
                        help="ONNX Runtime intra-op threads per call (default: 1: the callers give the parallelism)")
    parser.add_argument("--json", metavar="FILE", help="write the result and the machine")
    args = parser.parse_args(argv)
    for name in ("calls", "threads", "intra_threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from mimic_edge.io import atomic_write_json
    from mimic_edge.runtime import load

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.model) if args.model else default_artifact(Path(tmp))
        predictor = load(path, threads=args.intra_threads)  # ONNX Runtime's threads
        if predictor.backend == "torch":
            import torch

            torch.set_num_threads(args.intra_threads)
        result = soak(predictor, args.calls, args.threads)
    result = {"artifact": str(args.model or "mimic-mosi.fp32.onnx (fresh weights, exported by the soak)"),
              "backend": predictor.backend, "metadata": getattr(predictor, "metadata", None),
              "intra_threads": args.intra_threads, **result, "goal": {"errors": 0, "mismatches": 0,
                                                                      "rss_growth_mb_below": GOAL_RSS_GROWTH_MB}}
    rss = {k: "n/a" if v is None else f"{v:.1f} MB" for k, v in result["rss_mb"].items()}
    print(f"{result['calls']} calls from {result['threads']} threads on {result['artifact']} ({result['backend']}): "
          f"{result['seconds']:.1f} s, {result['calls_per_s']:.0f} calls/s, {result['samples_per_s']:.0f} samples/s; "
          f"errors {result['errors']}, mismatches {result['mismatches']}; RSS {rss['at_10_percent']} at 10 %, "
          f"{rss['end']} at the end (growth {rss['growth_10_percent_to_end']}); "
          f"goal {'met' if result['passed'] else 'MISSED'}")
    if result["first_error"]:
        print(f"first error: {result['first_error']}", file=sys.stderr)
    if args.json:
        from mimic_edge.bench.report import machine_info

        atomic_write_json(args.json, {"machine": machine_info("cpu"), **result})
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
