"""examples/python: make_inputs.py writes the inputs, predict.py prints the runtime's scores."""
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mimic_edge.data import synthetic
from mimic_edge.runtime import load, read_inputs

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "python"


def _run(*args):
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def inputs_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")
    result = _run(EXAMPLE / "make_inputs.py", folder, "--n", "5", "--seed", "2")
    assert result.returncode == 0, result.stderr
    return folder


def test_make_inputs_writes_the_synthetic_test_split(inputs_dir):
    want = synthetic("mosi", n=(1, 1, 5), seed=2)["test"]
    got = read_inputs(inputs_dir)
    for m in ("text", "audio", "vision"):
        np.testing.assert_array_equal(got[m], want[m])


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_predict_prints_the_runtime_scores(artifacts, inputs_dir, precision):
    result = _run(EXAMPLE / "predict.py", artifacts.onnx(precision), inputs_dir, "--bench", "5")
    assert result.returncode == 0, result.stderr
    printed = np.array([[float(v) for v in line.split()] for line in result.stdout.splitlines()], np.float32)
    x = read_inputs(inputs_dir)
    np.testing.assert_array_equal(printed, load(artifacts.onnx(precision)).predict(x["text"], x["audio"], x["vision"]))
    assert re.search(r"batch-1 latency \(onnxruntime, Python\): p50 [0-9.]+ ms, p99 [0-9.]+ ms over 5 runs", result.stderr)


def test_predict_reports_a_bad_model_in_one_line(inputs_dir, tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_text("not a model")
    result = _run(EXAMPLE / "predict.py", bad, inputs_dir)
    assert result.returncode == 1 and result.stdout == ""
    assert re.fullmatch(r"predict.py: error: .*bad.onnx: expected an ONNX model, found a corrupt or foreign file .*\n",
                        result.stderr)
