"""The kernels package: light to import, `fusion_head` always the function, and where the
fused head can run."""
import importlib
import subprocess
import sys

import pytest
import torch

import mimic_edge.kernels


def test_import_does_not_load_triton():
    script = "import sys, mimic_edge.kernels; print('triton' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_fusion_head_stays_the_function_after_its_module_is_imported():
    pytest.importorskip("triton", reason="the fused head needs triton")
    module = importlib.import_module("mimic_edge.kernels.fusion_head")
    assert mimic_edge.kernels.fusion_head is module.fusion_head
    from mimic_edge.kernels import fusion_head
    assert fusion_head is module.fusion_head


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
