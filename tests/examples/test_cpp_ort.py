"""The C++ ONNX Runtime example, built with CMake and run on the session's artifacts: its scores
equal the Python runtime's, and bad inputs end in one clear error line.

ONNX Runtime's C/C++ headers come from examples/cpp/ort/fetch_onnxruntime.sh (Debian 13's
libonnxruntime-dev, unpacked, plus the onnxruntime wheel's library), or from ONNXRUNTIME_ROOT.
"""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mimic_edge.data import synthetic
from mimic_edge.runtime import load, write_inputs

pytestmark = pytest.mark.slow  # builds the example with CMake (and fetches ONNX Runtime's headers once)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cpp" / "ort"
# Same library, same graph optimisations, same inputs: the scores agree to float32 rounding of
# summation order (measured: equal to the last bit on a 2-core x86_64 CPU).
ATOL = 1e-6


def _run(cmd, **kw):
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=300, **kw)


@pytest.fixture(scope="module")
def mimic_ort(tmp_path_factory):
    missing = [tool for tool in ("cmake", "c++") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"building the C++ example needs {' and '.join(missing)} on PATH")
    root = os.environ.get("ONNXRUNTIME_ROOT")
    if not root:
        fetch = _run(["bash", EXAMPLE / "fetch_onnxruntime.sh"], env={**os.environ, "PYTHON": sys.executable})
        if fetch.returncode:
            pytest.skip(f"ONNX Runtime C++ headers unavailable: fetch_onnxruntime.sh failed: {fetch.stderr.strip()[-500:]}")
        root = EXAMPLE / "third_party" / "onnxruntime"
    build = tmp_path_factory.mktemp("build-ort")
    configure = _run(["cmake", "-S", EXAMPLE, "-B", build, f"-DONNXRUNTIME_ROOT={root}"])
    assert configure.returncode == 0, configure.stdout + configure.stderr
    compiled = _run(["cmake", "--build", build, "-j", "2"])
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    return build / "mimic_ort"


@pytest.fixture(scope="module")
def samples():
    """6 synthetic samples with unaligned lengths: text 50 steps, audio 20, vision 35."""
    test = synthetic("mosi", n=(1, 1, 6), seed=5)["test"]
    return {"text": test["text"], "audio": test["audio"][:, :20], "vision": test["vision"][:, 15:]}


def parse_scores(stdout):
    return np.array([[float(v) for v in line.split()] for line in stdout.splitlines()], dtype=np.float32)


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8", "int8-cpu"])
def test_cpp_scores_equal_python(mimic_ort, artifacts, samples, tmp_path, precision):
    write_inputs(tmp_path / "in", samples)
    result = _run([mimic_ort, artifacts.onnx(precision), tmp_path / "in"])
    assert result.returncode == 0, result.stderr
    cpp = parse_scores(result.stdout)
    python = load(artifacts.onnx(precision)).predict(samples["text"], samples["audio"], samples["vision"])
    assert cpp.shape == python.shape == (6, 1)
    diff = np.abs(cpp - python)
    assert diff.max() <= ATOL, f"{precision}: C++ vs Python max abs diff {diff.max():.3g} at sample {diff.argmax()}"


def test_cpp_bench_reports_batch1_latency(mimic_ort, artifacts, samples, tmp_path):
    write_inputs(tmp_path / "in", samples)
    result = _run([mimic_ort, artifacts.onnx("fp32"), tmp_path / "in", "--bench", "10"])
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 6
    assert re.search(r"batch-1 latency \(ONNX Runtime C\+\+\): p50 [0-9.]+ ms, p99 [0-9.]+ ms over 10 runs", result.stderr)


def _wrong_dim(x):
    x["vision"] = x["vision"][..., :46]


def _nan(x):
    x["text"] = x["text"].copy()
    x["text"][2, 4, 6] = np.nan


def _batch(x):
    x["audio"] = x["audio"][:5]


def _rank(x):
    x["audio"] = x["audio"][0]


@pytest.mark.parametrize("change, message", [
    (_wrong_dim, r"vision: expected feature dim 47, found 46"),
    (_nan, r"text.npy: found NaN or Inf values"),
    (_batch, r"audio.npy: batch sizes differ: expected 6, found 5"),
    (_rank, r"audio.npy: expected rank 3 \(batch, seq_len, dim\), found rank 2"),
])
def test_cpp_bad_inputs(mimic_ort, artifacts, samples, tmp_path, change, message):
    x = dict(samples)
    change(x)
    for m, a in x.items():
        np.save(tmp_path / f"{m}.npy", np.ascontiguousarray(a, np.float32))
    result = _run([mimic_ort, artifacts.onnx("fp32"), tmp_path])
    assert result.returncode == 1 and result.stdout == ""
    assert re.fullmatch(rf"mimic_ort: error: .*{message}.*\n", result.stderr), result.stderr


def test_cpp_bad_files(mimic_ort, artifacts, samples, tmp_path):
    write_inputs(tmp_path / "in", samples)
    np.save(tmp_path / "in" / "audio.npy", samples["audio"].astype(np.float64))
    result = _run([mimic_ort, artifacts.onnx("fp32"), tmp_path / "in"])
    assert result.returncode == 1 and "audio.npy: expected dtype float32 ('<f4'), found '<f8'" in result.stderr

    write_inputs(tmp_path / "in", samples)
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(artifacts.onnx("fp32").read_bytes()[:100_000])
    result = _run([mimic_ort, truncated, tmp_path / "in"])
    assert result.returncode == 1 and result.stderr.startswith("mimic_ort: error: ") and "Protobuf parsing failed" in result.stderr

    result = _run([mimic_ort, artifacts.onnx("fp32")])
    assert result.returncode == 2 and result.stderr.startswith("usage: ")
