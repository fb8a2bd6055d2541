"""benchmarks/kernels/lstm_encoder.py without a GPU, its options, and its target arithmetic."""
import importlib.util
from pathlib import Path

import pytest
import torch

_spec = importlib.util.spec_from_file_location(
    "lstm_encoder_benchmark", Path(__file__).parents[2] / "benchmarks" / "kernels" / "lstm_encoder.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


@pytest.mark.skipif(torch.cuda.is_available(), reason="the no-GPU path")
def test_without_gpu_says_so_and_exits_0(tmp_path, capsys):
    out = tmp_path / "lstm_encoder.json"
    assert bench.main(["--out", str(out)]) == 0
    assert "no CUDA GPU" in capsys.readouterr().out
    assert not out.exists()


@pytest.mark.parametrize("argv", [["--dtypes", "fp32,fp8"], ["--parts", "encoder,head"],
                                  ["--model-providers", "eager,tensorrt"]])
def test_unknown_values_are_usage_errors(argv):
    with pytest.raises(SystemExit):
        bench.parse_args(argv)


def test_defaults_cover_the_issue_batch_sizes():
    args = bench.parse_args([])
    assert args.batch_sizes == [1, 8, 64, 1024] and args.parts == ["encoder", "model"]
    assert args.model_providers == ["eager", "triton", "compiled", "triton-compiled"]


def row(provider, batch, p50_us, status="ok"):
    return {"part": "model", "dtype": "fp32", "provider": provider, "batch_size": batch, "p50_us": p50_us,
            "status": status}


def test_targets_at_batch_1():
    rows = [row("eager", 1, 900.0), row("triton", 1, 300.0), row("triton-compiled", 1, 80.0),
            row("triton", 8, 1.0), {**row("eager", 1, 1.0), "part": "encoder"}]
    checks = {(c["provider"], c["target"]): c["met"] for c in bench.targets(rows)}
    assert checks == {
        ("triton", "<= 100 us (p50)"): False, ("triton", "faster than eager (cuDNN)"): True,
        ("triton-compiled", "<= 100 us (p50)"): True, ("triton-compiled", "faster than eager (cuDNN)"): True,
    }


def test_skipped_rows_count_for_no_target():
    assert bench.targets([row("eager", 1, 900.0), row("triton", 1, 1.0, "skipped: time budget")]) == []
