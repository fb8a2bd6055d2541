"""The TensorRT layer: profile parsing and checks and version-dependent settings (pure Python,
run everywhere); engine builds (need tensorrt and a CUDA GPU, skipped with the reason otherwise)."""
from __future__ import annotations

import numpy as np
import pytest

from mimic_edge.config import MODALITIES
from mimic_edge.errors import ConfigError
from mimic_edge.export.tensorrt import (
    BuildSettings, Range, build_settings, default_seq, make_profile, parse_range, unavailable_reason,
)


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
    ("10.3.0", "fp32", BuildSettings(False, ())),
    ("10.3.0", "fp16", BuildSettings(False, ("FP16",))),
    ("10.14.1.48", "int8", BuildSettings(False, ("INT8",))),  # INT8 alone: float parts stay FP32
    ("11.0.0", "fp16", BuildSettings(True, ())),  # 11.x: no precision flags, strongly typed
    ("11.4.1", "int8", BuildSettings(True, ())),
])
def test_build_settings_by_version(version, precision, expected):
    assert build_settings(version, precision) == expected


@pytest.mark.parametrize("version, precision, message", [
    ("8.6.1", "fp16", r"TensorRT 8.6.1: expected 10.x or 11.x"),
    ("dev", "fp16", "unrecognised TensorRT version 'dev'"),
    ("10.3.0", "bf16", "unknown precision 'bf16'"),
])
def test_unsupported_versions_and_precisions(version, precision, message):
    with pytest.raises(ConfigError, match=message):
        build_settings(version, precision)


def test_unavailable_reason_names_what_is_missing():
    reason = unavailable_reason()
    try:
        import tensorrt  # noqa: F401
        has_trt = True
    except ImportError:
        has_trt = False
    if not has_trt:
        assert reason is not None and "tensorrt package is not installed" in reason
    else:
        import torch

        assert (reason is None) == torch.cuda.is_available()


NO_ENGINE = unavailable_reason()


@pytest.mark.gpu
@pytest.mark.tensorrt
@pytest.mark.skipif(NO_ENGINE is not None, reason=f"no TensorRT engine can be built here: {NO_ENGINE}")
@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_engine_build_writes_engine_sidecar_and_cache(tmp_path, precision):
    from mimic_edge.export import ExportConfig, export
    from mimic_edge.runtime import load
    from mimic_edge.sidecar import check_sidecar

    result = export(ExportConfig(precision=precision, engine=True, batch="1:2:8", seq="1:20:50",
                                 calib_samples=64, valid_samples=32, out=str(tmp_path)), log=lambda _: None)
    assert result.engine_skipped is None and result.engine_path.is_file()
    assert (tmp_path / f"mimic-mosi.{precision}.timing-cache").is_file()
    record = check_sidecar(result.engine_path, config_digest=result.report["config_digest"])
    assert record["precision"] == precision and record["profile"]["batch"] == [1, 2, 8]

    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal((3, n, d), dtype=np.float32) for n, d in zip((20, 11, 50), (300, 74, 47))]
    engine_scores = load(result.engine_path).predict(*inputs)
    onnx_scores = load(result.onnx_path).predict(*inputs)
    tolerance = {"fp32": 1e-3, "fp16": 2e-2, "int8": 0.25}[precision]
    np.testing.assert_allclose(engine_scores, onnx_scores, atol=tolerance)
