"""mimic_edge.bench.backends: every backend times Predictor.predict; the artifact cache."""
import numpy as np
import pytest
import torch

from mimic_edge import build_model
from mimic_edge.bench import BenchConfig, run_bench
from mimic_edge.errors import InputError
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
    artifact = folder / "model.fp32.onnx"
    assert rows[0]["artifact_bytes"] == artifact.stat().st_size
    assert (folder / "model.fp32.validation.json").is_file()
    written = artifact.stat().st_mtime_ns
    run_bench(cfg)  # same weights: the cached artifact is reused, not exported again
    assert artifact.stat().st_mtime_ns == written and list(tmp_path.iterdir()) == [folder]


def test_int8_for_cpus_has_its_own_row_and_artifact(tmp_path):
    import json

    (row,) = run_bench(BenchConfig(models=("mimic",), backends=("ort-int8-cpu",), batch_sizes=(1,),
                                   cache_dir=str(tmp_path), **TINY))
    assert row["status"] == "ok" and row["precision"] == "int8"
    (folder,) = tmp_path.iterdir()
    report = json.loads((folder / "model.int8-cpu.validation.json").read_text())
    assert report["target"] == "cpu" and report["passed"]
    assert row["artifact_bytes"] == (folder / "model.int8-cpu.onnx").stat().st_size
