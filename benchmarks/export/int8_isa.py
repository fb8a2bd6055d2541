"""INT8 across CPU instruction sets: the graphs benchmarks/export/int8_cpu.py saved (`--save DIR`), judged
on this CPU against the PyTorch scores computed where they were made, with the int8 gates
(mimic_edge.export.judge). Torch-free, so that it runs on any CPU the runtime runs on, emulated
ones included (docs/export.md, "INT8 on CPUs"):

    .venv/bin/python benchmarks/export/int8_isa.py DIR --json native.json
    qemu-x86_64 -cpu Haswell .venv/bin/python benchmarks/export/int8_isa.py DIR --json avx2.json
    PYTHONPATH=PACKAGE:SITE qemu-aarch64 -L ROOT ROOT/usr/bin/python3.11 benchmarks/export/int8_isa.py DIR --json arm.json

(ROOT, SITE: an arm64 root and its wheels, as tests/cross/make_aarch64_root.sh makes them;
PACKAGE: mimic_edge laid out as installed, as tests/cross/conftest.py copies it.)

The TensorRT Q/DQ graph ("int8") is judged twice: as the runtime runs it (Q/DQ in float, TensorRT's
math) and by ONNX Runtime's integer kernels of this CPU ("int8, integer kernels").
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import onnxruntime

from mimic_edge.export.precisions import get_precision
from mimic_edge.export.judge import Reference, judge, predictor_runner
from mimic_edge.io import atomic_write_json
from mimic_edge.runtime.host import cpu_name, int8_isa
from mimic_edge.runtime.onnx_predictor import OnnxPredictor


def judge_folder(folder: Path) -> list[dict]:
    names = json.loads((folder / "variants.json").read_text())
    judged_against = Reference.load(folder / "reference.npz")
    rows = []
    for slug, name in names.items():
        graph = (folder / f"{slug}.onnx").read_bytes()
        for integer_qdq in ((False, True) if name == "int8" else (False,)):
            predictor = OnnxPredictor.from_bytes(graph, f"{slug}.onnx", providers=["CPUExecutionProvider"],
                                                 allow_foreign=True, integer_qdq=integer_qdq)
            precision = "fp32" if name == "fp32" else "int8-cpu"  # the int8 gates for every int8 variant
            report = judge(predictor_runner(predictor), judged_against, get_precision(precision).thresholds,
                           precision, log=lambda _: None)
            checks = {c["check"]: c["value"] for c in report["checks"]}
            rows.append({
                "model": folder.name, "artifact": name + (", integer kernels" if integer_qdq else ""),
                "passed_int8_gates": report["passed"],
                "max_abs": max(v for k, v in checks.items() if k.endswith("max_abs")),
                "sqnr_db": checks["validation set sqnr_db"], "mae_delta": checks["validation set |Δ MAE|"],
                "acc2_delta": max(checks["validation set |Δ Has0_acc_2|"], checks["validation set |Δ Non0_acc_2|"]),
            })
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| model | artifact | max abs err | SQNR dB | Δ MAE | Δ Acc-2 | int8 gates |", "|" + "---|" * 7]
    lines += [f"| {r['model']} | {r['artifact']} | {r['max_abs']:.2g} | {r['sqnr_db']:.1f} | {r['mae_delta']:.1e} "
              f"| {r['acc2_delta']:.4f} | {'✓' if r['passed_int8_gates'] else '✗'} |" for r in rows]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", help="what benchmarks/export/int8_cpu.py --save wrote")
    parser.add_argument("--json", metavar="FILE", help="write the rows and this CPU")
    args = parser.parse_args()
    folders = sorted(p.parent for p in Path(args.folder).glob("*/variants.json"))
    if not folders:
        print(f"int8_isa: expected {args.folder}/<model>/variants.json (benchmarks/export/int8_cpu.py --save), found none",
              file=sys.stderr)
        return 1
    rows = [row for folder in folders for row in judge_folder(folder)]
    machine = {"machine": platform.machine(), "int8_isa": int8_isa(), "cpu": cpu_name(),
               "onnxruntime": onnxruntime.__version__, "python": platform.python_version()}
    print(f"{machine['machine']} ({machine['int8_isa']}), onnxruntime {machine['onnxruntime']}\n")
    print(markdown(rows))
    if args.json:
        atomic_write_json(args.json, {"machine": machine, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
