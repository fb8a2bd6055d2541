"""The kernels package: it imports only torch and triton (docs/design.md §1's layering rule), is light
to import, `fusion_head` is always the function, and where the fused head can run."""
import ast
import json
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch

import mimic_edge.kernels

KERNELS = Path(mimic_edge.kernels.__file__).parent
# what a script prints last: the mimic_edge modules loaded besides mimic_edge.kernels and the
# root package (light and lazy, always imported as the parent), and whether triton is loaded
_REPORT = (
    "import json, sys\n"
    "print(json.dumps({'others': sorted(m for m in sys.modules if m.startswith('mimic_edge') and m != 'mimic_edge'\n"
    "                                   and m != 'mimic_edge.kernels' and not m.startswith('mimic_edge.kernels.')),\n"
    "                  'triton': sorted(m for m in sys.modules if m == 'triton' or m.startswith('triton.'))[:3]}))\n"
)


def run_script(script: str) -> dict:
    """Runs `script` then _REPORT in a fresh interpreter (this process has imported more)."""
    result = subprocess.run([sys.executable, "-c", script + _REPORT], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.splitlines()[-1])


def test_import_loads_nothing_of_mimic_edge_outside_kernels_nor_triton():
    report = run_script("import mimic_edge.kernels\n")
    assert report == {"others": [], "triton": []}


def test_fusion_head_is_the_function_before_and_after_its_module_is_imported():
    """In a fresh process: the package's `fusion_head` (whose first use imports the kernel's
    module, kernels/fused_head.py), then the module itself, then `fusion_head` again."""
    pytest.importorskip("triton", reason="the fused head needs triton")
    script = (
        "import sys, types\n"
        "import mimic_edge.kernels as kernels\n"
        "assert 'mimic_edge.kernels.fused_head' not in sys.modules\n"
        "before = kernels.fusion_head\n"
        "assert isinstance(before, types.FunctionType), before\n"
        "import mimic_edge.kernels.fused_head\n"
        "from mimic_edge.kernels import fused_head, fusion_head\n"
        "assert isinstance(fused_head, types.ModuleType) and kernels.fused_head is fused_head\n"
        "assert before is fusion_head is kernels.fusion_head is fused_head.fusion_head\n"
    )
    report = run_script(script)
    assert report["others"] == []  # the kernel's module too imports nothing else of mimic_edge
    assert report["triton"]  # the fused head imported it


def test_the_package_is_a_plain_module():
    assert type(mimic_edge.kernels) is types.ModuleType  # no __class__ swap to guard `fusion_head`


@pytest.mark.parametrize("path", sorted(KERNELS.glob("*.py")), ids=lambda p: p.name)
def test_sources_import_only_torch_triton_the_stdlib_and_the_package(path):
    """Also the imports that run late (inside functions) or only with triton installed."""
    allowed = {"torch", "triton", "__future__"} | set(sys.stdlib_module_names)
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level:
            continue  # relative: within the package
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module] if isinstance(node, ast.ImportFrom) else []
        for name in names:
            ok = name == "mimic_edge.kernels" or name.startswith("mimic_edge.kernels.") or \
                name.split(".")[0] in allowed
            assert ok, f"{path.name}:{node.lineno} imports {name}"


def test_errors_are_value_errors():
    assert issubclass(mimic_edge.kernels.KernelInputError, ValueError)
    assert issubclass(mimic_edge.kernels.KernelTypeError, mimic_edge.kernels.KernelInputError)
    assert issubclass(mimic_edge.kernels.KernelTypeError, TypeError)


@pytest.mark.parametrize("value, usable", [("1", True), ("true", True), ("ON", True), ("0", False), ("", False)])
def test_cpu_needs_the_interpreter(monkeypatch, value, usable):
    pytest.importorskip("triton", reason="checks the answer with triton installed")
    monkeypatch.setenv("TRITON_INTERPRET", value)
    assert mimic_edge.kernels.triton_head_usable(torch.device("cpu")) is usable


def test_cuda_needs_triton_installed(monkeypatch):
    pytest.importorskip("triton", reason="checks the answer with triton installed")
    assert mimic_edge.kernels.triton_head_usable(torch.device("cuda"))
    assert not mimic_edge.kernels.triton_head_usable(torch.device("meta"))
    monkeypatch.setattr(mimic_edge.kernels, "_TRITON_INSTALLED", False)
    assert not mimic_edge.kernels.triton_head_usable(torch.device("cuda"))


def test_a_torch_without_triton_op_runs_everything_but_the_kernels(monkeypatch):
    """JetPack 6's torch predates torch.library.triton_op (2.6): the kernels say so in one line,
    and a MIMIC configured for them runs its PyTorch encoders and head."""
    from mimic_edge import build_model

    monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.setattr(mimic_edge.kernels, "_TRITON_INSTALLED", True)
    monkeypatch.delattr(torch.library, "triton_op")
    assert not mimic_edge.kernels.triton_head_usable(torch.device("cpu"))
    with pytest.raises(ImportError, match=r"need torch >= 2.6 \(torch.library.triton_op\), found torch"):
        mimic_edge.kernels.__getattr__("bilstm_encoders")
    torch.manual_seed(0)
    model = build_model("mimic", fusion_head="triton", encoder="triton").eval()
    reference = build_model("mimic").eval()
    reference.load_state_dict(model.state_dict())
    x = [torch.randn(2, 5, d) for d in model.config.dims.values()]
    with torch.no_grad():
        torch.testing.assert_close(model(*x), reference(*x), rtol=0, atol=0)
