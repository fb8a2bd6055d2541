"""benchmarks/export/int8_cpu.py --save and benchmarks/export/int8_isa.py: variants saved with their reference
are judged again, torch-free, with the int8 gates; a full-range int8 variant is judged the same
way (its saturation shows only on x86 without VNNI: tests/cross)."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

from mimic_edge.data import synthetic
from mimic_edge.export.validate import reference

BENCHMARKS = Path(__file__).parents[2] / "benchmarks" / "export"
_spec = importlib.util.spec_from_file_location("int8_cpu_benchmark", BENCHMARKS / "int8_cpu.py")
int8_cpu = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(int8_cpu)


def test_saved_variants_are_judged_on_this_cpu(artifacts, tmp_path):
    graphs = {key: artifacts.onnx(key).read_bytes() for key in ("fp32", "int8", "int8-cpu")}
    valid = synthetic("mosi", n=(1, 64, 1), seed=0)["valid"]
    int8_cpu.save_variants(tmp_path / "saved" / "mimic", graphs, reference(artifacts.model, valid))
    done = subprocess.run([sys.executable, str(BENCHMARKS / "int8_isa.py"), str(tmp_path / "saved"),
                           "--json", str(tmp_path / "isa.json")], capture_output=True, text=True, check=True)
    result = json.loads((tmp_path / "isa.json").read_text())
    artifacts = [r["artifact"] for r in result["rows"]]
    assert artifacts == ["fp32", "int8", "int8, integer kernels", "int8-cpu"]  # Q/DQ both ways
    # every row but this CPU's integer kernels on the Q/DQ graph, which saturate on x86 without VNNI
    assert all(r["passed_int8_gates"] for r in result["rows"] if r["artifact"] != "int8, integer kernels")
    assert result["machine"]["int8_isa"] and "| mimic | int8-cpu |" in done.stdout


def test_a_folder_without_variants_is_one_clear_error(tmp_path):
    done = subprocess.run([sys.executable, str(BENCHMARKS / "int8_isa.py"), str(tmp_path)], capture_output=True,
                          text=True)
    assert done.returncode == 1 and "expected" in done.stderr and "Traceback" not in done.stderr
