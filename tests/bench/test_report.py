"""mimic_edge.bench.report: markdown, CSV, machine info."""
import csv

from mimic_edge.bench.report import machine_info, to_markdown, write_csv

ROWS = [
    {"model": "mimic", "preset": "mosi", "backend": "eager", "precision": "fp32", "device": "cpu", "batch_size": 1,
     "params": 305_569, "flops": 20_320_384, "p50_ms": 1.5, "p99_ms": 2.0, "throughput": 666.7, "loaded_mb": 3.0,
     "growth_kb_per_call": 0.0, "artifact_bytes": 1_222_276, "status": "ok"},
    {"model": "mimic", "preset": "mosi", "backend": "trt-fp16", "precision": "fp16", "device": "cpu", "batch_size": 1,
     "params": 305_569, "flops": 20_320_384, "p50_ms": None, "p99_ms": None, "throughput": None, "loaded_mb": None,
     "growth_kb_per_call": None, "artifact_bytes": None, "status": "skipped: no GPU"},
    {"model": "mimic", "preset": "mosi", "backend": "trt-fp16", "precision": "fp16", "device": "cpu", "batch_size": 8,
     "params": 305_569, "flops": 8 * 20_320_384, "p50_ms": None, "p99_ms": None, "throughput": None,
     "loaded_mb": None, "growth_kb_per_call": None, "artifact_bytes": None, "status": "skipped: no GPU"},
]


def test_markdown_measured_rows_then_skipped_once():
    table = to_markdown(ROWS)
    assert "| mimic | mosi | eager | fp32 | cpu | 1 | 305,569 | 20.32 | 1.500 | 2.000 | 667 | 3.0 | 0.00 | 1.22 |" in table
    assert "| mimic | mosi | trt-fp16 |" not in table
    assert table.count("- trt-fp16 (mimic): skipped: no GPU") == 1


def test_csv_has_every_row(tmp_path):
    write_csv(ROWS, tmp_path / "bench.csv")
    with open(tmp_path / "bench.csv") as f:
        assert [r["backend"] for r in csv.DictReader(f)] == ["eager", "trt-fp16", "trt-fp16"]


def test_machine_info():
    assert {"cpu", "cpu_count", "threads", "python", "torch", "date"} <= machine_info("cpu").keys()
