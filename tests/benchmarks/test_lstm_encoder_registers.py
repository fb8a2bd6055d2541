"""The BiLSTM kernel's GPU launch setting compiles for sm_87 and sm_90 without spilling (no GPU needed)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

triton = pytest.importorskip("triton", reason="compiles the Triton kernel")
SCRIPT = Path(__file__).parents[2] / "benchmarks" / "kernels" / "lstm_encoder_registers.py"


@pytest.mark.slow  # compiles 16 kernels: ~40 s on a 2-core CPU without Triton's cache
@pytest.mark.skipif(not (Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump").exists(),
                    reason="this triton build ships no cuobjdump")
def test_launch_setting_fits_in_registers():
    args = ["--arch", "87,90", "--dtypes", "fp32,tf32,fp16,bf16"]
    result = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=600,
                            env={**os.environ, "TRITON_INTERPRET": "0"})
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [line.split() for line in result.stdout.splitlines()[1:]]
    assert len(rows) == 16, result.stdout  # 2 archs × 4 dtypes × with and without lengths
    for arch, block_b, warps, dtype, lengths, registers, stack, shared in rows:
        assert int(stack) == 0, f"{arch} BLOCK_B {block_b} {dtype}: {stack} B of spills ({registers} registers)"
        assert int(shared) <= 99 * 1024, f"{arch} {dtype}: {shared} B of shared memory"  # sm_86/87's per-block opt-in max
