"""AOTInductor on a CPU at batch 1: the `.pt2` package against eager PyTorch and the ONNX Runtime
FP32 artifact, and where the package's time goes (docs/export.md, "AOTInductor packages").

Both artifacts are made by `mimic_edge.export.export` (validated, as users get them) and every
backend is timed through the predictor users call (`Predictor.predict`, input checks included),
one intra-op thread, all three alternating in rounds in one process. Then a second package of
the same model, compiled with per-kernel profiling (inductor's `cpp.enable_kernel_profile`),
runs under torch.profiler: the share of each kind of work in the call. The ATen LSTM op the
package calls (`aten.mkldnn_rnn_layer`, one per modality and direction) is also timed alone at
the call's shapes, without the profiler's overhead.

    .venv/bin/python benchmarks/export/aoti_cpu.py --json benchmarks/results/aoti-cpu-xeon-2core-2026-12-03.json

Each run is appended to the JSON file's "runs" (the machine is shared: run it more than once).
Without --checkpoint the model has seeded fresh weights (latency does not depend on them).
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from mimic_edge import build_model, load_checkpoint
from mimic_edge.bench.report import machine_info
from mimic_edge.bench.timing import interleaved_runs
from mimic_edge.config import MODALITIES
from mimic_edge.data import synthetic
from mimic_edge.export import ExportConfig, export
from mimic_edge.export.aoti import INDUCTOR_CONFIGS, export_program, package_metadata, pt2_model
from mimic_edge.export.shapes import make_profile
from mimic_edge.io import atomic_write_json
from mimic_edge.runtime import load
from mimic_edge.runtime.torch_predictor import TorchPredictor


def timed(predictors: dict, inputs: list[np.ndarray], rounds: int, iters: int) -> dict:
    """p50/p99 ms per predictor, all alternating in rounds, with each p50 as a ratio to ORT's."""
    times = interleaved_runs({k: functools.partial(p.predict, *inputs) for k, p in predictors.items()},
                             warmup=50, rounds=rounds, iters=iters)
    result = {k: {"p50_ms": statistics.median(v), "p99_ms": float(np.percentile(v, 99))} for k, v in times.items()}
    for r in result.values():
        r["ratio_to_ort_fp32"] = r["p50_ms"] / result["ort-fp32"]["p50_ms"]
    return result


KINDS = (  # profiler event name → kind of work, first match wins
    ("mkldnn_rnn_layer", "LSTMs: aten.mkldnn_rnn_layer (oneDNN), 6 calls"),
    ("mm_out", "GEMMs: aten mm/addmm/bmm (extern calls)"),
    ("cpp_fused", "inductor's generated C++ kernels"),
)


def profile_package(model, inputs: list[np.ndarray], calls: int) -> dict:
    """Self CPU time by kind of work in the package's call, from a profiling build of it."""
    from torch._inductor import aoti_compile_and_package
    from torch.profiler import ProfilerActivity, profile

    profile_ranges = make_profile("1:1:64", "1:50:100")
    module = pt2_model(model, "cpu")
    with tempfile.TemporaryDirectory() as tmp:
        path = aoti_compile_and_package(
            export_program(module, profile_ranges, "cpu"), package_path=f"{tmp}/profiled.pt2",
            inductor_configs={**INDUCTOR_CONFIGS, "aot_inductor.metadata": package_metadata(module, profile_ranges),
                              "cpp.enable_kernel_profile": True})
        loader = torch._C._aoti.AOTIModelPackageLoader(path, "model", False, 1, -1)
    tensors = [torch.from_numpy(x) for x in inputs]
    for _ in range(50):
        loader.boxed_run(list(tensors))
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(calls):
            loader.boxed_run(list(tensors))
    # Top-level events only, each with its children (the ATen op's own allocations and copies):
    # what the package's wrapper calls, one after the other.
    by_kind: dict[str, float] = {}
    events: dict[str, dict] = {}
    for e in prof.events():
        if e.cpu_parent is not None:
            continue
        kind = next((k for pattern, k in KINDS if pattern in e.name), "other: the wrapper's own ATen calls (buffers, views)")
        by_kind[kind] = by_kind.get(kind, 0.0) + e.cpu_time_total
        entry = events.setdefault(e.name, {"us_per_call": 0.0, "calls_per_call": 0.0})
        entry["us_per_call"] += e.cpu_time_total / calls
        entry["calls_per_call"] += 1 / calls
    total = sum(by_kind.values())
    top = dict(sorted(events.items(), key=lambda kv: -kv[1]["us_per_call"])[:12])
    return {"share": {k: v / total for k, v in sorted(by_kind.items(), key=lambda kv: -kv[1])},
            "profiled_us_per_call": total / calls, "top_events": top,
            "note": "profiler overhead inflates every event; the shares, not the µs, carry over"}


def lstm_alone(model, inputs: list[np.ndarray], iters: int) -> dict:
    """aten.mkldnn_rnn_layer alone at the call's shapes (both directions of each modality), and at
    sequence length 1 (its fixed cost), in µs, no profiler."""
    def one(lstm, x):
        seq = x.transpose(0, 1).contiguous()
        zeros = seq.new_zeros(1, seq.shape[1], lstm.hidden_size)
        for suffix in ("", "_reverse"):
            w = [getattr(lstm, f"{n}_l0{suffix}") for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            torch.ops.aten.mkldnn_rnn_layer(seq, *w, zeros, zeros, bool(suffix), [], 2, lstm.hidden_size, 1, True,
                                            False, False, False)

    def median_us(fn) -> float:
        for _ in range(50):
            fn()
        ts = []
        for _ in range(iters):
            start = time.perf_counter()
            fn()
            ts.append((time.perf_counter() - start) * 1e6)
        return statistics.median(ts)

    out = {}
    with torch.inference_mode():
        for m, x in zip(MODALITIES, inputs):
            lstm, t = model.encoders[m].lstm, torch.from_numpy(x)
            out[m] = {"both_directions_us": median_us(lambda: one(lstm, t)),
                      "both_directions_at_length_1_us": median_us(lambda: one(lstm, t[:, :1]))}
    out["total_us"] = sum(v["both_directions_us"] for v in out.values())
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", help="a trained MIMIC checkpoint (default: seeded fresh weights, preset mosi)")
    parser.add_argument("--rounds", type=int, default=10, help="alternating rounds (default: 10)")
    parser.add_argument("--iters", type=int, default=200, help="batch-1 calls per backend and round (default: 200)")
    parser.add_argument("--profile-calls", type=int, default=500, help="profiled package calls (default: 500)")
    parser.add_argument("--json", metavar="FILE", help="append this run to FILE's runs")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    load_before = os.getloadavg()
    torch.manual_seed(0)
    model = (load_checkpoint(args.checkpoint) if args.checkpoint else build_model("mimic")).eval()
    valid = synthetic(model.config.preset, n=(1, 8, 1), seed=0)["valid"]
    inputs = [np.ascontiguousarray(valid[m][:1]) for m in MODALITIES]  # batch 1, the preset's length (50)
    with tempfile.TemporaryDirectory() as tmp:
        made = {}
        for fmt in ("onnx", "pt2"):
            start = time.perf_counter()
            result = export(ExportConfig(format=fmt, out=tmp), log=lambda _: None, model=model)
            made[fmt] = {"path": result.pt2_path or result.onnx_path, "seconds": time.perf_counter() - start}
        predictors = {
            "eager": TorchPredictor.from_model(model, "cpu"),
            "ort-fp32": load(made["onnx"]["path"], providers=["CPUExecutionProvider"], threads=1),
            "aoti": load(made["pt2"]["path"]),
        }
        latency = timed(predictors, inputs, args.rounds, args.iters)
    lstm = lstm_alone(model, inputs, 2000)
    run = {"machine": {**machine_info("cpu"), "isa": torch.backends.cpu.get_cpu_capability()}, "load_average_before": load_before, "threads": 1, "batch": 1,
           "seq_len": int(inputs[0].shape[1]), "preset": model.config.preset,
           "weights": args.checkpoint or "fresh (seed 0)", "rounds": args.rounds, "iters": args.iters,
           "export_seconds": {k: round(v["seconds"], 1) for k, v in made.items()},
           "latency": latency, "lstm_alone": lstm,
           "lstm_share_of_aoti_p50": lstm["total_us"] / 1e3 / latency["aoti"]["p50_ms"],
           "profile": profile_package(model, inputs, args.profile_calls), "load_average_after": os.getloadavg()}
    for key, r in latency.items():
        print(f"{key:9s} p50 {r['p50_ms']:.3f} ms  p99 {r['p99_ms']:.3f} ms  {r['ratio_to_ort_fp32']:.2f}× ORT fp32")
    print(f"LSTMs alone (6 × aten.mkldnn_rnn_layer): {lstm['total_us']:.0f} µs = "
          f"{run['lstm_share_of_aoti_p50']:.0%} of the AOTI p50")
    for kind, share in run["profile"]["share"].items():
        print(f"  {share:6.1%}  {kind}")
    print(f"load average before {load_before}, after {run['load_average_after']}")
    if args.json:
        path = Path(args.json)
        record = json.loads(path.read_text()) if path.is_file() else {"runs": []}
        record["runs"].append(run)
        atomic_write_json(path, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
