"""TensorRT engines: the sidecar is checked before TensorRT sees the engine; on a machine with
TensorRT and a GPU, the round trip against PyTorch and the profile's ranges."""
import os
import re
import sys
import types

import numpy as np
import pytest
import torch

from mimic_edge.config import MODALITIES
from mimic_edge.errors import ArtifactError, ConfigError, InputError
from mimic_edge.runtime import load
from mimic_edge.export.tensorrt import write_engine_sidecar as write_sidecar


def fake_engine(path):
    path.write_bytes(os.urandom(4096))
    write_sidecar(path, tensorrt_version="10.3.0", gpu_name="Orin", compute_capability="8.7", precision="fp16",
                  profile={"batch": [1, 1, 64], "seq": {m: [1, 50, 100] for m in MODALITIES}}, model="mimic",
                  preset="mosi", config_digest="0" * 16,
                  dims={"text": 300, "audio": 74, "vision": 47}, onnx_sha256="0" * 64)
    return path


def test_missing_engine(tmp_path):
    with pytest.raises(ArtifactError, match=r"TensorRT engine not found: expected a file at .*missing.engine"):
        load(tmp_path / "missing.engine")


def test_engine_without_sidecar(tmp_path):
    path = tmp_path / "mimic.fp16.engine"
    path.write_bytes(os.urandom(4096))
    with pytest.raises(ArtifactError, match=r"mimic.fp16.engine: no JSON sidecar: expected .*mimic.fp16.engine.json"):
        load(path)


def test_truncated_engine_is_refused_before_tensorrt_sees_it(tmp_path):
    path = fake_engine(tmp_path / "mimic.fp16.plan")
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ArtifactError, match=r"engine bytes .* do not match its sidecar"):
        load(path)


@pytest.mark.parametrize("tensorrt, message", [
    (None, "the tensorrt package is not installed. TensorRT is not on PyPI alone"),
    (types.ModuleType("tensorrt"), "the tensorrt package found is only type stubs (tensorrt-stubs), not TensorRT"),
])
def test_engine_without_tensorrt_says_what_is_missing(tmp_path, monkeypatch, tensorrt, message):
    """A sound engine and sidecar on a machine without TensorRT (or with only its type stubs, an
    empty namespace package): one clear error, not an AttributeError from deep inside."""
    monkeypatch.setitem(sys.modules, "tensorrt", tensorrt)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load(fake_engine(tmp_path / "mimic.fp16.engine"))


@pytest.fixture
def engine(artifacts):
    """The session's FP16 engine (tests/conftest.py), profile batch 1:4:8, sequences 10:50:60."""
    return artifacts.engine("fp16").engine_path


@pytest.mark.gpu
@pytest.mark.tensorrt
def test_engine_round_trip(artifacts, engine):
    predictor = load(engine)
    assert predictor.backend == "tensorrt" and predictor.dims == artifacts.model.config.dims
    assert predictor.seq_range == {m: (10, 60) for m in MODALITIES} and predictor.batch_range == (1, 8)
    gen = torch.Generator().manual_seed(1)
    for batch, lengths in [(1, (50, 50, 50)), (7, (60, 10, 33))]:
        x = [torch.randn(batch, L, artifacts.model.config.dims[m], generator=gen) for m, L in zip(MODALITIES, lengths)]
        with torch.no_grad():
            ref = artifacts.model(*x).numpy()
        out = predictor.predict(*x)
        sqnr = 20 * np.log10(np.linalg.norm(ref) / np.linalg.norm(ref - out))
        assert out.shape == ref.shape and sqnr >= 40.0, f"batch {batch}: SQNR {sqnr:.1f} dB"


@pytest.mark.gpu
@pytest.mark.tensorrt
def test_engine_profile_ranges(engine):
    predictor = load(engine)
    x = {m: np.ones((2, 50, d), np.float32) for m, d in predictor.dims.items()}
    with pytest.raises(InputError, match=r"audio: seq_len 61 is outside the supported range \[10, 60\]"):
        predictor.predict(x["text"], np.ones((2, 61, 74), np.float32), x["vision"])
    with pytest.raises(InputError, match=r"batch size 9 is outside the supported range \[1, 8\]"):
        predictor.predict(*(np.ones((9, 50, d), np.float32) for d in predictor.dims.values()))


@pytest.mark.gpu
@pytest.mark.tensorrt
def test_engine_threads_give_serial_results(engine, threads_match_serial):
    predictor = load(engine)
    rng = np.random.default_rng(0)
    jobs = [[rng.standard_normal((1 + i % 4, 20 + i, d), dtype=np.float32) for d in predictor.dims.values()]
            for i in range(16)]
    threads_match_serial(predictor, jobs, n_threads=4)
