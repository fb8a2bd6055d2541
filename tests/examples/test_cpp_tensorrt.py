"""The C++ TensorRT example: compiled for syntax and API use against TensorRT's public headers
(10.3.0 and 11.1, ../shared/third_party/tensorrt-headers) and CUDA's runtime headers from PyPI,
everywhere; built only where TensorRT and the CUDA toolkit are found; on such a machine with a
GPU, its scores equal the Python runtime's on an exported engine."""
import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest
from cpp_example import parse_scores, run

from mimic_edge.data import synthetic
from mimic_edge.export.precisions import PRECISIONS
from mimic_edge.runtime import load, write_inputs

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "cpp" / "tensorrt"
HEADERS = REPO.parent / "shared" / "third_party" / "tensorrt-headers"  # ../shared/... from the repo
# CUDA's runtime headers, from the dev extra's wheels: (package, a header it must hold)
CUDA_HEADER_WHEELS = (("nvidia.cuda_runtime", "cuda_runtime_api.h"),  # nvidia-cuda-runtime-cu12
                      ("nvidia.cuda_nvcc", "crt/host_defines.h"))  # nvidia-cuda-nvcc-cu12


def syntax_only_flags(version: str) -> list[str]:
    """Compiler flags for `-fsyntax-only` against TensorRT `version`'s headers; skips with the
    reason where a compiler or a header set is missing. TensorRT's and CUDA's headers are
    -isystem: they warn about their own deprecations under -Wall -Wextra."""
    compiler = shutil.which("c++") or shutil.which("g++")
    if compiler is None:
        pytest.skip("no C++ compiler (c++ or g++) on PATH")
    trt = HEADERS / version / "include"
    if not (trt / "NvInferRuntime.h").is_file():
        pytest.skip(f"TensorRT {version} headers not found: expected {trt}/NvInferRuntime.h "
                    "(../shared/third_party/tensorrt-headers beside the repo)")
    flags = [compiler, "-std=c++17", "-fsyntax-only", "-Wall", "-Wextra", "-isystem", str(trt)]
    for package, header in CUDA_HEADER_WHEELS:
        spec = importlib.util.find_spec(package)
        include = Path(next(iter(spec.submodule_search_locations))) / "include" if spec else None
        if include is None or not (include / header).is_file():
            pytest.skip(f"CUDA header {header} not found: expected the {package.replace('.', '/')} wheel "
                        "(pip install -e '.[dev]' installs nvidia-cuda-runtime-cu12 and nvidia-cuda-nvcc-cu12)")
        flags += ["-isystem", str(include)]
    return flags + ["-I", str(REPO / "examples" / "cpp" / "common")]


@pytest.mark.parametrize("version", ["10.3.0", "11.1"])
def test_example_compiles_against_the_tensorrt_headers(version):
    """JetPack 6's TensorRT and 11.x: the example's every TensorRT and CUDA call exists with the
    types it is called with, and our own code compiles without a warning."""
    ran = run([*syntax_only_flags(version), EXAMPLE / "main.cpp"])
    assert ran.returncode == 0 and ran.stderr == "", ran.stderr


def test_the_headers_catch_a_call_that_11x_removed(tmp_path):
    """The check has teeth: BuilderFlag::kFP16 compiles against 10.3.0 and not against 11.1."""
    source = tmp_path / "fp16_flag.cpp"
    source.write_text("#include <NvInfer.h>\n"
                      "void enable_fp16(nvinfer1::IBuilderConfig& c) { c.setFlag(nvinfer1::BuilderFlag::kFP16); }\n")
    assert run([*syntax_only_flags("10.3.0"), source]).returncode == 0
    removed = run([*syntax_only_flags("11.1"), source])
    assert removed.returncode != 0 and "kFP16" in removed.stderr


@pytest.fixture(scope="module")
def configured(tmp_path_factory):
    """(build folder, cmake result) of configuring the example."""
    if shutil.which("cmake") is None or shutil.which("c++") is None:
        pytest.skip("configuring the C++ example needs cmake and c++ on PATH")
    build = tmp_path_factory.mktemp("build-trt")
    return build, run(["cmake", "-S", EXAMPLE, "-B", build])


def test_configure_builds_or_says_what_is_missing(configured):
    build, result = configured
    if result.returncode == 0:
        compiled = run(["cmake", "--build", build, "-j", "2"])
        assert compiled.returncode == 0, compiled.stdout + compiled.stderr
        assert (build / "mimic_trt").is_file()
    else:
        assert "TensorRT example not built: needs the CUDA toolkit" in result.stderr, result.stderr


@pytest.mark.gpu
@pytest.mark.tensorrt
def test_cpp_scores_equal_python(configured, artifacts, tmp_path):
    build, result = configured
    if result.returncode != 0:
        pytest.skip("TensorRT's C++ headers or the CUDA toolkit are not installed")
    engine = artifacts.engine("fp16").engine_path  # the session's (skips without TensorRT)
    compiled = run(["cmake", "--build", build, "-j", "2"])
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    test = synthetic("mosi", n=(1, 1, 4), seed=5)["test"]
    write_inputs(tmp_path / "in", test)
    ran = run([build / "mimic_trt", engine, tmp_path / "in"])
    assert ran.returncode == 0, ran.stderr
    cpp = parse_scores(ran.stdout)
    python = load(engine).predict(test["text"], test["audio"], test["vision"])
    np.testing.assert_allclose(cpp, python, atol=PRECISIONS["fp32"].thresholds.max_abs, rtol=0)  # same engine
