"""What the kernel benchmarks (benchmarks/kernels/) share: GPU timings of a call, the launch floor
of an empty Triton kernel, and the registers, spills and shared memory of a kernel compiled for
a GPU architecture (which needs no GPU). Imported by those scripts, never by the runtime."""
from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time

import torch

# A Triton kernel's dtype and dot precision per benchmark dtype (fp32: 3×TF32 dots, tf32: TF32 dots)
DOT_PRECISIONS = {"fp32": ("fp32", "tf32x3"), "tf32": ("fp32", "tf32"), "fp16": ("fp16", "ieee"),
                  "bf16": ("bf16", "ieee")}


def empty_launch():
    """A no-op Triton kernel on one program: the launch floor a batch-1 target refers to."""
    import triton

    @triton.jit
    def _empty_kernel(X):
        pass

    x = torch.empty(1, device="cuda")
    return lambda: _empty_kernel[(1,)](x)


def gpu_times_us(fn, warmup_ms: int, rep_ms: int) -> list[float]:
    """p20, p50, p80 of the GPU time of fn() in µs (do_bench flushes L2 before each run)."""
    import triton.testing

    return [t * 1e3 for t in triton.testing.do_bench(fn, warmup=warmup_ms, rep=rep_ms, quantiles=[0.2, 0.5, 0.8])]


def host_time_us(fn, gpu_us: float, repeats: int = 5) -> float:
    """Median over repeats of the wall time per call of back-to-back calls (about 20 ms each)."""
    calls = int(min(50, max(5, 20_000 / gpu_us)))
    times = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - start) / calls * 1e6)
    return sorted(times)[len(times) // 2]


def compiled_usage(kernel, signature: dict, constants: dict, arch: int, num_warps: int, num_stages: int) -> dict:
    """`kernel` compiled for sm_`arch` (its argument types in `signature`, the constexpr values in
    `constants`): registers per thread, stack bytes per thread (spills), shared memory bytes."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    source = ASTSource(fn=kernel, signature=signature,
                       constexprs={(kernel.arg_names.index(n),): v for n, v in constants.items()})
    compiled = triton.compile(source, target=GPUTarget("cuda", arch, 32),
                              options={"num_warps": num_warps, "num_stages": num_stages})
    cuobjdump = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "cuobjdump")
    with tempfile.NamedTemporaryFile(suffix=".cubin") as cubin:
        cubin.write(compiled.asm["cubin"])
        cubin.flush()
        report = subprocess.run([cuobjdump, "--dump-resource-usage", cubin.name],
                                capture_output=True, text=True, check=True).stdout
    usage = {key: int(value) for key, value in re.findall(r"\b(REG|STACK):(\d+)", report)}
    return {"registers": usage["REG"], "stack": usage["STACK"], "shared": compiled.metadata.shared}
