"""The C++ TensorRT example: built only where TensorRT and the CUDA toolkit are found; on such a
machine with a GPU, its scores equal the Python runtime's on an exported engine."""
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from mimic_edge.data import synthetic
from mimic_edge.runtime import load, write_inputs

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cpp" / "tensorrt"


def _run(cmd):
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def configured(tmp_path_factory):
    """(build folder, cmake result) of configuring the example."""
    if shutil.which("cmake") is None or shutil.which("c++") is None:
        pytest.skip("configuring the C++ example needs cmake and c++ on PATH")
    build = tmp_path_factory.mktemp("build-trt")
    return build, _run(["cmake", "-S", EXAMPLE, "-B", build])


def test_configure_builds_or_says_what_is_missing(configured):
    build, result = configured
    if result.returncode == 0:
        compiled = _run(["cmake", "--build", build, "-j", "2"])
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
    from mimic_edge.export import ExportConfig, export
    from mimic_edge.export.tensorrt import unavailable_reason

    if reason := unavailable_reason():
        pytest.skip(reason)
    compiled = _run(["cmake", "--build", build, "-j", "2"])
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    engine = export(ExportConfig(checkpoint=str(artifacts.checkpoint), precision="fp16", engine=True,
                                 out=str(tmp_path)), log=lambda msg: None).engine_path
    test = synthetic("mosi", n=(1, 1, 4), seed=5)["test"]
    write_inputs(tmp_path / "in", test)
    ran = _run([build / "mimic_trt", engine, tmp_path / "in"])
    assert ran.returncode == 0, ran.stderr
    cpp = np.array([[float(v) for v in line.split()] for line in ran.stdout.splitlines()], np.float32)
    python = load(engine).predict(test["text"], test["audio"], test["vision"])
    np.testing.assert_allclose(cpp, python, atol=1e-6, rtol=0)
