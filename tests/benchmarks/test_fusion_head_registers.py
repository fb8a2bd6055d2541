"""The fused head's GPU launch configurations compile for sm_90 without spilling (no GPU needed)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

triton = pytest.importorskip("triton", reason="compiles the Triton kernel")
SCRIPT = Path(__file__).parents[2] / "benchmarks" / "kernels" / "fusion_head_registers.py"


@pytest.mark.slow  # compiles 4 kernels for sm_90: 10-36 s on a 2-core CPU without Triton's cache
@pytest.mark.skipif(not (Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump").exists(),
                    reason="this triton build ships no cuobjdump")
def test_launch_configurations_fit_in_registers():
    # the heaviest entries of the launch table: fp32 (3×TF32 dots) at 16 and 64 samples
    args = ["--arch", "90", "--blocks", "16,64", "--dtypes", "fp32", "--algorithms", "factorized,direct"]
    result = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "TRITON_INTERPRET": "0"})
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [line.split() for line in result.stdout.splitlines()[1:]]
    assert len(rows) == 4, result.stdout
    for block_b, q, warps, stages, dtype, algorithm, registers, stack, shared in rows:
        assert int(stack) == 0, f"BLOCK_B {block_b} {algorithm}: {stack} B of spills ({registers} registers)"
