"""benchmarks/kernels/fusion_head.py without a GPU, and its speed-target arithmetic."""
import importlib.util
from pathlib import Path

import pytest
import torch

_spec = importlib.util.spec_from_file_location(
    "fusion_head_benchmark", Path(__file__).parents[2] / "benchmarks" / "kernels" / "fusion_head.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


@pytest.mark.skipif(torch.cuda.is_available(), reason="the no-GPU path")
def test_without_gpu_says_so_and_exits_0(tmp_path, capsys):
    out = tmp_path / "fusion_head.json"
    assert bench.main(["--out", str(out)]) == 0
    assert "no CUDA GPU" in capsys.readouterr().out
    assert not out.exists()


def test_unknown_dtype_is_a_usage_error():
    with pytest.raises(SystemExit):
        bench.parse_args(["--dtypes", "fp32,fp8"])


def row(provider, batch, p50_us, dtype="fp32"):
    return {"dtype": dtype, "provider": provider, "batch_size": batch, "p50_us": p50_us, "status": "ok"}


def test_targets_compare_the_factorized_kernel_with_each_baseline():
    rows = [row("eager", 1024, 100.0), row("compiled", 1024, 30.0), row("triton-factorized", 1024, 20.0),
            row("triton-factorized", 1, 9.0), row("eager", 64, 50.0), row("triton-factorized", 64, 1.0)]
    checks = {(c["batch_size"], c["target"]): (round(c["ratio"], 6), c["met"]) for c in bench.targets(rows, 4.0)}
    assert checks == {
        (1024, ">= 5.0x faster than eager"): (5.0, True),
        (1024, ">= 1.5x faster than compiled"): (1.5, True),
        (1, "<= 2x an empty Triton launch"): (2.25, False),
    }  # B = 64 has no target


def test_skipped_rows_count_for_no_target():
    rows = [row("eager", 1024, 100.0), {**row("triton-factorized", 1024, 1.0), "status": "skipped: time budget"}]
    assert bench.targets(rows, None) == []


def test_the_projects_kernels_are_timed_before_the_baselines():
    """A budget spent on cold torch.compile runs must cut the baselines, not the kernels."""
    assert [p.startswith("triton") for p in bench.PROVIDERS] == [True, True, False, False]
    lstm = importlib.util.spec_from_file_location("lstm_bench", Path(__file__).parents[2] / "benchmarks" / "kernels" / "lstm_encoder.py")
    module = importlib.util.module_from_spec(lstm)
    lstm.loader.exec_module(module)
    assert module.MODEL_PROVIDERS.index("triton") < module.MODEL_PROVIDERS.index("compiled")
