"""`mimic-edge bench`: outputs, names checked before torch loads, help listing the names."""
import csv
import json
import subprocess
import sys

import pytest

from mimic_edge.bench import BACKEND_NAMES
from mimic_edge.cli import main
from mimic_edge.config import MODEL_NAMES, PRESETS

ROW_KEYS = {"model", "preset", "backend", "precision", "batch_size", "params", "flops", "p50_ms", "p99_ms", "status"}


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


@pytest.mark.parametrize("args, message", [
    (["--presets", "nope"], "unknown preset 'nope': expected some of mosi, mosi-bert"),
    (["--presets", ","], "no preset given: expected one or more of mosi, mosi-bert"),
    (["--models", "gpt"], "unknown model 'gpt': expected some of mimic, misa"),
    (["--backends", "tpu"], "unknown backend 'tpu': expected some of eager, ort-fp32"),
    (["--batch-sizes", "99999999"], "batch size 99999999 needs "),  # GiB of inputs, more than half the memory
    (["--json", "/"], "--json /: expected a file name, found a folder"),
])
def test_bad_names_fail_in_one_line_before_torch_is_imported(args, message):
    code = ("import sys; from mimic_edge.cli import main; "
            f"rc = main(['bench', *{args!r}]); print(rc, 'torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.split() == ["1", "False"], result.stderr  # exit 1, torch never imported
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith(f"mimic-edge bench: error: {message}")


def test_help_lists_the_valid_names():
    result = subprocess.run([sys.executable, "-m", "mimic_edge.cli", "bench", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    help_text = " ".join(result.stdout.split())  # undo the wrapping
    for names in (MODEL_NAMES, PRESETS, BACKEND_NAMES):
        assert ", ".join(names) in help_text


def test_without_a_terminal_each_row_is_one_line_on_stderr(tmp_path):
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-P", "-m", "mimic_edge.cli", "bench", "--models", "mimic", "--backends",
                             "eager", "--batch-sizes", "1,2", "--iters", "2", "--warmup", "0", "--seq-len", "4",
                             "--cache-dir", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stderr.splitlines() if line.startswith("bench: ")]
    assert [r.split(":")[1].strip() for r in rows] == ["mimic mosi eager batch 1", "mimic mosi eager batch 2"]


def test_a_busy_machine_is_named_before_the_table(monkeypatch, capsys):
    import os

    from mimic_edge.cli import bench as bench_cli

    monkeypatch.setattr(os, "getloadavg", lambda: (2.0 * (os.cpu_count() or 1), 0.0, 0.0))
    bench_cli._warn_if_busy()
    assert "warning: the machine is busy (load average" in capsys.readouterr().err
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    bench_cli._warn_if_busy()
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("argv, backends, batches", [
    ([], "quick", (1, 8)),
    (["--all"], None, (1, 8, 64)),
    (["--all", "--batch-sizes", "2"], None, (2,)),
    (["--backends", "eager"], ("eager",), (1, 8)),
])
def test_the_default_run_is_quick_and_all_is_the_sweep(monkeypatch, argv, backends, batches):
    import mimic_edge.bench.run
    from mimic_edge.bench.config import QUICK_BACKENDS

    seen = []
    monkeypatch.setattr(mimic_edge.bench.run, "run_bench", lambda cfg, **_: seen.append(cfg) or [])
    assert main(["bench", *argv]) == 0
    assert seen[0].backends == (QUICK_BACKENDS if backends == "quick" else backends)
    assert seen[0].batch_sizes == batches


def test_a_run_with_failed_rows_exits_3_and_keeps_every_row(tmp_path, monkeypatch, capsys):
    from mimic_edge.bench import backends, config

    def broken(model, inputs, ctx):
        raise RuntimeError("engine build exploded")

    monkeypatch.setitem(config.BACKENDS, "broken", config.Backend("broken", "broken"))
    monkeypatch.setitem(backends.SETUPS, "broken", broken)
    out = tmp_path / "bench.json"
    args = ["bench", "--models", "mimic", "--batch-sizes", "1", "--iters", "2", "--warmup", "0", "--seq-len", "5",
            "--device", "cpu", "--json", str(out)]
    assert main([*args, "--backends", "eager,broken"]) == 3
    err = capsys.readouterr().err
    assert "1 of 2 rows failed" in err and "Traceback" not in err
    assert [r["status"] for r in json.loads(out.read_text())["rows"]] == ["ok", "failed: RuntimeError: engine build exploded"]
    assert main([*args, "--backends", "eager"]) == 0
