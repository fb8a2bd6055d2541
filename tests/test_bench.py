"""mimic-edge bench: row schema (DESIGN §7), FLOP counting, skipped backends."""
import pytest
import torch

from mimic_edge import bench
from mimic_edge.bench import BackendUnavailable, BenchConfig, percentile, run_bench
from mimic_edge.flops import count_flops

ROW_KEYS = {"model", "preset", "backend", "precision", "batch_size", "params", "flops", "p50_ms", "p99_ms", "status"}


def test_rows_have_design_keys_and_measurements():
    rows = run_bench(BenchConfig(models=("mimic",), batch_sizes=(1, 3), iters=3, warmup=1, seq_len=8))
    assert [r["batch_size"] for r in rows] == [1, 3]
    for r in rows:
        assert ROW_KEYS <= r.keys() and r["status"] == "ok"
        assert 0 < r["p50_ms"] <= r["p99_ms"]
    assert rows[1]["flops"] == 3 * rows[0]["flops"]


def test_unavailable_backend_is_skipped_not_measured(monkeypatch):
    def setup_missing(model, inputs, device):
        raise BackendUnavailable("needs a flux capacitor")

    monkeypatch.setitem(bench.BACKENDS, "missing", ("fp16", setup_missing))
    rows = run_bench(BenchConfig(models=("mimic",), backends=("missing",), batch_sizes=(1,), iters=1, seq_len=4))
    assert rows[0]["status"] == "skipped: needs a flux capacitor"
    assert rows[0]["p50_ms"] is None and rows[0]["p99_ms"] is None


def test_flops_count_lstm_gemms():
    """A bidirectional LSTM over L steps: 2 directions × L × 2·4H·(D+H) FLOPs."""
    lstm = torch.nn.LSTM(10, 6, batch_first=True, bidirectional=True)
    assert count_flops(lstm, torch.randn(1, 7, 10)) == 2 * 7 * 2 * 4 * 6 * (10 + 6)


def test_percentile_nearest_rank():
    values = list(range(1, 101))
    assert percentile(values, 50) == 50 and percentile(values, 99) == 99 and percentile([3.0], 99) == 3.0


def test_bad_config():
    from mimic_edge.errors import ConfigError

    with pytest.raises(ConfigError, match="batch sizes must be positive"):
        run_bench(BenchConfig(batch_sizes=(0,)))
