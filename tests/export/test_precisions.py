"""The export registry: one entry per precision and target, which the rest of the package reads."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mimic_edge.errors import ConfigError
from mimic_edge.export import precision as converters
from mimic_edge.export.precisions import DEFAULT_TARGET, PRECISION_NAMES, PRECISIONS, get_precision

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("key", list(PRECISIONS))
def test_every_entry_names_a_converter_and_sane_thresholds(key):
    entry = PRECISIONS[key]
    assert entry.key == key and callable(getattr(converters, entry.converter))
    t = entry.thresholds
    assert t.max_abs > 0 and t.sqnr_db > 0 and t.mae_delta > 0 and 0 < t.acc2_delta < 1
    assert entry.tensorrt == (entry.target == "tensorrt")


def test_thresholds_loosen_as_precision_drops():
    fp32, fp16, int8 = (PRECISIONS[k].thresholds for k in ("fp32", "fp16", "int8"))
    assert fp32.max_abs < fp16.max_abs < int8.max_abs
    assert fp32.sqnr_db > fp16.sqnr_db > int8.sqnr_db


def test_only_calibrated_entries_need_calibration_data():
    assert [k for k, p in PRECISIONS.items() if p.calibrated] == ["int8"]


def test_unknown_precision_names_the_valid_ones():
    with pytest.raises(ConfigError, match="unknown precision 'int4': expected one of fp32, fp16, int8"):
        get_precision("int4")


def test_a_target_other_than_the_default_gets_its_own_key():
    from dataclasses import replace

    entry = replace(PRECISIONS["int8"], target="cpu")
    assert entry.key == "int8-cpu" and not entry.tensorrt
    assert PRECISIONS["int8"].target == DEFAULT_TARGET and PRECISIONS["int8"].key == "int8"


def test_precision_names_are_spelled_in_one_module():
    """Adding a precision means one registry entry and its converter: no other source module
    spells a precision name as a string (tests, docs and benchmarks may)."""
    sources = [*ROOT.joinpath("mimic_edge").rglob("*.py"), *ROOT.joinpath("export").rglob("*.py")]
    pattern = re.compile(r"""["'](%s)["']""" % "|".join(PRECISION_NAMES))
    spelled = {str(p.relative_to(ROOT)) for p in sources if pattern.search(p.read_text())}
    assert spelled == {"export/precisions.py",  # the registry
                       "mimic_edge/bench/config.py",  # torch-tensorrt's own fp16 setting, not an artifact
                       "mimic_edge/bench/kernel_bench.py"}  # the Triton kernels' dtypes, not artifacts


def test_the_cli_reads_the_registry_without_torch():
    code = ("import sys; from mimic_edge.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('torch', 'onnx', 'onnxruntime', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
