"""benchmarks/serving/soak.py, short: a few thousand calls from several threads, no error, serial results."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from mimic_edge.runtime import load

_spec = importlib.util.spec_from_file_location("soak_benchmark", Path(__file__).parents[2] / "benchmarks" / "serving" / "soak.py")
soak = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(soak)


@pytest.mark.parametrize("kind", ["fp32", "checkpoint"])
def test_short_soak_has_no_errors_and_serial_results(artifacts, kind):
    path = artifacts.checkpoint if kind == "checkpoint" else artifacts.onnx(kind)
    predictor = load(path, device="cpu", threads=1)
    calls = 2000 if kind == "fp32" else 400  # PyTorch eager is ~10x slower per call
    result = soak.soak(predictor, calls=calls, threads=4)
    assert (result["errors"], result["first_error"], result["mismatches"]) == (0, None, 0)
    assert result["calls"] == calls
    assert result["calls_per_s"] > 0 and result["rss_mb"]["at_10_percent"] is not None  # Linux CI


def test_mismatches_and_errors_are_counted():
    """The soak must see what it exists to see: a predictor that drifts or fails now and then."""
    class Flaky:
        dims = {"text": 3, "audio": 2, "vision": 4}
        calls = 0

        def predict(self, text, audio, vision):
            self.calls += 1
            if self.calls > 32 and self.calls % 10 == 0:
                raise RuntimeError("boom")
            drift = 1.0 if self.calls > 32 and self.calls % 10 == 5 else 0.0  # the first 32: serial results
            return np.full((len(text), 1), text.sum() + drift, np.float32)

    result = soak.soak(Flaky(), calls=200, threads=1)
    assert result["errors"] == result["errors_by_type"]["RuntimeError"] == 20
    assert result["first_error"] == "RuntimeError: boom" and result["mismatches"] == 20
    assert not result["passed"]


def test_command_line_writes_the_result(artifacts, tmp_path, capsys):
    out = tmp_path / "soak.json"
    assert soak.main(["--model", str(artifacts.onnx("fp32")), "--calls", "300", "--threads", "3",
                      "--json", str(out)]) == 0
    assert "300 calls from 3 threads" in capsys.readouterr().out
    result = json.loads(out.read_text())
    assert result["passed"] and result["backend"] == "onnxruntime" and result["metadata"]["precision"] == "fp32"
    assert {"cpu", "cpu_count", "date"} <= set(result["machine"])


def test_bad_counts_are_usage_errors():
    with pytest.raises(SystemExit):
        soak.parse_args(["--threads", "0"])
