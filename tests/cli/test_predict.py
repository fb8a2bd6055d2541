"""`mimic-edge predict`: the runtime's scores for the samples in a file, as text or JSON."""
import json
import re
import subprocess
import sys

import numpy as np
import pytest

from mimic_edge.cli import main
from mimic_edge.data import synthetic
from mimic_edge.runtime import load


@pytest.fixture(scope="module")
def samples_npz(tmp_path_factory):
    test = synthetic("mosi", n=(1, 1, 7), seed=4)["test"]
    path = tmp_path_factory.mktemp("predict") / "samples.npz"
    np.savez(path, **test)  # also carries labels and ids: extra arrays are ignored
    return path


def expected_scores(model, npz):
    x = np.load(npz)
    return load(model).predict(x["text"], x["audio"], x["vision"])


@pytest.mark.parametrize("kind", ["int8", "checkpoint"])
def test_prints_one_line_per_sample(artifacts, samples_npz, capsys, kind):
    model = artifacts.checkpoint if kind == "checkpoint" else artifacts.onnx(kind)
    assert main(["predict", "--model", str(model), "--input", str(samples_npz)]) == 0
    printed = np.array([[float(v) for v in line.split()] for line in capsys.readouterr().out.splitlines()], np.float32)
    np.testing.assert_array_equal(printed, expected_scores(model, samples_npz))


def test_json(artifacts, samples_npz, capsys):
    model = artifacts.onnx("int8")
    assert main(["predict", "--model", str(model), "--input", str(samples_npz), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"] == str(model) and report["backend"] == "onnxruntime"
    np.testing.assert_array_equal(np.array(report["scores"], np.float32), expected_scores(model, samples_npz))


@pytest.mark.parametrize("case, message", [
    ("model", "error: .*garbage.onnx: expected an ONNX model, found a corrupt or foreign file"),
    ("input", r"error: .*missing array\(s\) \['vision'\]"),
    ("dims", "error: text: expected feature dim 300, found 768"),
])
def test_errors_are_one_line_without_traceback(artifacts, tmp_path, case, message):
    model, npz = artifacts.onnx("int8"), tmp_path / "in.npz"
    dims = {"text": 768 if case == "dims" else 300, "audio": 74, "vision": 47}
    arrays = {m: np.zeros((2, 5, d), np.float32) for m, d in dims.items()}
    np.savez(npz, **{m: a for m, a in arrays.items() if case != "input" or m != "vision"})
    if case == "model":
        model = tmp_path / "garbage.onnx"
        model.write_bytes(b"\x08\x07garbage")
    result = subprocess.run([sys.executable, "-m", "mimic_edge.cli", "predict", "--model", str(model),
                             "--input", str(npz)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr
    assert re.search(rf"^mimic-edge predict: {message}", result.stderr), result.stderr
