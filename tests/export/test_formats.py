"""The format registry (mimic_edge.export.formats): the export's file names and sidecars come
from it, --format takes its model-built entries, and a format whose modules are missing is one
clear error before any work."""
import pytest

from mimic_edge.errors import ConfigError
from mimic_edge.export import ExportConfig, export
from mimic_edge.export.config import FORMATS as CLI_FORMATS
from mimic_edge.export.formats import FORMATS, MODEL_FORMATS, get_format


def test_every_format_names_its_files():
    assert MODEL_FORMATS == CLI_FORMATS == ("onnx", "pt2", "triton") and FORMATS["engine"].built_from == "onnx"
    assert [str(p) for p in FORMATS["onnx"].paths("out", "mimic-best", key="int8-cpu")] == [
        "out/mimic-best.int8-cpu.onnx", "out/mimic-best.int8-cpu.validation.json"]
    assert [p.name for p in FORMATS["pt2"].paths("out", "m", device="cuda")] == ["m.cuda.pt2",
                                                                                 "m.cuda.pt2.validation.json"]
    assert [p.name for p in FORMATS["engine"].paths("out", "m", key="fp16")] == ["m.fp16.engine",
                                                                                 "m.fp16.engine.validation.json"]
    assert [str(p) for p in FORMATS["triton"].paths("out", "m", key="fp16", version=3)] == [
        "out/m-fp16/3/model.onnx", "out/m-fp16/3/validation.json"]
    assert {name: f.sidecar for name, f in FORMATS.items()} == {"onnx": False, "pt2": True, "triton": False,
                                                                "engine": True}


def test_unknown_format_is_refused():
    with pytest.raises(ConfigError, match="unknown format 'engine': expected one of onnx, pt2, triton"):
        get_format("engine")


def test_a_format_whose_modules_are_missing_fails_before_any_work(tmp_path, monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxslim" else find_spec(name, *a))
    with pytest.raises(ConfigError, match="--format onnx needs onnxslim installed"):
        export(ExportConfig(out=str(tmp_path)), log=lambda _: None)
    assert list(tmp_path.iterdir()) == []
