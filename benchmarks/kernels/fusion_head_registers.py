"""Registers, spills and shared memory of the fused head's kernel for each GPU launch
configuration (kernels/fused_head.py, _GPU_LAUNCH), compiled for a GPU architecture on any
machine, no GPU needed: Triton compiles to a cubin, cuobjdump reads its resource usage.
How the launch table was chosen; rerun it after changing the kernel.

    python benchmarks/kernels/fusion_head_registers.py              # sm_90 (H100, H200)
    python benchmarks/kernels/fusion_head_registers.py --arch 80    # sm_80 (A100)
"""
from __future__ import annotations

import argparse
import os
import sys

from mimic_edge.bench.kernel_bench import DOT_PRECISIONS as PRECISIONS, compiled_usage


def resource_usage(kernel, arch: int, dtype: str, precision: str, block_b: int, factorized: bool,
                   q: int, num_warps: int, num_stages: int) -> dict:
    """Registers per thread, stack bytes per thread (spills) and shared memory bytes per program."""
    constants = {"BLOCK_B": block_b, "FACTORIZED": factorized, "Q": q, "UPCAST": False, "PRECISION": precision}
    # pointers are capitalised in the kernel's signature, integers (strides, batch) are not
    signature = {name: "constexpr" if name in constants else ("i32" if name[0].islower() else f"*{dtype}")
                 for name in kernel.arg_names}
    return compiled_usage(kernel, signature, constants, arch, num_warps, num_stages)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  python benchmarks/kernels/fusion_head_registers.py\n"
               "  python benchmarks/kernels/fusion_head_registers.py --arch 80 --blocks 16 --dtypes fp32,bf16")
    parser.add_argument("--arch", type=int, default=90, help="compute capability × 10 (90: sm_90)")
    parser.add_argument("--blocks", default="16,32,64", type=lambda t: [int(b) for b in t.split(",")],
                        help="BLOCK_B values of the launch table")
    parser.add_argument("--dtypes", default=",".join(PRECISIONS), type=lambda t: t.split(","),
                        help=f"among {', '.join(PRECISIONS)} (fp32: 3×TF32 dots, tf32: TF32 dots)")
    parser.add_argument("--algorithms", default="factorized,direct", type=lambda t: t.split(","))
    args = parser.parse_args(argv)

    os.environ["TRITON_INTERPRET"] = "0"  # compile for real: before the kernel is defined
    os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")  # Triton 3.9's default, without its warning
    from mimic_edge.kernels import fused_head as fused  # after TRITON_INTERPRET is set
    print(f"sm_{args.arch}: BLOCK_B  Q  warps  stages  dtype  algorithm    registers  stack B  shared B")
    for block_b in args.blocks:
        q, num_warps, num_stages = fused._GPU_LAUNCH[block_b]
        for name in args.dtypes:
            dtype, precision = PRECISIONS[name]
            for algorithm in args.algorithms:
                usage = resource_usage(fused._fusion_head_kernel, args.arch, dtype, precision, block_b,
                                       algorithm == "factorized", q, num_warps, num_stages)
                print(f"{block_b:>14} {q:>2} {num_warps:>6} {num_stages:>7}  {name:<5}  {algorithm:<11} "
                      f"{usage['registers']:>10} {usage['stack']:>8} {usage['shared']:>9}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
