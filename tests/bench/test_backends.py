"""mimic_edge.bench.backends: every backend times Predictor.predict; the artifact cache; missing
libraries skip; torch-tensorrt's fp16 switch; TensorRT profiles reach the largest batch."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mimic_edge import build_model
from mimic_edge.bench import BackendUnavailable, BenchConfig, backends, run_bench
from mimic_edge.errors import InputError
from mimic_edge.export.precisions import PRECISIONS
from mimic_edge.runtime.onnx_predictor import OnnxPredictor
from mimic_edge.runtime.torch_predictor import TorchPredictor

TINY = dict(iters=3, warmup=1, seq_len=6)


def count_predict_calls(monkeypatch, cls) -> list:
    """Wrap cls.predict; the list gets (input type, text shape) of each call."""
    calls, predict = [], cls.predict

    def counted(self, text, audio, vision):
        calls.append((type(text), text.shape))
        return predict(self, text, audio, vision)

    monkeypatch.setattr(cls, "predict", counted)
    return calls


def test_eager_times_the_torch_predictor(monkeypatch):
    calls = count_predict_calls(monkeypatch, TorchPredictor)
    (row,) = run_bench(BenchConfig(models=("mimic",), backends=("eager",), batch_sizes=(2,), device="cpu", **TINY))
    assert row["status"] == "ok"
    assert calls == [(np.ndarray, (2, 6, 300))] * (TINY["warmup"] + TINY["iters"])  # numpy in, as a user calls it


def test_torch_predictor_from_model_matches_the_model(make_inputs):
    model = build_model("mimic").eval()
    predictor = TorchPredictor.from_model(model, "cpu")
    inputs = make_inputs(model.config, 2, (5, 4, 3))
    with torch.inference_mode():
        expected = model(*inputs).numpy()
    np.testing.assert_array_equal(predictor.predict(*(x.numpy() for x in inputs)), expected)
    assert predictor.dims == model.config.dims and predictor.out_dim == 1
    with pytest.raises(InputError, match="audio: expected feature dim 74"):  # the same input checks as a checkpoint's predictor
        predictor.predict(inputs[0].numpy(), inputs[1][..., :3].numpy(), inputs[2].numpy())


def test_onnx_runtime_backend_times_predict_exports_once_and_reuses_the_artifact(tmp_path, monkeypatch):
    calls = count_predict_calls(monkeypatch, OnnxPredictor)
    cfg = BenchConfig(models=("mimic",), backends=("ort-fp32",), batch_sizes=(1, 2), cache_dir=str(tmp_path), **TINY)
    rows = run_bench(cfg)
    assert [r["status"] for r in rows] == ["ok", "ok"]
    timed = [call for call in calls if call[1][1] == TINY["seq_len"]]  # the export's validation calls it too
    assert timed == [(np.ndarray, (b, 6, 300)) for b in (1, 2) for _ in range(TINY["warmup"] + TINY["iters"])]
    (folder,) = tmp_path.iterdir()
    artifact = folder / "mimic-mosi.fp32.onnx"
    assert rows[0]["artifact_bytes"] == artifact.stat().st_size
    assert (folder / "mimic-mosi.fp32.validation.json").is_file()
    written = artifact.stat().st_mtime_ns
    run_bench(cfg)  # same weights: the cached artifact is reused, not exported again
    assert artifact.stat().st_mtime_ns == written and list(tmp_path.iterdir()) == [folder]


def test_a_failed_export_fails_every_row_of_its_backend_once(tmp_path, monkeypatch):
    """The export is tried once per run: the next batch sizes fail at once with its error."""
    from mimic_edge.errors import ArtifactValidationError

    attempts = []

    def failing_export(config, log=print, model=None):
        attempts.append(config.precision)
        raise ArtifactValidationError("mimic.int8-cpu.onnx failed 2 of 13 validation checks\n  details", {})

    monkeypatch.setattr(backends.exporter, "export", failing_export)
    rows = run_bench(BenchConfig(models=("mimic",), backends=("ort-int8-cpu",), batch_sizes=(1, 2, 4),
                                 cache_dir=str(tmp_path), **TINY))
    assert attempts == ["int8"]
    first = "ArtifactValidationError: mimic.int8-cpu.onnx failed 2 of 13 validation checks"
    assert [r["status"] for r in rows] == [f"failed: {first}"] + [
        f"failed: ExportFailedEarlier: {first} (failed earlier in this run, not retried)"] * 2


def test_int8_for_cpus_has_its_own_row_and_artifact(tmp_path):
    import json

    (row,) = run_bench(BenchConfig(models=("mimic",), backends=("ort-int8-cpu",), batch_sizes=(1,),
                                   cache_dir=str(tmp_path), **TINY))
    assert row["status"] == "ok" and row["precision"] == "int8"
    (folder,) = tmp_path.iterdir()
    report = json.loads((folder / "mimic-mosi.int8-cpu.validation.json").read_text())
    assert report["target"] == "cpu" and report["passed"]
    assert row["artifact_bytes"] == (folder / "mimic-mosi.int8-cpu.onnx").stat().st_size


def test_a_missing_library_is_a_skip_not_a_crash(monkeypatch, tmp_path):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else find_spec(name, *a))
    (row,) = run_bench(BenchConfig(models=("mimic",), backends=("ort-fp32",), batch_sizes=(1,),
                                   cache_dir=str(tmp_path), **TINY))
    assert row["status"] == "skipped: onnxruntime is not installed (exporting the ONNX artifact and running it)"
    assert list(tmp_path.iterdir()) == []  # nothing exported


def test_without_safetensors_the_rows_that_export_are_skipped_and_eager_runs(monkeypatch, tmp_path):
    """The export identifies weights by their safetensors bytes; a bare image without it still
    gets its eager rows (the GPU check's bench steps do not require it)."""
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "safetensors" else find_spec(name, *a))
    rows = run_bench(BenchConfig(models=("mimic",), backends=("eager", "ort-fp32"), batch_sizes=(1,),
                                 cache_dir=str(tmp_path), **TINY))
    assert [r["status"] for r in rows] == [
        "ok", "skipped: safetensors is not installed (exporting the ONNX artifact and running it)"]


@pytest.mark.parametrize("signature, expected", [
    ("enable_autocast=False, autocast_low_precision_type=None, enabled_precisions=None",  # 2.10-2.12
     {"enable_autocast": True, "autocast_low_precision_type": torch.float16}),
    ("enable_autocast=False, autocast_low_precision_type=None, **kwargs",  # 2.13+: no enabled_precisions
     {"enable_autocast": True, "autocast_low_precision_type": torch.float16}),
    ("enabled_precisions=None, **kwargs", {"enabled_precisions": {torch.float16}}),  # before 2.10
])
def test_torch_tensorrt_fp16_follows_the_installed_signature(signature, expected):
    namespace = {}
    exec(f"def compile(exported_program, inputs=None, *, {signature}): pass", namespace)
    assert backends.torch_tensorrt_fp16(namespace["compile"]) == expected


def test_torch_tensorrt_without_an_fp16_switch_is_skipped_not_mislabelled():
    with pytest.raises(BackendUnavailable, match="neither enable_autocast nor enabled_precisions"):
        backends.torch_tensorrt_fp16(lambda exported_program, **kwargs: None)


class FakeEngine:
    """Stands for a TensorRT predictor: what the bench needs of one."""

    def __init__(self, path):
        self.path = path

    def predict(self, text, audio, vision):
        return np.zeros((len(text), 1), np.float32)


def write_report(onnx_path: Path, config, model) -> None:
    """The validation report the export writes, with what the bench checks before reusing an artifact."""
    from mimic_edge.checkpoint import weights_id
    from mimic_edge.export.precision import recipe
    from mimic_edge.sidecar import file_sha256

    key = onnx_path.name.split(".")[1]
    report = {"passed": True, "precision": key, "config_digest": model.config.digest(), "weights": weights_id(model),
              "recipe": recipe(PRECISIONS[key], config.opset), "artifact_sha256": file_sha256(onnx_path)}
    onnx_path.with_name(onnx_path.name.removesuffix(".onnx") + ".validation.json").write_text(json.dumps(report))


def test_engine_profile_reaches_the_largest_batch(monkeypatch, tmp_path):
    """The TensorRT rows build one engine whose profile runs every batch size asked for, reuse it
    while it reaches, and build again when a run asks for more."""
    from mimic_edge.export.tensorrt import write_engine_sidecar as write_sidecar

    builds = []

    def fake_export(config, log, model):  # what mimic_edge.export.export leaves: the artifact, its report, the engine
        builds.append(config.batch)
        Path(config.out).mkdir(parents=True, exist_ok=True)
        onnx_path = Path(config.out) / f"mimic-{model.config.preset}.{config.precision}.onnx"
        onnx_path.write_bytes(b"onnx")
        write_report(onnx_path, config, model)
        engine = onnx_path.with_suffix(".engine")
        engine.write_bytes(b"plan")
        write_sidecar(engine, tensorrt_version="10.3.0", gpu_name="gpu", compute_capability="8.7",
                      precision=config.precision, profile={"batch": [int(v) for v in config.batch.split(":")],
                                                           "seq": {m: [1, 6, 12] for m in model.config.dims}},
                      model="mimic", preset="mosi", config_digest="0", dims=model.config.dims, onnx_sha256="0")

    monkeypatch.setattr(backends, "unavailable_reason", lambda: None)
    monkeypatch.setattr(backends, "require", lambda *modules, why: None)
    monkeypatch.setattr(backends.exporter, "export", fake_export)
    monkeypatch.setattr(backends, "load", FakeEngine)
    cfg = dict(models=("mimic",), backends=("trt-fp16",), cache_dir=str(tmp_path), **TINY)
    rows = run_bench(BenchConfig(batch_sizes=(1, 1024), **cfg))
    assert [r["status"] for r in rows] == ["ok", "ok"] and builds == ["1:1:1024"]
    assert rows[0]["note"] == "profile batch 1:1:1024"
    run_bench(BenchConfig(batch_sizes=(8, 64), **cfg))
    assert builds == ["1:1:1024"]  # the cached engine reaches batch 64
    run_bench(BenchConfig(batch_sizes=(2048,), **cfg))
    assert builds == ["1:1:1024", "1:1:2048"]


@pytest.mark.parametrize("tamper", ["another artifact copied over it", "truncated", "made by other export code"])
def test_a_cached_artifact_that_is_not_what_the_run_would_build_is_built_again(tmp_path, tamper):
    cfg = BenchConfig(models=("mimic",), backends=("ort-fp32",), batch_sizes=(1,), cache_dir=str(tmp_path), **TINY)
    run_bench(cfg)
    (folder,) = tmp_path.iterdir()
    artifact, report_path = folder / "mimic-mosi.fp32.onnx", folder / "mimic-mosi.fp32.validation.json"
    good = artifact.read_bytes()
    if tamper == "another artifact copied over it":
        run_bench(BenchConfig(**{**cfg.__dict__, "backends": ("ort-int8-cpu",)}))
        artifact.write_bytes((folder / "mimic-mosi.int8-cpu.onnx").read_bytes())
    elif tamper == "truncated":
        artifact.write_bytes(good[:100])
    else:
        report = json.loads(report_path.read_text())
        report_path.write_text(json.dumps({**report, "recipe": "0123456789abcdef"}))
    (row,) = run_bench(cfg)
    assert row["status"] == "ok" and row["artifact_bytes"] == len(good)
    assert artifact.read_bytes() == good  # built again: the same bytes as the first export
    assert json.loads(report_path.read_text())["recipe"] != "0123456789abcdef"


def test_a_full_cache_disk_fails_its_rows_in_one_line(tmp_path, monkeypatch):
    import errno

    write_bytes = Path.write_bytes

    def full(self, data):
        if self.suffix == ".tmp":  # every atomic write's temp file
            raise OSError(errno.ENOSPC, "No space left on device")
        return write_bytes(self, data)

    monkeypatch.setattr(Path, "write_bytes", full)
    rows = run_bench(BenchConfig(models=("mimic",), backends=("eager", "ort-fp32"), batch_sizes=(1,),
                                 cache_dir=str(tmp_path), **TINY))
    assert rows[0]["status"] == "ok"
    assert rows[1]["status"].startswith("failed: WriteError: could not write ") and "No space left" in rows[1]["status"]


def test_memory_columns_say_what_a_loaded_artifact_holds_for_every_row(tmp_path):
    """The same quantity on every row, the first included: the ONNX Runtime session holds at least
    its weights at batch 1 and at batch 8 alike (not the export's memory on the first row and
    nothing on the next), and a call leaks nothing."""
    rows = run_bench(BenchConfig(models=("mimic",), backends=("ort-fp32",), batch_sizes=(1, 8), cache_dir=str(tmp_path),
                                 **TINY))
    sizes = [r["artifact_bytes"] / 2**20 for r in rows]
    loaded = [r["loaded_mb"] for r in rows]
    assert all(held >= 0.9 * size for held, size in zip(loaded, sizes)), loaded
    assert max(loaded) <= 1.25 * min(loaded), loaded
    assert all(abs(r["growth_kb_per_call"]) < 64 for r in rows)  # a batch-8 input alone is 8·50·421·4 B = 660 KB
