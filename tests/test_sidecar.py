"""The TensorRT engine sidecar: written beside the engine, checked before it is loaded."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mimic_edge.errors import ArtifactError
from mimic_edge.export.tensorrt import write_engine_sidecar as write_sidecar
from mimic_edge.sidecar import check_sidecar, read_sidecar, sidecar_path

PROFILE = {"batch": [1, 1, 64], "seq": {m: [1, 50, 100] for m in ("text", "audio", "vision")}}
BUILT_ON = {"tensorrt_version": "10.3.0", "gpu_name": "Orin", "compute_capability": "8.7"}


@pytest.fixture
def engine(tmp_path):
    path = tmp_path / "mimic-mosi.int8.engine"
    path.write_bytes(b"serialized engine bytes")
    write_sidecar(path, **BUILT_ON, precision="int8", profile=PROFILE, model="mimic", preset="mosi",
                  config_digest="0123456789abcdef", dims={"text": 300, "audio": 74, "vision": 47},
                  onnx_sha256="ab" * 32)
    return path


def test_write_then_check_round_trips(engine):
    assert sidecar_path(engine).name == "mimic-mosi.int8.engine.json"
    record = check_sidecar(engine, environment=dict(BUILT_ON), config_digest="0123456789abcdef")
    assert record == read_sidecar(engine)
    assert (record["precision"], record["model"], record["dims"]["audio"]) == ("int8", "mimic", 74)
    assert record["profile"]["batch"] == [1, 1, 64]


@pytest.mark.parametrize("key, value, expected", [
    ("tensorrt_version", "10.7.0", "TensorRT '10.3.0' but this machine has '10.7.0'"),
    ("gpu_name", "NVIDIA GeForce RTX 4090", "GPU 'Orin' but this machine has 'NVIDIA GeForce RTX 4090'"),
    ("compute_capability", "8.9", "compute capability '8.7' but this machine has '8.9'"),
])
def test_engine_for_another_machine_is_refused(engine, key, value, expected):
    with pytest.raises(ArtifactError, match="built for") as info:
        check_sidecar(engine, environment={**BUILT_ON, key: value})
    assert expected in str(info.value) and "rebuild" in str(info.value)


def test_every_mismatch_is_named_at_once(engine):
    with pytest.raises(ArtifactError) as info:
        check_sidecar(engine, environment={"tensorrt_version": "11.0.0", "gpu_name": "H100",
                                           "compute_capability": "9.0"})
    assert all(word in str(info.value) for word in ("TensorRT", "compute capability", "GPU"))


def test_other_model_config_is_refused(engine):
    with pytest.raises(ArtifactError, match="model config 0123456789abcdef, expected ffff"):
        check_sidecar(engine, environment=BUILT_ON, config_digest="ffff")


def test_replaced_engine_is_refused(engine):
    engine.write_bytes(b"another engine")
    with pytest.raises(ArtifactError, match="do not match its sidecar"):
        check_sidecar(engine, environment=BUILT_ON)


def test_missing_sidecar(engine):
    sidecar_path(engine).unlink()
    with pytest.raises(ArtifactError, match="no JSON sidecar: expected .*engine.json"):
        check_sidecar(engine, environment=BUILT_ON)


@pytest.mark.parametrize("content, expected", [
    ("{not json", "unreadable text"),
    ("[1, 2]", "expected a JSON object, found list"),
    ('{"format_version": 1}', "sidecar lacks"),
])
def test_corrupt_sidecar(engine, content, expected):
    sidecar_path(engine).write_text(content)
    with pytest.raises(ArtifactError, match=expected):
        read_sidecar(engine)


def test_future_format_version(engine):
    path = sidecar_path(engine)
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, "format_version": 99}))
    with pytest.raises(ArtifactError, match="format_version 1, found 99"):
        read_sidecar(engine)


def test_sidecar_module_imports_neither_torch_nor_numpy():
    code = ("import sys, mimic_edge.sidecar; "
            "print(sorted(m for m in ('torch', 'numpy', 'onnx', 'tensorrt') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
