"""The CLI: help, version, errors without tracebacks."""
import json
import subprocess
import sys

import pytest

from mimic_edge.cli import main


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "mimic_edge.cli", *args], capture_output=True, text=True)


def test_help_lists_commands_and_examples():
    result = run_cli("--help")
    assert result.returncode == 0 and "bench" in result.stdout
    bench_help = run_cli("bench", "--help")
    assert "examples:" in bench_help.stdout


def test_version():
    from mimic_edge import __version__

    assert run_cli("--version").stdout.strip() == f"mimic-edge {__version__}"


@pytest.mark.parametrize("args, message", [
    (["bench", "--presets", "nope"], "error: unknown preset 'nope'"),
    (["bench", "--backends", "tpu"], "error: unknown backend 'tpu'"),
    (["bench", "--models", "gpt"], "error: unknown model 'gpt'"),
])
def test_bad_options_exit_nonzero_without_traceback(args, message):
    result = run_cli(*args)
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_batch_sizes_are_usage_errors():
    result = run_cli("bench", "--batch-sizes", "1,x")
    assert result.returncode == 2 and "expected comma-separated integers" in result.stderr


def test_bench_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--models", "mimic", "--backends", "eager", "--batch-sizes", "2", "--iters", "3", "--warmup", "1",
                 "--json", str(out)]) == 0
    assert "| mimic | mosi | eager |" in capsys.readouterr().out
    rows = json.loads(out.read_text())["rows"]
    assert rows[0]["params"] == 305_569 and rows[0]["batch_size"] == 2
