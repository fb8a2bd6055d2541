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
    (["--backends", "tpu"], "unknown backend 'tpu': expected some of eager, compile"),
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
