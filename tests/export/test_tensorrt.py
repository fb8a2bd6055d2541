"""The TensorRT layer: profile parsing and checks, version-dependent settings and what is missing
(pure Python, run everywhere); the layer's TensorRT calls checked without TensorRT, by mypy against
TensorRT's type stubs and against both C++ header sets (10.3.0, 11.1); engine builds (need
tensorrt and a CUDA GPU, skipped with the reason otherwise)."""
from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
import tempfile
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest

from mimic_edge.config import MODALITIES
from mimic_edge.errors import ConfigError
from mimic_edge.export.precisions import PRECISIONS
from mimic_edge.export.shapes import Range, default_seq, make_profile, parse_range
from mimic_edge.export.tensorrt import BuildSettings, build_settings, unavailable_reason
from mimic_edge.tensorrt_probe import require_tensorrt


@pytest.mark.parametrize("text, expected", [
    ("1:8:64", Range(1, 8, 64)),
    ("16", Range(16, 16, 16)),
    ("1:1:1", Range(1, 1, 1)),
    (Range(2, 3, 4), Range(2, 3, 4)),
])
def test_parse_range(text, expected):
    assert parse_range(text, "--batch") == expected


@pytest.mark.parametrize("text, message", [
    ("8:4:64", "expected min ≤ opt, found min 8 > opt 4"),
    ("1:65:64", "expected opt ≤ max, found opt 65 > max 64"),
    ("0:1:8", "min must be ≥ 1, found 0"),
    ("1:8", r"expected MIN:OPT:MAX \(three integers\), found '1:8'"),
    ("1:a:8", "expected MIN:OPT:MAX integers"),
    ("", "expected MIN:OPT:MAX integers"),
    (Range(4, 2, 8), "expected min ≤ opt"),
])
def test_bad_ranges_are_refused_with_what_was_found(text, message):
    with pytest.raises(ConfigError, match=message) as info:
        parse_range(text, "--seq")
    assert str(info.value).startswith("--seq")


def test_profile_shapes_per_input():
    profile = make_profile("1:4:16", default_seq(50))
    shapes = profile.shapes({"text": 300, "audio": 74, "vision": 47})
    assert list(shapes) == list(MODALITIES)
    assert shapes["audio"] == ((1, 1, 74), (4, 50, 74), (16, 100, 74))
    assert profile.to_dict() == {"batch": [1, 4, 16], "seq": {m: [1, 50, 100] for m in MODALITIES}}


@pytest.mark.parametrize("version, precision, expected", [
    ("10.3.0", "fp32", BuildSettings((), ("TF32",))),  # TF32 is on by default: fp32 clears it
    ("10.3.0", "fp16", BuildSettings(("FP16",))),
    ("10.14.1.48", "int8", BuildSettings(("INT8",))),  # INT8 alone: float parts stay FP32
    ("11.0.0", "fp16", BuildSettings(())),  # 11.x: no precision flags, strongly typed
    ("11.4.1", "int8", BuildSettings(())),
    ("11.1.0", "fp32", BuildSettings((), ("TF32",))),
])
def test_build_settings_by_version(version, precision, expected):
    assert build_settings(version, PRECISIONS[precision]) == expected


@pytest.mark.parametrize("version, precision, message", [
    ("8.6.1", "fp16", r"TensorRT 8.6.1: expected 10.x or 11.x"),
    ("dev", "fp16", "unrecognised TensorRT version 'dev'"),
    ("10.3.0", "int8-cpu", "precision 'int8-cpu' is made for cpu, not TensorRT"),
])
def test_unsupported_versions_and_precisions(version, precision, message):
    with pytest.raises(ConfigError, match=message):
        build_settings(version, PRECISIONS[precision])


def fake_tensorrt(stubs_only: bool = False) -> types.ModuleType:
    """What `import tensorrt` gives: the real package (a file, a Builder), or the empty namespace
    package that a `tensorrt-stubs` install (a folder holding only __init__.pyi) leaves behind."""
    module = types.ModuleType("tensorrt")
    if not stubs_only:
        module.__file__ = "/site-packages/tensorrt/__init__.py"
        module.Builder = object
        module.__version__ = "10.3.0"
    return module


@pytest.mark.parametrize("modules, expected", [
    ({"tensorrt": None}, "the tensorrt package is not installed. TensorRT is not on PyPI alone: JetPack ships it"),
    ({"tensorrt": fake_tensorrt(stubs_only=True)}, "the tensorrt package found is only type stubs (tensorrt-stubs)"),
    ({"tensorrt": fake_tensorrt(), "cuda": None, "cuda.bindings": None},
     "TensorRT engines need the CUDA Python bindings, which are not installed: pip install cuda-python"),
])
def test_unavailable_reason_names_what_is_missing(monkeypatch, modules, expected):
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)  # None: `import name` raises ImportError
    reason = unavailable_reason()
    assert reason is not None and reason.startswith(expected), reason
    if "tensorrt" in expected:  # what loading an engine says when TensorRT itself is missing
        with pytest.raises(ConfigError, match=re.escape(expected)):
            require_tensorrt()


def test_unavailable_reason_without_a_gpu(monkeypatch):
    import torch

    cuda = types.ModuleType("cuda")
    cuda.bindings = types.ModuleType("cuda.bindings")
    cuda.bindings.runtime = types.ModuleType("cuda.bindings.runtime")
    for name, module in {"tensorrt": fake_tensorrt(), "cuda": cuda, "cuda.bindings": cuda.bindings,
                         "cuda.bindings.runtime": cuda.bindings.runtime}.items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert unavailable_reason() == "no CUDA GPU is visible (TensorRT builds engines for the GPU it runs on)"
    assert require_tensorrt() == "10.3.0"


NO_ENGINE = unavailable_reason()


@pytest.mark.gpu
@pytest.mark.tensorrt
@pytest.mark.skipif(NO_ENGINE is not None, reason=f"no TensorRT engine can be built here: {NO_ENGINE}")
@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_engine_build_writes_engine_sidecar_and_cache(artifacts, precision):
    from mimic_edge.runtime import load
    from mimic_edge.sidecar import check_sidecar

    result = artifacts.engine(precision)  # built once per session, shared with the predictor's tests
    assert result.engine_skipped is None and result.engine_path.is_file()
    assert result.engine_path.with_name(f"mimic.{precision}.timing-cache").is_file()
    record = check_sidecar(result.engine_path, config_digest=result.report["config_digest"])
    assert record["precision"] == precision and record["profile"]["batch"] == [1, 4, 8]

    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal((3, n, d), dtype=np.float32) for n, d in zip((20, 11, 50), (300, 74, 47))]
    engine_scores = load(result.engine_path).predict(*inputs)
    onnx_scores = load(result.onnx_path).predict(*inputs)
    tolerance = {"fp32": 1e-3, "fp16": 2e-2, "int8": 0.25}[precision]
    np.testing.assert_allclose(engine_scores, onnx_scores, atol=tolerance)


# ---------------------------------------------------------------------------------------------
# The layer's TensorRT calls, checked without TensorRT.

REPO = Path(__file__).resolve().parents[2]
LAYER = ("mimic_edge.export.tensorrt", "mimic_edge.runtime.tensorrt_predictor", "mimic_edge.sidecar",
         "mimic_edge.tensorrt_probe")
LAYER_FILES = (REPO / "export" / "tensorrt.py", REPO / "mimic_edge" / "runtime" / "tensorrt_predictor.py",
               REPO / "mimic_edge" / "sidecar.py", REPO / "mimic_edge" / "tensorrt_probe.py")
STUBS_VERSION = "10.13.0.35.1"  # tensorrt-stubs: TensorRT 10.13's Python API
STUBS_CACHE = REPO / ".cache" / "mimic-edge" / f"tensorrt-stubs-{STUBS_VERSION}"
HEADERS = REPO.parent / "shared" / "third_party" / "tensorrt-headers"  # ../shared/third_party/... from the repo


def loosen_unparsable_defs(path: Path) -> list[str]:
    """tensorrt-stubs are generated from pybind11 signatures, and 5 of them are not Python (a
    parameter named `in`, a required parameter after defaults: plugin and scale-layer methods).
    Each such `def` becomes `def name(*args, **kwargs):`; returns the names loosened."""
    lines = path.read_text().split("\n")
    loosened = []
    for i, line in enumerate(lines):
        text = line.strip()
        if text.startswith("def ") and text.endswith(":"):
            try:
                ast.parse(text + " ...")
            except SyntaxError:
                name = text[4:text.index("(")]
                lines[i] = f"{line[:len(line) - len(line.lstrip())]}def {name}(*args, **kwargs):"
                loosened.append(name)
    path.write_text("\n".join(lines))
    return loosened


@pytest.fixture(scope="module")
def tensorrt_stubs() -> tuple[Path, list[str]]:
    """(folder with the `tensorrt` and `tensorrt_bindings` stubs, names loosened). Fetched once into
    .cache/ with pip: as a requirement, tensorrt-stubs would pull tensorrt itself."""
    pytest.importorskip("mypy", reason="mypy is not installed (pip install -e '.[dev]')")
    marker = STUBS_CACHE / "loosened.json"
    if not marker.is_file():
        with tempfile.TemporaryDirectory() as tmp:
            fetched = subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "--quiet",
                 "-d", tmp, f"tensorrt-stubs=={STUBS_VERSION}"], capture_output=True, text=True, timeout=300)
            if fetched.returncode != 0:
                pytest.skip(f"could not fetch tensorrt-stubs {STUBS_VERSION} with pip (no network?): "
                            f"{fetched.stderr.strip().splitlines()[-1:]}")
            (wheel,) = Path(tmp).glob("*.whl")
            staging = Path(tmp) / "stubs"
            with zipfile.ZipFile(wheel) as z:
                z.extractall(staging)
            loosened = loosen_unparsable_defs(staging / "tensorrt_bindings" / "tensorrt.pyi")
            (staging / "loosened.json").write_text(json.dumps(loosened))
            STUBS_CACHE.parent.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(STUBS_CACHE, ignore_errors=True)
            shutil.move(str(staging), STUBS_CACHE)  # the marker arrives last: a cut-short fetch is redone
    return STUBS_CACHE, json.loads(marker.read_text())


MYPY_CONFIG = """\
[mypy]
mypy_path = {stage}:{stubs}
python_version = 3.10
follow_imports = silent
check_untyped_defs = True
warn_unused_ignores = True
[mypy-torch.*]
follow_imports = skip
ignore_missing_imports = True
[mypy-cuda.*,tensorrt_libs.*]
ignore_missing_imports = True
[mypy-tensorrt,tensorrt_bindings.*]
ignore_errors = True
"""

# Misspelt TensorRT calls: mypy must report each, or the stubs are not being read.
CANARY = """\
import tensorrt as trt


def build() -> None:
    builder = trt.Builder(trt.Logger(trt.Logger.WARNING))
    builder.create_netwrk(0)
    trt.BuilderFlag.FP17
"""


def test_mypy_checks_the_tensorrt_layer_against_tensorrt_stubs(tensorrt_stubs, tmp_path, stage_package):
    """Every TensorRT attribute and signature the layer uses exists in TensorRT 10.13's Python API
    (the stubs; errors inside the stubs themselves are ignored). 11.x: see the header test below."""
    stubs, loosened = tensorrt_stubs
    assert len(loosened) <= 10, loosened  # a new stubs release that parses worse needs a look
    used = "".join(f.read_text() for f in LAYER_FILES)
    assert not [n for n in loosened if f".{n}(" in used], "the layer calls a method whose stub was loosened"
    stage = stage_package(tmp_path / "stage", link=True)
    (stage / "trt_canary.py").write_text(CANARY)
    config = tmp_path / "mypy.ini"
    config.write_text(MYPY_CONFIG.format(stage=stage, stubs=stubs))
    modules = [arg for m in (*LAYER, "trt_canary") for arg in ("-m", m)]
    ran = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(config), "--cache-dir",
                          str(tmp_path / "cache"), "--no-error-summary", "--show-error-codes", *modules],
                         capture_output=True, text=True, cwd=tmp_path, timeout=300)
    errors = [line for line in ran.stdout.splitlines() if ": error:" in line]
    assert [e for e in errors if "trt_canary.py" not in e] == [], ran.stdout + ran.stderr
    assert len(errors) == 2 and all("attr-defined" in e for e in errors), ran.stdout + ran.stderr
    assert any('"create_netwrk"' in e for e in errors) and any('"FP17"' in e for e in errors)


# The C++ counterpart of each TensorRT Python call in export/tensorrt.py and the TensorRT predictor
# (TensorRT's Python API binds its C++ API one to one; keep this table in step with the code).
# Checked in the headers of 10.3.0 (JetPack 6) and 11.1: with no 11.x stubs, this is what says the
# layer's calls still exist, undeprecated, in 11.x.
CPP_CALLS = {
    "Logger / Logger.WARNING, ERROR": ("class ILogger", "kWARNING", "kERROR"),
    "Builder, create_network": ("createInferBuilder(", "createNetworkV2("),
    "create_builder_config, set_memory_pool_limit(MemoryPoolType.WORKSPACE)":
        ("createBuilderConfig(", "setMemoryPoolLimit(", "kWORKSPACE"),
    "set_flag, clear_flag, BuilderFlag.TF32": ("setFlag(", "clearFlag(", "kTF32"),
    "create_optimization_profile, set_shape, add_optimization_profile, Dims":
        ("createOptimizationProfile(", "setDimensions(", "addOptimizationProfile(", "Dims64"),
    "create_timing_cache, set_timing_cache, get_timing_cache, serialize":
        ("createTimingCache(", "setTimingCache(", "getTimingCache(", "serialize("),
    "build_serialized_network": ("buildSerializedNetwork(",),
    "Runtime, deserialize_cuda_engine": ("createInferRuntime(", "deserializeCudaEngine("),
    "num_io_tensors, get_tensor_name, get_tensor_mode, get_tensor_dtype": (
        "getNbIOTensors(", "getIOTensorName(", "getTensorIOMode(", "getTensorDataType("),
    "get_tensor_shape, get_tensor_profile_shape, create_execution_context":
        ("getTensorShape(", "getProfileShape(", "createExecutionContext("),
    "TensorIOMode.INPUT/OUTPUT, DataType.FLOAT": ("kINPUT", "kOUTPUT", "kFLOAT"),
    "set_input_shape, set_tensor_address, execute_async_v3": ("setInputShape(", "setTensorAddress(", "enqueueV3("),
}
PARSER_CALLS = ("createParser(", "parse(", "getNbErrors(", "getError(")  # OnnxParser, parse, num_errors, get_error


def header_text(version: str) -> tuple[str, list[str]]:
    include = HEADERS / version / "include"
    if not include.is_dir():
        pytest.skip(f"TensorRT {version} headers not found: expected {include} (../shared/third_party/"
                    "tensorrt-headers beside the repo)")
    files = sorted(include.glob("*.h"))
    return "\n".join(f.read_text() for f in files), [f.name for f in files]


def undeprecated_declaration(text: str, symbol: str) -> bool:
    """`symbol` appears in code (not only comments), and not on a TRT_DEPRECATED line or after one."""
    lines = text.splitlines()
    pattern = re.compile(r"\b" + re.escape(symbol.removesuffix("(")) + (r"\s*\(" if symbol.endswith("(") else r"\b"))
    for i, line in enumerate(lines):
        code = line.split("//")[0]
        if pattern.search(code) and "TRT_DEPRECATED" not in code and "TRT_DEPRECATED" not in lines[i - 1]:
            return True
    return False


@pytest.mark.parametrize("version", ["10.3.0", "11.1"])
def test_every_tensorrt_call_of_the_layer_exists_in_the_cpp_api(version):
    text, files = header_text(version)
    missing = {py: s for py, symbols in CPP_CALLS.items() for s in symbols if not undeprecated_declaration(text, s)}
    assert missing == {}, f"TensorRT {version} lacks (or deprecates) the C++ side of these Python calls"
    if "NvOnnxParser.h" in files:  # the 10.3.0 set has no parser header (it lived in onnx-tensorrt then)
        assert [s for s in PARSER_CALLS if not undeprecated_declaration(text, s)] == []


def test_precision_flags_exist_in_10x_and_are_gone_in_11x():
    """Why build_settings sets FP16/INT8 flags on 10.x only, and why the network is created with
    no flags: 11.x dropped the precision flags and deprecated kSTRONGLY_TYPED (renumbered 1 → 0)."""
    def enum(text: str, name: str) -> str:
        start = text.index(f"enum class {name}")
        return text[start:text.index("};", start)]

    old, _ = header_text("10.3.0")
    new, _ = header_text("11.1")
    for flag in ("kFP16", "kINT8"):
        assert re.search(rf"\b{flag}\b", enum(old, "BuilderFlag")) and not re.search(rf"\b{flag}\b", enum(new, "BuilderFlag"))
    assert re.search(r"kSTRONGLY_TYPED = 1", enum(old, "NetworkDefinitionCreationFlag"))
    assert re.search(r"kSTRONGLY_TYPED TRT_DEPRECATED_ENUM = 0", enum(new, "NetworkDefinitionCreationFlag"))
    assert {f for p in PRECISIONS.values() for f in p.tensorrt_flags} <= {"FP16", "INT8"}


def test_builder_calls_through_a_stand_in_tensorrt(monkeypatch, tmp_path):
    """The builder calls, through a stand-in tensorrt module: fp32 clears TF32 (on by default in
    10.x and 11.x), fp16 on 10.x sets FP16 and leaves TF32 alone; a foreign timing cache is
    replaced by a fresh one."""
    import torch

    from mimic_edge.export import tensorrt as layer

    calls, answers = [], {"parse": True, "build_serialized_network": b"plan", "serialize": b"cache"}

    class Recorder:
        def __init__(self, *args, **kwargs):
            pass

        def __getattr__(self, name):
            def call(*args, **kwargs):
                calls.append((name, *args))
                answer = answers.get(name, Recorder())
                return answer.pop(0) if isinstance(answer, list) else answer
            return call

    trt = types.ModuleType("tensorrt")
    trt.__version__ = "10.3.0"
    trt.Logger = Recorder
    trt.Logger.WARNING = "WARNING"
    trt.Builder = trt.OnnxParser = Recorder
    trt.MemoryPoolType = types.SimpleNamespace(WORKSPACE="WORKSPACE")
    trt.BuilderFlag = types.SimpleNamespace(FP16="FP16", INT8="INT8", TF32="TF32")
    trt.Dims = list
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setattr(layer, "require_tensorrt", lambda: "10.3.0")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda: (8, 7))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda: "Stand-in GPU")
    dims = {"text": 300, "audio": 74, "vision": 47}
    for precision, expected in (("fp32", [("clear_flag", "TF32")]), ("fp16", [("set_flag", "FP16")])):
        calls.clear()
        layer.build_engine(b"onnx", tmp_path / f"{precision}.engine", PRECISIONS[precision], make_profile("1:1:8", "1:50:100"),
                           dims, tmp_path / "cache")
        assert [c for c in calls if c[0] in ("set_flag", "clear_flag")] == expected
    # A timing cache from another TensorRT or GPU is refused by set_timing_cache: the build starts a fresh one
    (tmp_path / "cache").write_bytes(b"foreign")
    calls.clear()
    answers["set_timing_cache"] = [False, True]
    layer.build_engine(b"onnx", tmp_path / "again.engine", PRECISIONS["fp32"], make_profile("1:1:8", "1:50:100"), dims,
                       tmp_path / "cache")
    assert [c[1] for c in calls if c[0] == "create_timing_cache"] == [b"foreign", b""]
