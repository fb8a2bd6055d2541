"""The efficiency table: best backend at batch 1, FLOP shares, training runs read back."""
import pytest

from mimic_edge.bench.efficiency import efficiency_markdown, efficiency_rows, read_run
from mimic_edge.data import synthetic
from mimic_edge.errors import ConfigError
from mimic_edge.train import TrainConfig, train


def bench_row(backend, p50, status="ok", batch=1):
    return {"model": "mimic", "preset": "mosi", "backend": backend, "device": "cpu", "batch_size": batch,
            "params": 305_569, "flops": 20_320_384 * batch, "flops_encoders_per_sample": 20_070_400,
            "flops_fusion_per_sample": 217_088, "flops_head_per_sample": 32_896, "p50_ms": p50, "status": status}


def test_fastest_ok_backend_at_batch_one_is_chosen():
    rows = efficiency_rows([bench_row("eager", 1.2), bench_row("ort-fp32", 0.25), bench_row("ort-int8", 0.2, batch=8),
                            bench_row("trt-fp16", None, "skipped: no GPU")], runs=[])
    (row,) = rows
    assert row["backend"] == "ort-fp32 (cpu)" and row["p50_ms"] == 0.25
    assert row["mflops"] == pytest.approx(20.320384) and row["mflops_fusion_head"] == pytest.approx(0.249984)
    assert row["epochs"] is None and "| MIMIC | mosi | 0.306 | 0.3 | 20.32 | 0.25 | 2 | 0.250 |" in efficiency_markdown(rows)


def test_only_skipped_backends_is_not_measured():
    (row,) = efficiency_rows([bench_row("trt-fp16", None, "skipped: no GPU")], runs=[])
    assert row["p50_ms"] is None and row["backend"] == "not measured"


def test_training_run_fills_epochs_and_metrics(tmp_path):
    data = synthetic("mosi", n=(64, 32, 8), seed=0)
    result = train(data, TrainConfig(model="mimic", max_epochs=2), tmp_path / "run")
    run = read_run(tmp_path / "run")
    assert (run["model"], run["preset"], run["epochs"]) == ("mimic", "mosi", result.best_epoch)
    (row,) = efficiency_rows([bench_row("eager", 1.0)], [run])
    assert row["epochs"] == result.best_epoch and 0 < row["Acc2"] <= 100 and row["MAE"] > 0


def test_not_a_run_folder(tmp_path):
    with pytest.raises(ConfigError, match="expected a `mimic-edge train` output folder"):
        read_run(tmp_path)
