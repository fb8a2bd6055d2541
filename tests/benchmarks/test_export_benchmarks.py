"""benchmarks/export/export_precisions.py and benchmarks/export/aoti_cpu.py, run as a user runs
them but short: every row is made, the JSON written, the temporary artifacts removed."""
import importlib.util
import json
import tempfile
from pathlib import Path

import pytest

from mimic_edge.export.precisions import PRECISIONS

BENCHMARKS = Path(__file__).parents[2] / "benchmarks" / "export"


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(f"{name}_benchmark", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def own_tempdir(tmp_path, monkeypatch):
    """The scripts' temporary folders go here, so that a test can see they were removed."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.mark.slow  # four exports of MIMIC, each validated: ~10 s on 2 cores
def test_export_table_has_every_precision(tmp_path, own_tempdir, capsys):
    out = tmp_path / "table.json"
    assert load_script("export_precisions").main(["--models", "mimic", "--rounds", "1", "--iters", "3",
                                                  "--json", str(out)]) == 0
    record = json.loads(out.read_text())
    assert [r["precision"] for r in record["rows"]] == list(PRECISIONS)
    assert all(r["ort_p50_ms"] > 0 and r["sqnr_db"] > 20 and r["size_mb"] > 0 for r in record["rows"])
    assert record["machine"]["ort_threads"] == 1 and "| mimic | int8-cpu |" in capsys.readouterr().out
    assert list(own_tempdir.iterdir()) == []


@pytest.mark.slow  # compiles two packages of MIMIC (the export's and a profiling one): ~30 s on 2 cores
def test_aoti_cpu_times_three_backends_and_profiles_the_package(tmp_path, own_tempdir):
    out = tmp_path / "aoti.json"
    script = load_script("aoti_cpu")
    assert script.main(["--rounds", "1", "--iters", "3", "--profile-calls", "3", "--json", str(out)]) == 0
    (run,) = json.loads(out.read_text())["runs"]
    assert set(run["latency"]) == {"eager", "ort-fp32", "aoti"}
    assert run["latency"]["ort-fp32"]["ratio_to_ort_fp32"] == 1.0
    assert sum(run["profile"]["share"].values()) == pytest.approx(1.0)
    assert run["lstm_alone"]["total_us"] > 0 and run["machine"]["int8_isa"]
    assert [p.name for p in own_tempdir.iterdir() if not p.name.startswith("torchinductor_")] == []  # inductor's cache stays
