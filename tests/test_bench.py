"""mimic-edge bench: row schema (DESIGN §7), skipped backends, outputs."""
import csv
import json

import pytest

from mimic_edge import bench
from mimic_edge.bench import BackendUnavailable, BenchConfig, percentile, run_bench
from mimic_edge.cli import main
from mimic_edge.errors import ConfigError

ROW_KEYS = {"model", "preset", "backend", "precision", "batch_size", "params", "flops", "p50_ms", "p99_ms", "status"}
TINY = dict(iters=3, warmup=1, seq_len=6)


def test_rows_have_design_keys_and_measurements():
    rows = run_bench(BenchConfig(models=("mimic", "misa"), presets=("mosi-bert",), backends=("eager",),
                                 batch_sizes=(1, 3), **TINY))
    assert [(r["model"], r["batch_size"]) for r in rows] == [("mimic", 1), ("mimic", 3), ("misa", 1), ("misa", 3)]
    for r in rows:
        assert ROW_KEYS <= r.keys() and r["status"] == "ok"
        assert 0 < r["p50_ms"] <= r["p99_ms"] and r["throughput"] > 0
        assert r["artifact_bytes"] == 4 * r["params"]  # fp32 weights, no buffers
    assert rows[1]["flops"] == 3 * rows[0]["flops"]
    assert rows[0]["params"] == 425_377 and rows[2]["params"] == 1_477_453


def test_unavailable_backend_is_skipped_not_measured(monkeypatch):
    def setup_missing(model, inputs, ctx):
        raise BackendUnavailable("needs a flux capacitor")

    monkeypatch.setitem(bench.BACKENDS, "missing", ("fp16", setup_missing))
    rows = run_bench(BenchConfig(models=("mimic",), backends=("missing",), batch_sizes=(1,), **TINY))
    assert rows[0]["status"] == "skipped: needs a flux capacitor"
    assert all(rows[0][k] is None for k in ("p50_ms", "p99_ms", "throughput", "peak_mem_mb"))


def test_triton_backend_on_cpu_is_skipped_with_reason():
    rows = run_bench(BenchConfig(models=("mimic", "misa"), backends=("triton",), batch_sizes=(1,), device="cpu", **TINY))
    assert rows[0]["status"].startswith("skipped: needs a CUDA GPU")
    assert rows[1]["status"] == "skipped: the fused Triton head is MIMIC's"


def test_percentile_nearest_rank():
    values = list(range(1, 101))
    assert percentile(values, 50) == 50 and percentile(values, 99) == 99 and percentile([3.0], 99) == 3.0


@pytest.mark.parametrize("change, message", [
    ({"batch_sizes": (0,)}, "batch sizes must be positive"),
    ({"backends": ("tpu",)}, "unknown backend 'tpu'"),
    ({"models": ("gpt",)}, "unknown model 'gpt'"),
    ({"presets": ("nope",)}, "unknown preset 'nope'"),
    ({"threads": 0}, "threads must be >= 1"),
])
def test_bad_config(change, message):
    with pytest.raises(ConfigError, match=message):
        run_bench(BenchConfig(**change))


def test_cli_writes_json_csv_and_png(tmp_path, capsys):
    paths = {k: tmp_path / f"bench.{k}" for k in ("json", "csv", "png")}
    assert main(["bench", "--models", "mimic,misa", "--presets", "mosi-bert", "--backends", "eager,triton",
                 "--batch-sizes", "1,2", "--iters", "2", "--warmup", "0", "--seq-len", "5", "--device", "cpu",
                 "--json", str(paths["json"]), "--csv", str(paths["csv"]), "--plot", str(paths["png"])]) == 0
    table = capsys.readouterr().out
    assert "| mimic | mosi-bert | eager | fp32 | cpu | 1 | 425,377 |" in table
    assert table.count("- triton (mimic): skipped: needs a CUDA GPU") == 1  # once, not per batch size
    assert "| mimic | mosi-bert | triton |" not in table
    data = json.loads(paths["json"].read_text())
    assert {"cpu", "torch", "date"} <= data["machine"].keys()
    assert len(data["rows"]) == 8 and all(ROW_KEYS <= r.keys() for r in data["rows"])
    assert {r["status"] for r in data["rows"]} >= {"ok", "skipped: needs a CUDA GPU (on CPU, Triton runs only in its interpreter)"}
    with open(paths["csv"]) as f:
        assert [r["backend"] for r in csv.DictReader(f)] == [r["backend"] for r in data["rows"]]
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_onnx_runtime_backend_exports_once_and_reuses_the_artifact(tmp_path):
    cfg = BenchConfig(models=("mimic",), backends=("ort-fp32",), batch_sizes=(1, 2), cache_dir=str(tmp_path), **TINY)
    rows = run_bench(cfg)
    assert [r["status"] for r in rows] == ["ok", "ok"]
    (folder,) = tmp_path.iterdir()
    artifact = folder / "model.fp32.onnx"
    assert rows[0]["artifact_bytes"] == artifact.stat().st_size
    assert (folder / "model.fp32.validation.json").is_file()
    written = artifact.stat().st_mtime_ns
    run_bench(cfg)  # same weights: the cached artifact is reused, not exported again
    assert artifact.stat().st_mtime_ns == written and list(tmp_path.iterdir()) == [folder]
