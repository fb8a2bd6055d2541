"""The C++ AOTInductor example, built with CMake against the torch wheel's libtorch and run on the
session's package: its scores equal the Python runtime's, and bad inputs end in one clear
error line."""
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mimic_edge.data import synthetic
from mimic_edge.runtime import load, write_inputs

pytestmark = pytest.mark.slow  # compiles the package once (session) and the example against libtorch

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cpp" / "aoti"
# The same compiled package on the same libtorch: equal to the last bit at equal thread counts;
# OpenMP thread counts that differ between the two processes change the GEMMs' summation order
# (measured: 1.5e-8 with C++ on 2 threads, Python on 1).
ATOL = 1e-6


def _run(cmd, **kw):
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=600, **kw)


@pytest.fixture(scope="module")
def mimic_aoti(tmp_path_factory):
    missing = [tool for tool in ("cmake", "c++") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"building the C++ example needs {' and '.join(missing)} on PATH")
    build = tmp_path_factory.mktemp("build-aoti")
    prefix = _run([sys.executable, "-c", "import torch.utils; print(torch.utils.cmake_prefix_path)"], cwd=build)
    assert prefix.returncode == 0, prefix.stderr
    configure = _run(["cmake", "-S", EXAMPLE, "-B", build, f"-DCMAKE_PREFIX_PATH={prefix.stdout.strip()}"])
    assert configure.returncode == 0, configure.stdout + configure.stderr
    compiled = _run(["cmake", "--build", build, "-j", "2"])
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    return build / "mimic_aoti"


@pytest.fixture(scope="module")
def samples():
    """6 synthetic samples with unaligned lengths: text 50 steps, audio 20, vision 35."""
    test = synthetic("mosi", n=(1, 1, 6), seed=5)["test"]
    return {"text": test["text"], "audio": test["audio"][:, :20], "vision": test["vision"][:, 15:]}


def parse_scores(stdout):
    return np.array([[float(v) for v in line.split()] for line in stdout.splitlines()], dtype=np.float32)


def test_cpp_scores_equal_python(mimic_aoti, artifacts, samples, tmp_path):
    write_inputs(tmp_path / "in", samples)
    result = _run([mimic_aoti, artifacts.pt2(), tmp_path / "in"])
    assert result.returncode == 0, result.stderr
    cpp = parse_scores(result.stdout)
    python = load(artifacts.pt2()).predict(samples["text"], samples["audio"], samples["vision"])
    assert cpp.shape == python.shape == (6, 1)
    diff = np.abs(cpp - python)
    assert diff.max() <= ATOL, f"C++ vs Python max abs diff {diff.max():.3g} at sample {diff.argmax()}"


def test_cpp_bench_reports_batch1_latency(mimic_aoti, artifacts, samples, tmp_path):
    write_inputs(tmp_path / "in", samples)
    result = _run([mimic_aoti, artifacts.pt2(), tmp_path / "in", "--bench", "10"], env={"OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 6
    latency = r"batch-1 latency \(AOTInductor C\+\+\): p50 [0-9.]+ ms, p99 [0-9.]+ ms over 10 runs"
    assert re.search(latency, result.stderr), result.stderr


def _wrong_dim(x):
    x["vision"] = x["vision"][..., :46]


def _too_long(x):
    x["audio"] = np.concatenate([x["audio"]] * 6, axis=1)  # 120 steps, the package's range stops at 100


def _nan(x):
    x["text"] = x["text"].copy()
    x["text"][2, 4, 6] = np.nan


def _batch(x):
    x["audio"] = x["audio"][:5]


@pytest.mark.parametrize("change, message", [
    (_wrong_dim, r"vision: expected feature dim 47, found 46"),
    (_too_long, r"audio: seq_len 120 is outside the supported range \[1, 100\]"),
    (_nan, r"text.npy: found NaN or Inf values"),
    (_batch, r"audio.npy: batch sizes differ: expected 6, found 5"),
])
def test_cpp_bad_inputs(mimic_aoti, artifacts, samples, tmp_path, change, message):
    x = dict(samples)
    change(x)
    for m, a in x.items():
        np.save(tmp_path / f"{m}.npy", np.ascontiguousarray(a, np.float32))
    result = _run([mimic_aoti, artifacts.pt2(), tmp_path])
    assert result.returncode == 1 and result.stdout == ""
    assert re.fullmatch(rf"mimic_aoti: error: .*{message}.*\n", result.stderr), result.stderr


def test_cpp_bad_files(mimic_aoti, artifacts, samples, tmp_path):
    write_inputs(tmp_path / "in", samples)
    truncated = tmp_path / "truncated.pt2"
    truncated.write_bytes(artifacts.pt2().read_bytes()[:100_000])
    result = _run([mimic_aoti, truncated, tmp_path / "in"])
    assert result.returncode == 1 and result.stderr.startswith("mimic_aoti: error: "), result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr

    result = _run([mimic_aoti, artifacts.pt2()])
    assert result.returncode == 2 and result.stderr.startswith("usage: ")
