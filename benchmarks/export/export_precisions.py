"""Export table: per model and precision, the artifact size, its validation (SQNR, MAE and Acc-2
deltas against PyTorch) and its ONNX Runtime CPU latency (batch 1, p50), all artifacts of a
model timed side by side in one process.

    .venv/bin/python benchmarks/export/export_precisions.py                      # fresh weights
    .venv/bin/python benchmarks/export/export_precisions.py --checkpoint mimic=runs/mimic/best \\
        --checkpoint misa=runs/misa/best --json benchmarks/results/export-cpu.json
    .venv/bin/python benchmarks/export/export_precisions.py --exporters          # TorchScript vs dynamo

Latency: sessions as mimic_edge.runtime opens them (ORT_ENABLE_EXTENDED), one intra-op thread
unless --threads, inputs from the synthetic validation split at the preset's length. Rounds
alternate between the artifacts, so that a load change on a shared machine hits all alike.
"""
from __future__ import annotations

import argparse
import functools
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from mimic_edge.bench.report import machine_info
from mimic_edge.bench.timing import interleaved_runs
from mimic_edge.config import MODALITIES, OUTPUT_NAME
from mimic_edge.export import PRECISIONS, ExportConfig, export
from mimic_edge.io import atomic_write_json
from mimic_edge.runtime import load


def session(path: Path, threads: int):
    """The session mimic_edge.runtime runs the artifact with, on the CPU."""
    return load(path, providers=["CPUExecutionProvider"], threads=threads).session


def p50_side_by_side(paths: dict[str, Path], feeds: dict, threads: int, rounds: int, iters: int) -> dict[str, float]:
    """Median latency (ms) per artifact over `rounds` × `iters` calls, the artifacts alternating."""
    sessions = {k: session(p, threads) for k, p in paths.items()}
    times = interleaved_runs({k: functools.partial(s.run, None, feeds) for k, s in sessions.items()},
                             warmup=50, rounds=rounds, iters=iters)
    return {k: statistics.median(v) for k, v in times.items()}


def check(report: dict, suffix: str) -> float:
    return next(c["value"] for c in report["checks"] if c["check"] == suffix)


def export_rows(model: str, checkpoint: str | None, out: Path, args) -> list[dict]:
    rows, paths = [], {}
    for precision, entry in PRECISIONS.items():  # keys: fp32, fp16, int8, int8-cpu
        start = time.perf_counter()
        result = export(ExportConfig(model=model, precision=entry.name, target=entry.target, checkpoint=checkpoint,
                                     out=str(out)), log=lambda line: print(f"  {line}", file=sys.stderr))
        seconds = time.perf_counter() - start
        report = result.report
        metrics = report["metrics"]
        rows.append({
            "model": model, "precision": precision, "weights": report["weights"],
            "size_mb": result.onnx_path.stat().st_size / 1e6, "export_s": seconds,
            "sqnr_db": check(report, "validation set sqnr_db"),
            "max_abs": max(c["value"] for c in report["checks"] if c["check"].endswith("max_abs")),
            "mae_torch": metrics["torch"]["MAE"], "mae_delta": metrics["artifact"]["MAE"] - metrics["torch"]["MAE"],
            "acc2_torch": metrics["torch"]["Has0_acc_2"],
            "acc2_delta": metrics["artifact"]["Has0_acc_2"] - metrics["torch"]["Has0_acc_2"],
            "non0_acc2_delta": metrics["artifact"]["Non0_acc_2"] - metrics["torch"]["Non0_acc_2"],
        })
        paths[precision] = result.onnx_path
    from mimic_edge.data import synthetic

    valid = synthetic(_preset(paths["fp32"]), n=(1, 1, 1), seed=0)["valid"]
    feeds = {m: np.ascontiguousarray(valid[m][:1]) for m in MODALITIES}
    p50 = p50_side_by_side(paths, feeds, args.threads, args.rounds, args.iters)
    for row in rows:
        row["ort_p50_ms"] = p50[row["precision"]]
    return rows


def _preset(onnx_path: Path) -> str:
    import onnx

    return {p.key: p.value for p in onnx.load(onnx_path, load_external_data=False).metadata_props}["preset"]


def compare_exporters(args) -> list[dict]:
    """MIMIC (mosi) through the TorchScript exporter (what export uses) and through dynamo:
    export seconds, node count, ORT p50 side by side."""
    import torch

    from mimic_edge.models import build_model

    torch.manual_seed(0)
    model = build_model("mimic").eval()
    with tempfile.TemporaryDirectory(prefix="exporters-") as tmp:
        return _compare_exporters(model, Path(tmp), args)


def _compare_exporters(model, folder: Path, args) -> list[dict]:
    import onnx
    import torch

    from mimic_edge.export.onnx import dynamic_axes, to_bytes, to_onnx

    start = time.perf_counter()
    torchscript = to_bytes(to_onnx(model))
    seconds = {"torchscript": time.perf_counter() - start}
    (folder / "torchscript.onnx").write_bytes(torchscript)
    batch = torch.export.Dim("batch")
    shapes = {m: {0: batch, 1: torch.export.Dim(f"seq_{m}")} for m in MODALITIES}
    example = tuple(torch.zeros(2, 3 + i, model.config.dims[m]) for i, m in enumerate(MODALITIES))
    start = time.perf_counter()
    torch.onnx.export(model, example, folder / "dynamo.onnx", dynamo=True, external_data=False, opset_version=18,
                      input_names=list(MODALITIES), output_names=[OUTPUT_NAME], dynamic_shapes=shapes)
    seconds["dynamo"] = time.perf_counter() - start
    assert dynamic_axes()  # same axes as the TorchScript path
    paths = {k: folder / f"{k}.onnx" for k in seconds}
    rng = np.random.default_rng(0)
    feeds = {m: rng.standard_normal((1, 50, d), dtype=np.float32) for m, d in model.config.dims.items()}
    p50 = p50_side_by_side(paths, feeds, args.threads, args.rounds, args.iters)
    return [{"exporter": k, "export_s": seconds[k], "nodes": len(onnx.load(paths[k]).graph.node), "ort_p50_ms": p50[k]}
            for k in seconds]


def markdown(rows: list[dict]) -> str:
    head = ("| model | precision | size (MB) | SQNR (dB) | max abs err | MAE (torch) | Δ MAE | Acc-2 (torch) "
            "| Δ Has0 Acc-2 | Δ Non0 Acc-2 | ORT p50 (ms) |\n|---|---|---|---|---|---|---|---|---|---|---|")
    lines = [f"| {r['model']} | {r['precision']} | {r['size_mb']:.2f} | {r['sqnr_db']:.1f} | {r['max_abs']:.2g} "
             f"| {r['mae_torch']:.4f} | {r['mae_delta']:+.5f} | {r['acc2_torch']:.4f} | {r['acc2_delta']:+.4f} "
             f"| {r['non0_acc2_delta']:+.4f} | {r['ort_p50_ms']:.3f} |" for r in rows]
    return "\n".join([head, *lines])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", action="append", default=[], metavar="MODEL=PATH",
                        help="checkpoint per model (default: fresh weights)")
    parser.add_argument("--models", default="mimic,misa")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--iters", type=int, default=100)
    parser.add_argument("--exporters", action="store_true", help="compare TorchScript and dynamo exports instead")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args(argv)
    machine = {**machine_info("cpu"), "ort_threads": args.threads}
    if args.exporters:
        rows = compare_exporters(args)
        print("| exporter | export (s) | nodes | ORT p50 (ms) |\n|---|---|---|---|")
        for r in rows:
            print(f"| {r['exporter']} | {r['export_s']:.2f} | {r['nodes']} | {r['ort_p50_ms']:.3f} |")
    else:
        checkpoints = dict(c.split("=", 1) for c in args.checkpoint)
        with tempfile.TemporaryDirectory(prefix="export-table-") as out:
            rows = [row for model in args.models.split(",")
                    for row in export_rows(model, checkpoints.get(model), Path(out), args)]
        print(f"{machine['cpu']}, {machine['cpu_count']} CPUs, ORT intra-op threads {args.threads}, "
              f"torch {machine['torch']}, onnxruntime {machine['onnxruntime']}, {machine['date']}\n")
        print(markdown(rows))
    if args.json:
        atomic_write_json(args.json, {"machine": machine, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
