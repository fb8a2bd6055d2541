"""mimic_edge.bench.run: row schema (DESIGN §7), skipped backends."""
from mimic_edge.bench import BackendUnavailable, BenchConfig, backends, config, run_bench
from mimic_edge.bench.config import Backend

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

    monkeypatch.setitem(config.BACKENDS, "missing", Backend("missing", "missing", "fp16"))
    monkeypatch.setitem(backends.SETUPS, "missing", setup_missing)
    rows = run_bench(BenchConfig(models=("mimic",), backends=("missing",), batch_sizes=(1,), **TINY))
    assert rows[0]["status"] == "skipped: needs a flux capacitor" and rows[0]["precision"] == "fp16"
    assert all(rows[0][k] is None for k in ("p50_ms", "p99_ms", "throughput", "peak_mem_mb"))


def test_triton_backend_on_cpu_is_skipped_with_reason():
    rows = run_bench(BenchConfig(models=("mimic", "misa"), backends=("triton",), batch_sizes=(1,), device="cpu", **TINY))
    assert rows[0]["status"].startswith("skipped: needs a CUDA GPU")
    assert rows[1]["status"] == "skipped: the fused Triton head is MIMIC's"
