"""`mimic-edge export --format triton`: a model repository for Triton Inference Server. Every
generated config.pbtxt is parsed into Triton's own ModelConfig protobuf message
(tritonclient's model_config_pb2, fetched once into .cache/ like tensorrt-stubs: as a
requirement, tritonclient would pin protobuf and ml-dtypes below what onnx uses here)."""
from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest

from mimic_edge.config import MODALITIES, OUTPUT_NAME
from mimic_edge.errors import ArtifactValidationError, ConfigError
from mimic_edge.export import ExportConfig, export
from mimic_edge.export.precisions import PRECISIONS
from mimic_edge.export.triton import ServingConfig, model_config, precision_mode
from mimic_edge.runtime import load

REPO = Path(__file__).resolve().parents[2]
TRITONCLIENT = "2.73.0"
CACHE = REPO / ".cache" / f"tritonclient-{TRITONCLIENT}"
DIMS = {"text": 300, "audio": 74, "vision": 47}
SMALL = dict(calib_samples=64, valid_samples=64)


@pytest.fixture(scope="module")
def model_config_pb2():
    """Triton's ModelConfig message, from tritonclient's generated module (needs only protobuf)."""
    module = CACHE / "model_config_pb2.py"
    if not module.is_file():
        with tempfile.TemporaryDirectory() as tmp:
            fetched = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
                                      "--quiet", "-d", tmp, f"tritonclient=={TRITONCLIENT}"],
                                     capture_output=True, text=True, timeout=300)
            if fetched.returncode != 0:
                pytest.skip(f"could not fetch tritonclient {TRITONCLIENT} with pip (no network?): "
                            f"{fetched.stderr.strip().splitlines()[-1:]}")
            (wheel,) = Path(tmp).glob("*.whl")
            with zipfile.ZipFile(wheel) as archive:
                source = archive.read("tritonclient/grpc/model_config_pb2.py")
            CACHE.mkdir(parents=True, exist_ok=True)
            (CACHE / "model_config_pb2.py.tmp").write_bytes(source)
            (CACHE / "model_config_pb2.py.tmp").replace(module)  # whole or absent
    spec = importlib.util.spec_from_file_location("triton_model_config_pb2", module)
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


def parse(pb2, text: str):
    from google.protobuf import text_format

    return text_format.Parse(text, pb2.ModelConfig())


@pytest.mark.parametrize("serving", [
    ServingConfig(64),
    ServingConfig(8, "cpu", instances=4, max_queue_delay_us=0),
    ServingConfig(1024, "cuda", instances=2, max_queue_delay_us=500),
    ServingConfig(32, "cuda", accelerator="tensorrt", precision_mode="FP16"),
    ServingConfig(32, "cuda", accelerator="tensorrt", precision_mode="INT8"),
    ServingConfig(32, "cuda", accelerator="tensorrt"),
])
def test_every_config_is_a_valid_triton_model_config(model_config_pb2, serving):
    config = parse(model_config_pb2, model_config("mimic-best-fp16", DIMS, 1, serving))
    assert (config.name, config.backend, config.max_batch_size) == ("mimic-best-fp16", "onnxruntime",
                                                                     serving.max_batch_size)
    fp32 = model_config_pb2.DataType.Value("TYPE_FP32")
    assert [(i.name, i.data_type, list(i.dims)) for i in config.input] == [(m, fp32, [-1, DIMS[m]]) for m in MODALITIES]
    assert [(o.name, o.data_type, list(o.dims)) for o in config.output] == [(OUTPUT_NAME, fp32, [1])]
    assert config.dynamic_batching.max_queue_delay_microseconds == serving.max_queue_delay_us
    (group,) = config.instance_group
    kind = {"cpu": "KIND_CPU", "cuda": "KIND_GPU"}[serving.device]
    assert (group.count, group.kind) == (serving.instances, model_config_pb2.ModelInstanceGroup.Kind.Value(kind))
    assert config.optimization.graph.level == 1  # EXTENDED, as validated
    accelerators = list(config.optimization.execution_accelerators.gpu_execution_accelerator)
    if serving.accelerator:
        (trt,) = accelerators
        assert trt.name == "tensorrt" and trt.parameters["precision_mode"] == serving.precision_mode
    else:
        assert accelerators == []


@pytest.fixture(scope="module")
def checkpoint(exports, tmp_path_factory):
    from mimic_edge import save_checkpoint

    return str(save_checkpoint(exports.model("mimic"), tmp_path_factory.mktemp("ckpt") / "mimic").with_suffix(""))


def test_export_writes_a_repository_triton_can_load(checkpoint, tmp_path, model_config_pb2):
    result = export(ExportConfig(checkpoint=checkpoint, format="triton", batch="1:1:16", out=str(tmp_path / "repo"),
                                 **SMALL), log=lambda _: None)
    model = tmp_path / "repo" / "mimic-fp32"
    assert result.model_dir == model and result.onnx_path == model / "1" / "model.onnx"
    assert sorted(str(p.relative_to(model)) for p in model.rglob("*")) == [
        "1", "1/model.onnx", "1/validation.json", "config.pbtxt"]
    config = parse(model_config_pb2, (model / "config.pbtxt").read_text())
    assert config.name == model.name and config.max_batch_size == 16  # Triton requires name == folder
    report = json.loads((model / "1" / "validation.json").read_text())
    assert report["passed"] and report["format"] == "triton" and report["triton"]["model"] == "mimic-fp32"
    plain = export(ExportConfig(checkpoint=checkpoint, out=str(tmp_path / "plain"), **SMALL), log=lambda _: None)
    assert result.onnx_path.read_bytes() == plain.onnx_path.read_bytes()  # the same artifact, laid out for Triton


@pytest.mark.parametrize("options, message", [
    (dict(precision="int8"), r"judged by TensorRT's int8 arithmetic.*expected --device cuda --accelerator tensorrt"),
    (dict(precision="int8", target="cpu", device="cuda"), r"made for ONNX Runtime's CPU integer kernels: expected "
                                                          r"--device cpu"),
    (dict(accelerator="tensorrt"), r"--accelerator tensorrt runs on a GPU: expected --device cuda"),
    (dict(instances=0), r"instances must be an integer >= 1, found 0"),
    (dict(max_queue_delay_us=-1), r"max_queue_delay_us must be an integer >= 0"),
])
def test_a_server_that_would_not_run_what_was_judged_is_refused_before_any_work(tmp_path, options, message):
    with pytest.raises(ConfigError, match=message):
        export(ExportConfig(format="triton", out=str(tmp_path), **options), log=lambda _: None)
    assert list(tmp_path.iterdir()) == []


def test_a_version_of_another_model_is_replaced_only_with_force(checkpoint, exports, tmp_path):
    out = str(tmp_path)
    first = export(ExportConfig(checkpoint=checkpoint, format="triton", out=out, **SMALL), log=lambda _: None)
    export(ExportConfig(checkpoint=checkpoint, format="triton", out=out, **SMALL), log=lambda _: None)  # same: fine
    import torch

    from mimic_edge import save_checkpoint
    from mimic_edge.models import build_model

    torch.manual_seed(1)
    other = save_checkpoint(build_model("mimic").eval(), tmp_path / "ckpt" / "mimic").with_suffix("")
    with pytest.raises(ConfigError, match="exists and holds another model"):
        export(ExportConfig(checkpoint=str(other), format="triton", out=out, **SMALL), log=lambda _: None)
    replaced = export(ExportConfig(checkpoint=str(other), format="triton", out=out, force=True, **SMALL),
                      log=lambda _: None)
    assert replaced.onnx_path == first.onnx_path and replaced.report["weights"] != first.report["weights"]
    assert sorted(p.name for p in first.model_dir.iterdir()) == ["1", "config.pbtxt"]  # nothing staged left
    assert export(ExportConfig(checkpoint=checkpoint, format="triton", out=out, model_version=2, **SMALL),
                  log=lambda _: None).onnx_path == first.model_dir / "2" / "model.onnx"  # a new version beside


def test_a_failed_validation_leaves_its_report_beside_the_model(checkpoint, tmp_path, monkeypatch):
    from mimic_edge.export import pipeline

    real = pipeline.validate

    def failing(*args, **kwargs):
        report = real(*args, **kwargs)
        report["checks"][0]["passed"] = report["passed"] = False
        return report

    monkeypatch.setattr(pipeline, "validate", failing)
    with pytest.raises(ArtifactValidationError, match=r"report: .*mimic-fp32.validation.json"):
        export(ExportConfig(checkpoint=checkpoint, format="triton", out=str(tmp_path), **SMALL), log=lambda _: None)
    # no model folder without a version: Triton would fail to load it; the report beside, which it ignores
    assert [p.name for p in tmp_path.iterdir()] == ["mimic-fp32.validation.json"]


def test_the_accelerators_precision_is_the_artifacts():
    assert {key: precision_mode(entry.tensorrt_flags) for key, entry in PRECISIONS.items() if entry.tensorrt} == {
        "fp32": "FP32", "fp16": "FP16", "int8": "INT8"}


def test_a_model_with_lengths_takes_one_int64_per_sample(model_config_pb2, checkpoint, tmp_path):
    """--lengths: the three lengths inputs, one int64 per request item, reshaped to the graph's (batch,)."""
    result = export(ExportConfig(checkpoint=checkpoint, format="triton", lengths=True, out=str(tmp_path), **SMALL),
                    log=lambda _: None)
    config = parse(model_config_pb2, (result.model_dir / "config.pbtxt").read_text())
    int64 = model_config_pb2.DataType.Value("TYPE_INT64")
    lengths = [(i.name, i.data_type, list(i.dims), list(i.reshape.shape), i.HasField("reshape")) for i in config.input[3:]]
    assert lengths == [(f"{m}_lengths", int64, [1], [], True) for m in MODALITIES]
    assert result.report["lengths"] is True


def test_an_engine_becomes_a_tensorrt_plan_model_beside(checkpoint, tmp_path, model_config_pb2, monkeypatch):
    """--engine (GPU instances): the engine, validated as with --format onnx, as `<model>-plan` with
    platform tensorrt_plan, its sidecar and report in the version folder. No TensorRT here: a
    stand-in builder and loader (as in test_export.py) run the staging, validation and layout."""
    import pathlib

    from mimic_edge.export import pipeline
    from mimic_edge.export.tensorrt import BuiltEngine

    class StandIn:  # the ONNX artifact's scores, read through the engine's path
        backend, takes_lengths = "tensorrt", False

        def __init__(self, path):
            self.inner = load(next(pathlib.Path(path).parent.parent.glob("*.onnx")))

        def predict(self, *inputs, lengths=None):
            return self.inner.predict(*inputs)

    def build(onnx_bytes, engine_path, precision, profile, dims, timing_cache, lengths=False):
        engine_path.write_bytes(b"plan:" + onnx_bytes[:64])
        return BuiltEngine(engine_path, "10.3.0", "Stand-in GPU", "9.0")

    monkeypatch.setattr(pipeline, "unavailable_reason", lambda: None)
    monkeypatch.setattr(pipeline, "build_engine", build)
    monkeypatch.setattr(pipeline, "load", lambda path: StandIn(path) if str(path).endswith(".engine") else load(path))
    result = export(ExportConfig(checkpoint=checkpoint, format="triton", engine=True, device="cuda",
                                 accelerator="tensorrt", batch="1:1:8", out=str(tmp_path), **SMALL), log=lambda _: None)
    plan = tmp_path / "mimic-fp32-plan"
    assert result.engine_path == plan / "1" / "model.plan" and result.engine_skipped is None
    assert sorted(str(p.relative_to(plan)) for p in plan.rglob("*")) == [
        "1", "1/model.plan", "1/model.plan.json", "1/validation.json", "config.pbtxt"]
    config = parse(model_config_pb2, (plan / "config.pbtxt").read_text())
    assert (config.name, config.platform, config.backend, config.max_batch_size) == ("mimic-fp32-plan",
                                                                                      "tensorrt_plan", "", 8)
    assert config.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.Kind.Value("KIND_GPU")
    report = json.loads((plan / "1" / "validation.json").read_text())
    assert report["passed"] and report["tensorrt_version"] == "10.3.0" and report["artifact"] == "model.plan"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mimic-fp32", "mimic-fp32-plan"]  # nothing staged left


def test_an_engine_model_needs_gpu_instances(tmp_path):
    with pytest.raises(ConfigError, match="tensorrt_plan model, which runs on GPU instances: expected --device cuda"):
        export(ExportConfig(format="triton", engine=True, out=str(tmp_path)), log=lambda _: None)
