"""What the C++ example tests share: running a command, building an example with CMake, the
scores an example prints, and the bad inputs every example refuses with one error line."""
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest


def run(cmd, timeout: int = 600, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, **kw)


def cmake_build(example: Path, build: Path, *defines: str) -> None:
    """Configure and build `example` in `build` (skips where cmake or a C++ compiler is missing)."""
    missing = [tool for tool in ("cmake", "c++") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"building the C++ example needs {' and '.join(missing)} on PATH")
    configure = run(["cmake", "-S", example, "-B", build, *defines])
    assert configure.returncode == 0, configure.stdout + configure.stderr
    compiled = run(["cmake", "--build", build, "-j", "2"])
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr


def parse_scores(stdout: str) -> np.ndarray:
    return np.array([[float(v) for v in line.split()] for line in stdout.splitlines()], dtype=np.float32)


def write_npy(folder: Path, inputs: dict) -> None:
    """One float32 .npy per modality, written as given (no checks: the example's to make)."""
    for m, a in inputs.items():
        np.save(folder / f"{m}.npy", np.ascontiguousarray(a, np.float32))


def _wrong_dim(x):
    x["vision"] = x["vision"][..., :46]


def _nan(x):
    x["text"] = x["text"].copy()
    x["text"][2, 4, 6] = np.nan


def _batch(x):
    x["audio"] = x["audio"][:5]


# (change to the samples, the error an example prints): refused by every example
BAD_INPUTS = [
    (_wrong_dim, r"vision: expected feature dim 47, found 46"),
    (_nan, r"text.npy: found NaN or Inf values"),
    (_batch, r"audio.npy: batch sizes differ: expected 6, found 5"),
]
