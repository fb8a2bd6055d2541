"""mimic_edge.bench.run: row schema (docs/design.md §7), skipped and failed backends, rows kept as they come."""
import json
import sys
import time

import pytest

from mimic_edge.bench import BackendUnavailable, BenchConfig, backends, config, run_bench
from mimic_edge.bench import run
from mimic_edge.bench.config import Backend
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

    monkeypatch.setitem(config.BACKENDS, "missing", Backend("missing", "missing", "fp16"))
    monkeypatch.setitem(backends.SETUPS, "missing", setup_missing)
    rows = run_bench(BenchConfig(models=("mimic",), backends=("missing",), batch_sizes=(1,), **TINY))
    assert rows[0]["status"] == "skipped: needs a flux capacitor" and rows[0]["precision"] == "fp16"
    assert all(rows[0][k] is None for k in ("p50_ms", "p99_ms", "throughput", "loaded_mb", "growth_kb_per_call"))


def test_triton_backend_on_cpu_is_skipped_with_reason():
    rows = run_bench(BenchConfig(models=("mimic", "misa"), backends=("triton",), batch_sizes=(1,), device="cpu", **TINY))
    assert rows[0]["status"].startswith("skipped: needs a CUDA GPU")
    assert rows[1]["status"] == "skipped: the Triton kernels (encoders, fused head) are MIMIC's"


def add_backend(monkeypatch, name, setup, precision="fp32"):
    monkeypatch.setitem(config.BACKENDS, name, Backend(name, name, precision))
    monkeypatch.setitem(backends.SETUPS, name, setup)


def test_a_failing_backend_fails_its_own_rows_and_the_others_are_kept(monkeypatch, capsys):
    def setup_broken(model, inputs, ctx):
        raise RuntimeError("engine build exploded\nsecond line of the message")

    add_backend(monkeypatch, "broken", setup_broken)
    rows = run_bench(BenchConfig(models=("mimic",), backends=("broken", "eager"), batch_sizes=(1,), **TINY))
    assert [r["status"] for r in rows] == ["failed: RuntimeError: engine build exploded", "ok"]
    assert rows[0]["params"] == rows[1]["params"] > 0 and rows[0]["p50_ms"] is None
    assert capsys.readouterr().err == "bench: mimic mosi broken batch 1 failed: RuntimeError: engine build exploded\n"

    run_bench(BenchConfig(models=("mimic",), backends=("broken",), batch_sizes=(1,), verbose=True, **TINY))
    err = capsys.readouterr().err
    assert "Traceback" in err and "second line of the message" in err  # --verbose: the whole story


def test_a_model_that_cannot_be_built_fails_its_rows(monkeypatch):
    def no_model(name, preset, **overrides):
        raise MemoryError("no room")

    monkeypatch.setattr(run, "build_model", no_model)
    rows = run_bench(BenchConfig(models=("mimic",), backends=("eager",), batch_sizes=(1, 2), **TINY))
    assert [r["status"] for r in rows] == ["failed: MemoryError: no room"] * 2
    assert all(ROW_KEYS <= r.keys() and r["params"] is None for r in rows)


def test_rows_are_handed_over_as_they_come():
    seen = []
    rows = run_bench(BenchConfig(models=("mimic",), backends=("eager", "triton"), batch_sizes=(1,), device="cpu",
                                 **TINY), on_row=lambda so_far: seen.append([r["backend"] for r in so_far]))
    assert seen == [["eager"], ["eager", "triton"]] and len(rows) == 2


def test_rows_after_the_time_budget_are_skipped(monkeypatch):
    def setup_slow(model, inputs, ctx):
        time.sleep(0.3)
        return backends.TimedCall(lambda: None)

    add_backend(monkeypatch, "slow", setup_slow)
    rows = run_bench(BenchConfig(models=("mimic",), backends=("slow",), batch_sizes=(1, 2, 3), **TINY), budget_s=0.1)
    assert [r["status"] for r in rows] == ["ok"] + ["skipped: the bench's time budget (0.1 s) was spent"] * 2
    assert rows[2]["params"] == rows[0]["params"]  # still a full row, with the model's counts
    for bad in (0, float("nan"), float("inf")):
        with pytest.raises(ConfigError, match=f"budget must be a positive number of seconds, got {bad}"):
            run_bench(BenchConfig(models=("mimic",), backends=("eager",), **TINY), budget_s=bad)


def test_progress_without_tqdm(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # a bare image: `import tqdm` raises ImportError
    (row,) = run_bench(BenchConfig(models=("mimic",), backends=("eager",), batch_sizes=(1,), **TINY), progress=True)
    assert row["status"] == "ok"


def test_cli_json_is_rewritten_after_every_row(monkeypatch, tmp_path):
    """A run stopped after its first row (here Ctrl-C; a step timeout kills it alike) keeps it."""
    def setup_interrupted(model, inputs, ctx):
        raise KeyboardInterrupt

    add_backend(monkeypatch, "interrupted", setup_interrupted)
    path = tmp_path / "bench.json"
    argv = ["bench", "--models", "mimic", "--backends", "eager,interrupted", "--batch-sizes", "1", "--iters", "2",
            "--warmup", "0", "--seq-len", "5", "--device", "cpu", "--json", str(path)]
    assert main(argv) == 130
    data = json.loads(path.read_text())
    assert data["finished"] is False and [(r["backend"], r["status"]) for r in data["rows"]] == [("eager", "ok")]
    assert main(argv[:4] + ["eager"] + argv[5:]) == 0
    assert json.loads(path.read_text())["finished"] is True


def test_cli_refuses_a_budget_that_is_not_positive(capsys):
    assert main(["bench", "--budget-s", "-5"]) == 1
    assert "--budget-s must be a positive number of seconds, got -5.0" in capsys.readouterr().err


def test_every_model_gets_a_backends_rows_before_the_next_backend(monkeypatch):
    """With a budget, one model's costly set-ups (engine builds) must not starve the other models:
    the plan runs each backend for every model before the next backend."""
    from mimic_edge.bench.backends import TimedCall

    add_backend(monkeypatch, "costly", lambda model, inputs, ctx: TimedCall(lambda: None))
    rows = run_bench(BenchConfig(models=("mimic", "misa"), backends=("eager", "costly"), batch_sizes=(1, 2), **TINY))
    assert [(r["backend"], r["model"], r["batch_size"]) for r in rows] == [
        ("eager", "mimic", 1), ("eager", "mimic", 2), ("eager", "misa", 1), ("eager", "misa", 2),
        ("costly", "mimic", 1), ("costly", "mimic", 2), ("costly", "misa", 1), ("costly", "misa", 2)]
