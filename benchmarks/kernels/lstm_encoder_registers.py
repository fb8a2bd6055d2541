"""Registers, spills and shared memory of the BiLSTM recurrence kernel (kernels/lstm.py) for
its GPU launch setting (GPU_BLOCK_B samples, GPU_WARPS warps) or others, compiled for GPU
architectures on any machine, no GPU needed: Triton compiles to a cubin, ptxas allocates the
registers, cuobjdump reads the resource usage. How the launch setting was chosen; rerun it
after changing the kernel.

    python benchmarks/kernels/lstm_encoder_registers.py                  # the launch setting, sm_87 (Jetson Orin) and sm_90
    python benchmarks/kernels/lstm_encoder_registers.py --arch 90 --blocks 16,32,64 --warps 2,4,8   # the alternatives
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import sys

from mimic_edge.bench.kernel_bench import DOT_PRECISIONS as PRECISIONS, compiled_usage


def resource_usage(kernel, arch: int, dtype: str, precision: str, block_b: int, hidden: int,
                   num_warps: int, lengths: bool) -> dict:
    """Registers per thread, stack bytes per thread (spills), shared memory bytes per program."""
    constants = {"BLOCK_B": block_b, "H": hidden, "UPCAST": False, "PRECISION": precision,
                 "HAS_N0": lengths, "HAS_N1": lengths, "HAS_N2": lengths}
    if not lengths:
        constants.update(N0=None, N1=None, N2=None)

    def kind(name: str) -> str:  # pointers are capitalised in the signature, integers are not
        if name in constants:
            return "constexpr"
        if name[0] == "N":
            return "*i64"  # lengths as the data loader gives them
        return f"*{dtype}" if name[0].isupper() else "i32"

    signature = {name: kind(name) for name in kernel.arg_names}
    return compiled_usage(kernel, signature, constants, arch, num_warps, num_stages=1)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  python benchmarks/kernels/lstm_encoder_registers.py\n"
               "  python benchmarks/kernels/lstm_encoder_registers.py --arch 90 --blocks 16 --dtypes fp32 --warps 1,2,4")
    parser.add_argument("--arch", default="87,90", type=lambda t: [int(a) for a in t.split(",")],
                        help="compute capabilities × 10 (87: Jetson Orin, 90: H100/H200)")
    parser.add_argument("--blocks", default=None, type=lambda t: [int(b) for b in t.split(",")],
                        help="BLOCK_B values to try (default: the launch setting's)")
    parser.add_argument("--warps", default=None, type=lambda t: [int(w) for w in t.split(",")],
                        help="num_warps values to try (default: the launch setting's)")
    parser.add_argument("--dtypes", default=",".join(PRECISIONS), type=lambda t: t.split(","),
                        help=f"among {', '.join(PRECISIONS)} (fp32: 3×TF32 dots, tf32: TF32 dots)")
    parser.add_argument("--hidden", type=int, default=32, help="LSTM hidden size per direction (MIMIC: 32)")
    parser.add_argument("--lengths", default="both", choices=("both", "yes", "no"),
                        help="the kernel's variants with per-sample lengths, without, or both")
    parser.add_argument("--json", default=None, help="also write the rows and versions to this JSON file")
    args = parser.parse_args(argv)
    unknown = [d for d in args.dtypes if d not in PRECISIONS]
    if unknown:
        parser.error(f"unknown dtype(s) {unknown}: expected some of {list(PRECISIONS)}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ["TRITON_INTERPRET"] = "0"  # compile for real: before the kernel is defined
    os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")  # Triton 3.9's default, without its warning
    import torch
    import triton

    from mimic_edge.kernels import lstm  # after TRITON_INTERPRET is set

    rows = []
    print("arch    BLOCK_B  warps  dtype  lengths  registers  stack B  shared B")
    for arch in args.arch:
        for block_b in args.blocks or [lstm.GPU_BLOCK_B]:
            for num_warps in args.warps or [lstm.GPU_WARPS]:
                for name in args.dtypes:
                    for lengths in {"both": (True, False), "yes": (True,), "no": (False,)}[args.lengths]:
                        dtype, precision = PRECISIONS[name]
                        usage = resource_usage(lstm._bilstm_kernel, arch, dtype, precision, block_b, args.hidden,
                                               num_warps, lengths)
                        rows.append({"arch": f"sm_{arch}", "block_b": block_b, "num_warps": num_warps, "dtype": name,
                                     "hidden": args.hidden, "lengths": lengths, **usage})
                        print(f"sm_{arch} {block_b:>10} {num_warps:>6}  {name:<5}  {str(lengths):<7} "
                              f"{usage['registers']:>10} {usage['stack']:>8} {usage['shared']:>9}", flush=True)
    if args.json:
        record = {"kernel": "mimic_edge.kernels.lstm._bilstm_kernel", "command": " ".join(["python", *sys.argv]),
                  "triton": triton.__version__, "torch": torch.__version__, "python": sys.version.split()[0],
                  "date": datetime.date.today().isoformat(),
                  "launch_setting": {"block_b": lstm.GPU_BLOCK_B, "num_warps": lstm.GPU_WARPS}, "rows": rows}
        with open(args.json, "w") as f:
            json.dump(record, f, indent=1)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
