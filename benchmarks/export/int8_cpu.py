"""INT8 on CPUs: which ONNX Runtime quantization pays, measured (docs/export.md, "INT8 on CPUs").

For each model, the FP32 artifact's graph is quantized in several ways; every variant is
validated against PyTorch like an export (`mimic_edge.export.validate`, the int8 gates) and
timed through the predictor users load (`OnnxPredictor.predict`, one intra-op thread), all
variants of a model alternating in one process, at batch 1 and 64. Latency is reported as a
ratio to the FP32 artifact of the same run.

    .venv/bin/python benchmarks/export/int8_cpu.py --checkpoint mimic=runs/mimic/best --checkpoint misa=runs/misa/best \
        --json benchmarks/results/int8-cpu.json

`--save DIR` also writes every variant and the PyTorch reference scores (DIR/<model>/), for
benchmarks/export/int8_isa.py to judge the same graphs on other CPUs (emulated ones included).

Without checkpoints the models have seeded fresh weights (near-constant scores: the accuracy
columns then say little).
"""
from __future__ import annotations

import argparse
import functools
import os
import re
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import torch

from mimic_edge import build_model, load_checkpoint
from mimic_edge.bench.report import machine_info
from mimic_edge.bench.timing import interleaved_runs
from mimic_edge.config import MODALITIES
from mimic_edge.data import synthetic
from mimic_edge.export.onnx import lean, stamp, to_bytes, to_onnx
from mimic_edge.export.precision import CALIB_LENGTH_FRACTIONS, _CalibrationReader, _quiet_root_logger, convert
from mimic_edge.export.precisions import PRECISIONS
from mimic_edge.export.validate import reference, validate
from mimic_edge.io import atomic_write_json
from mimic_edge.runtime.onnx_predictor import OnnxPredictor

ALL_OPS = ["LSTM", "MatMul", "Gemm"]


def _dynamic(ops=ALL_OPS, per_channel=False, reduce_range=False, weight="QInt8"):
    def quantize(src: Path, out: Path, calib) -> None:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(src, out, op_types_to_quantize=list(ops), per_channel=per_channel,
                         reduce_range=reduce_range, weight_type=getattr(QuantType, weight))
    return quantize


def _static_qoperator(ops=("MatMul", "Gemm"), per_channel=True):
    def quantize(src: Path, out: Path, calib) -> None:
        from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

        quantize_static(src, out, _CalibrationReader(calib), quant_format=QuantFormat.QOperator,
                        op_types_to_quantize=list(ops), per_channel=per_channel,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax)
    return quantize


# name → quantizer of the FP32 graph; "int8" and "int8-cpu" are the export's own converters.
VARIANTS = {
    "dynamic LSTM+MatMul+Gemm, s8 weights, per-tensor": _dynamic(),
    "dynamic LSTM+MatMul+Gemm, u8 weights": _dynamic(weight="QUInt8"),
    "dynamic LSTM+MatMul+Gemm, per-channel": _dynamic(per_channel=True),
    "dynamic LSTM+MatMul+Gemm, reduce_range": _dynamic(reduce_range=True),
    "dynamic LSTM+MatMul+Gemm, per-channel, reduce_range": _dynamic(per_channel=True, reduce_range=True),
    "dynamic LSTM only": _dynamic(ops=["LSTM"]),
    "dynamic MatMul+Gemm only": _dynamic(ops=["MatMul", "Gemm"]),
    "static QOperator MatMul+Gemm (u8 activations)": _static_qoperator(),
}


def variants(model: torch.nn.Module, calib: dict) -> dict[str, bytes]:
    """Serialized graphs: fp32, the export's int8 (TensorRT Q/DQ) and int8-cpu, then VARIANTS."""
    fp32 = to_onnx(model)
    graphs = {key: to_bytes(convert(onnx.load_from_string(to_bytes(fp32)), PRECISIONS[key], calib))
              for key in ("fp32", "int8", "int8-cpu")}
    with tempfile.TemporaryDirectory() as tmp, _quiet_root_logger():
        src = Path(tmp) / "fp32.onnx"
        onnx.save(fp32, src)
        for name, quantize in VARIANTS.items():
            out = Path(tmp) / "q.onnx"
            quantize(src, out, calib)
            graphs[name] = to_bytes(stamp(lean(onnx.load(out)), {}))  # the quantizer renames the producer
    return graphs


def save_variants(folder: Path, graphs: dict[str, bytes], judged_against) -> None:
    """<slug>.onnx per variant, variants.json (slug → name) and reference.npz."""
    folder.mkdir(parents=True, exist_ok=True)
    names = {}
    for key, graph in graphs.items():
        slug = re.sub(r"[^a-z0-9]+", "-", key.lower()).strip("-")
        (folder / f"{slug}.onnx").write_bytes(graph)
        names[slug] = key
    atomic_write_json(folder / "variants.json", names)
    judged_against.save(folder / "reference.npz")


def p50_ratios(predictors: dict[str, OnnxPredictor], inputs: list[np.ndarray], rounds: int, iters: int) -> dict:
    """Median ms per predictor, all alternating in rounds, and each as a ratio to fp32."""
    times = interleaved_runs({k: functools.partial(p.predict, *inputs) for k, p in predictors.items()},
                             warmup=20, rounds=rounds, iters=iters)
    p50 = {k: statistics.median(v) for k, v in times.items()}
    return {k: {"p50_ms": v, "ratio": v / p50["fp32"]} for k, v in p50.items()}


def measure(name: str, model: torch.nn.Module, args) -> list[dict]:
    data = synthetic(model.config.preset, n=(args.calib_samples, 229, 1), seed=0)
    calib = {m: data["train"][m] for m in MODALITIES}
    graphs = variants(model, calib)
    judged_against = reference(model, data["valid"])
    if args.save:
        save_variants(Path(args.save) / name, graphs, judged_against)
    rows = {}
    for key, graph in graphs.items():
        # every variant against the int8 gates; fp32 against its own
        report = validate(graph, PRECISIONS["fp32" if key == "fp32" else "int8-cpu"], model, data["valid"], log=lambda _: None,
                          ref=judged_against)
        checks = {c["check"]: c["value"] for c in report["checks"]}
        rows[key] = {
            "model": name, "artifact": key, "nodes": len(onnx.load_from_string(graph).graph.node),
            "size_mb": len(graph) / 1e6, "passed_int8_gates": report["passed"],
            "max_abs": max(v for k, v in checks.items() if k.endswith("max_abs")),
            "sqnr_db": checks["validation set sqnr_db"], "mae_delta": checks["validation set |Δ MAE|"],
            "acc2_delta": max(checks["validation set |Δ Has0_acc_2|"], checks["validation set |Δ Non0_acc_2|"]),
        }
    predictors = {k: OnnxPredictor.from_bytes(g, f"{k}.onnx", providers=["CPUExecutionProvider"], threads=1)
                  for k, g in graphs.items()}
    valid = data["valid"]
    for batch, iters in ((1, args.iters), (64, max(1, args.iters // 20))):
        inputs = [np.ascontiguousarray(valid[m][:batch]) for m in MODALITIES]
        for key, t in p50_ratios(predictors, inputs, args.rounds, iters).items():
            rows[key][f"b{batch}_p50_ms"], rows[key][f"b{batch}_ratio"] = t["p50_ms"], t["ratio"]
    return list(rows.values())


def markdown(rows: list[dict]) -> str:
    lines = ["| model | artifact | nodes | MB | b1 p50 ms | b1 / fp32 | b64 p50 ms | b64 / fp32 | max abs err | SQNR dB "
             "| Δ MAE | Δ Acc-2 | int8 gates |", "|" + "---|" * 13]
    for r in rows:
        lines.append(f"| {r['model']} | {r['artifact']} | {r['nodes']} | {r['size_mb']:.2f} | {r['b1_p50_ms']:.3f} "
                     f"| {r['b1_ratio']:.2f} | {r['b64_p50_ms']:.2f} | {r['b64_ratio']:.2f} | {r['max_abs']:.2g} "
                     f"| {r['sqnr_db']:.1f} | {r['mae_delta']:.1e} | {r['acc2_delta']:.4f} "
                     f"| {'✓' if r['passed_int8_gates'] else '✗'} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", action="append", default=[], metavar="MODEL=PATH",
                        help="a trained checkpoint per model (default: mimic and misa with fresh weights)")
    parser.add_argument("--rounds", type=int, default=10, help="alternating rounds (default: 10)")
    parser.add_argument("--iters", type=int, default=200, help="batch-1 runs per round; batch 64: 1/20 (default: 200)")
    parser.add_argument("--calib-samples", type=int, default=256, help="int8 (TensorRT) calibration (default: 256)")
    parser.add_argument("--json", metavar="FILE", help="write the rows and the machine")
    parser.add_argument("--save", metavar="DIR", help="also write the variants and the reference (benchmarks/export/int8_isa.py)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    models = dict(c.split("=", 1) for c in args.checkpoint) or {"mimic": None, "misa": None}
    rows = []
    for name, path in models.items():
        torch.manual_seed(0)
        model = (load_checkpoint(path) if path else build_model(name)).eval()
        rows += measure(name, model, args)
        print(markdown([r for r in rows if r["model"] == name]), file=sys.stderr)
    print(markdown(rows))
    if args.json:
        atomic_write_json(args.json, {
            "machine": {**machine_info("cpu"), "load_average_1min_at_end": os.getloadavg()[0]},
            "threads": 1, "checkpoints": models, "calib_length_fractions": CALIB_LENGTH_FRACTIONS, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
