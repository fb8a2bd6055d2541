"""The C++ ONNX Runtime example, built with CMake and run on the session's artifacts: its scores
equal the Python runtime's, and bad inputs end in one clear error line.

ONNX Runtime's C/C++ headers come from examples/cpp/ort/fetch_onnxruntime.sh (Debian 13's
libonnxruntime-dev, unpacked, plus the onnxruntime wheel's library), or from ONNXRUNTIME_ROOT.
"""
import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from cpp_example import BAD_INPUTS, cmake_build, parse_scores, run, write_npy

from mimic_edge.export.precisions import PRECISIONS
from mimic_edge.runtime import load, write_inputs

pytestmark = pytest.mark.slow  # builds the example with CMake (and fetches ONNX Runtime's headers once)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cpp" / "ort"
# Same library, same graph optimisations, same inputs: equal but for the summation order that thread
# counts choose, held to the fp32 bound of export/precisions.py (measured: equal to the last bit).
ATOL = PRECISIONS["fp32"].thresholds.max_abs


@pytest.fixture(scope="module")
def mimic_ort(tmp_path_factory):
    root = os.environ.get("ONNXRUNTIME_ROOT")
    if not root:
        fetch = run(["bash", EXAMPLE / "fetch_onnxruntime.sh"], env={**os.environ, "PYTHON": sys.executable})
        if fetch.returncode:
            pytest.skip(f"ONNX Runtime C++ headers unavailable: fetch_onnxruntime.sh failed: {fetch.stderr.strip()[-500:]}")
        root = EXAMPLE / "third_party" / "onnxruntime"
    build = tmp_path_factory.mktemp("build-ort")
    cmake_build(EXAMPLE, build, f"-DONNXRUNTIME_ROOT={root}")
    return build / "mimic_ort"


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8", "int8-cpu"])
def test_cpp_scores_equal_python(mimic_ort, artifacts, samples, tmp_path, precision):
    write_inputs(tmp_path / "in", samples)
    result = run([mimic_ort, artifacts.onnx(precision), tmp_path / "in"])
    assert result.returncode == 0, result.stderr
    cpp = parse_scores(result.stdout)
    python = load(artifacts.onnx(precision)).predict(samples["text"], samples["audio"], samples["vision"])
    assert cpp.shape == python.shape == (6, 1)
    diff = np.abs(cpp - python)
    assert diff.max() <= ATOL, f"{precision}: C++ vs Python max abs diff {diff.max():.3g} at sample {diff.argmax()}"


def test_cpp_bench_reports_batch1_latency(mimic_ort, artifacts, samples, tmp_path):
    write_inputs(tmp_path / "in", samples)
    result = run([mimic_ort, artifacts.onnx("fp32"), tmp_path / "in", "--bench", "10"])
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 6
    assert re.search(r"batch-1 latency \(ONNX Runtime C\+\+\): p50 [0-9.]+ ms, p99 [0-9.]+ ms over 10 runs", result.stderr)


def _rank(x):
    x["audio"] = x["audio"][0]


@pytest.mark.parametrize("change, message", BAD_INPUTS + [
    (_rank, r"audio.npy: expected rank 3 \(batch, seq_len, dim\), found rank 2"),
])
def test_cpp_bad_inputs(mimic_ort, artifacts, samples, tmp_path, change, message):
    x = dict(samples)
    change(x)
    write_npy(tmp_path, x)
    result = run([mimic_ort, artifacts.onnx("fp32"), tmp_path])
    assert result.returncode == 1 and result.stdout == ""
    assert re.fullmatch(rf"mimic_ort: error: .*{message}.*\n", result.stderr), result.stderr


def test_cpp_bad_files(mimic_ort, artifacts, samples, tmp_path):
    write_inputs(tmp_path / "in", samples)
    np.save(tmp_path / "in" / "audio.npy", samples["audio"].astype(np.float64))
    result = run([mimic_ort, artifacts.onnx("fp32"), tmp_path / "in"])
    assert result.returncode == 1 and "audio.npy: expected dtype float32 ('<f4'), found '<f8'" in result.stderr

    write_inputs(tmp_path / "in", samples)
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(artifacts.onnx("fp32").read_bytes()[:100_000])
    result = run([mimic_ort, truncated, tmp_path / "in"])
    assert result.returncode == 1 and result.stderr.startswith("mimic_ort: error: ") and "Protobuf parsing failed" in result.stderr

    result = run([mimic_ort, artifacts.onnx("fp32")])
    assert result.returncode == 2 and result.stderr.startswith("usage: ")
