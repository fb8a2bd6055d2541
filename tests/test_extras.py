"""The core install runs artifacts; every other job names the extra it needs when it is missing."""
import importlib.util
import re
import tomllib
from pathlib import Path

import pytest

from mimic_edge.cli import main
from mimic_edge.extras import EXTRAS, MissingExtra
from mimic_edge.runtime import load
from mimic_edge.runtime.onnx_predictor import _choose_providers

REPO = Path(__file__).resolve().parents[1]
MODULE_OF = {"cuda-python": "cuda", "nvidia-pytriton": "pytriton"}  # distribution → the module it installs, where they differ


def extra_modules(extras: dict, name: str) -> set[str]:
    """The top-level modules pyproject's extra `name` installs, self-references (mimic-edge[a,b]) followed."""
    modules = set()
    for requirement in extras[name]:
        dist = re.match(r"[A-Za-z0-9_.-]+", requirement).group(0)
        if dist == "mimic-edge":
            for other in re.search(r"\[(.*)\]", requirement).group(1).split(","):
                modules |= extra_modules(extras, other.strip())
        else:
            modules.add(MODULE_OF.get(dist, dist))
    return modules


def test_the_extras_table_is_pyprojects():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert [re.match(r"[a-z]+", r).group(0) for r in project["dependencies"]] == ["numpy", "onnxruntime"]
    for name, modules in EXTRAS.items():
        assert extra_modules(project["optional-dependencies"], name) == set(modules), name


@pytest.fixture
def without(monkeypatch):
    """Make `find_spec` say the given top-level modules are not installed."""
    def hide(*modules):
        find_spec = importlib.util.find_spec
        monkeypatch.setattr(importlib.util, "find_spec",
                            lambda name, *a: None if name.split(".")[0] in modules else find_spec(name, *a))
    return hide


@pytest.mark.parametrize("command, extra", [(["export"], "export"), (["train", "--data", "synthetic", "--out", "x"], "train"), (["bench"], "torch"),
                                            (["eval", "--checkpoint", "x", "--data", "synthetic"], "torch")])
def test_a_command_without_its_extra_is_one_line_naming_it(without, capsys, command, extra):
    without("torch")
    assert main(command) == 1
    err = capsys.readouterr().err
    assert err == f"mimic-edge {command[0]}: error: this command needs torch, not installed here: " \
                  f"pip install 'mimic-edge[{extra}]'\n"


def test_a_checkpoint_or_package_without_torch_names_the_torch_extra(without, tmp_path):
    without("safetensors")
    for path in (tmp_path / "mimic.safetensors", tmp_path / "mimic.cpu.pt2"):
        with pytest.raises(MissingExtra, match=r"needs safetensors, not installed here: pip install 'mimic-edge\[torch\]'"):
            load(path)


def test_a_module_missing_deeper_in_a_job_is_one_line_too(capsys, monkeypatch):
    import mimic_edge.cli.predict as predict

    def run(args):
        raise ModuleNotFoundError("No module named 'onnxslim'", name="onnxslim")

    monkeypatch.setattr(predict, "run", run)
    assert main(["predict", "--model", "m.onnx", "--input", "x.npz"]) == 1
    assert capsys.readouterr().err == ("mimic-edge predict: error: this needs onnxslim, not installed here: "
                                       "pip install 'mimic-edge[export]'\n")


@pytest.mark.parametrize("available, expected", [
    (["CPUExecutionProvider"], ["CPUExecutionProvider"]),  # onnxruntime from PyPI
    (["CUDAExecutionProvider", "CPUExecutionProvider"], ["CUDAExecutionProvider", "CPUExecutionProvider"]),
    # onnxruntime-gpu on a Jetson lists TensorRT after CUDA, and more: TensorRT first, then CUDA, then CPU
    (["CUDAExecutionProvider", "AzureExecutionProvider", "CPUExecutionProvider", "TensorrtExecutionProvider"],
     ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]),
])
def test_the_runtime_prefers_tensorrt_then_cuda_then_cpu(available, expected):
    assert _choose_providers(None, available) == expected
