"""The CLI: help, version, errors without tracebacks."""
import json
import signal
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


@pytest.mark.slow  # exports until the package compile starts (~10 s), then stops it
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_a_stopped_package_export_leaves_no_staging_folder(tmp_path, stop):
    """SIGTERM (a `kill`, a container stop) cleans up like Ctrl-C: no staging folder, no lock."""
    import time

    out = tmp_path / "out"
    child = subprocess.Popen([sys.executable, "-c", "import sys; from mimic_edge.cli import main; sys.exit(main())",
                              "export", "--format", "pt2", "--out", str(out)], cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not list(out.glob(".mimic-mosi.cpu.pt2.*")) and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)  # until the package is being compiled in its staging folder
    assert child.poll() is None, child.communicate()
    child.send_signal(stop)
    _, err = child.communicate(timeout=120)
    assert child.returncode == 128 + stop, err
    assert err.strip().splitlines()[-1] == f"mimic-edge export: {'terminated' if stop == signal.SIGTERM else 'interrupted'}"
    assert not out.exists() or list(out.iterdir()) == []  # a folder the export made goes too
