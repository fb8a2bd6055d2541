"""The bench's `aoti` backend: it times AotiPredictor.predict on the package exported for the
bench's device, cached by weights digest like the ONNX artifacts. The session's package
(tests/conftest.py) is put in the cache, so that no test here compiles one."""
import json
import shutil

import numpy as np
import pytest
import torch

from mimic_edge import build_model
from mimic_edge.bench import BenchConfig, run_bench
from mimic_edge.bench import backends
from mimic_edge.bench.backends import BackendUnavailable, Context, artifact_dir, setup_aoti
from mimic_edge.bench.config import BACKENDS
from mimic_edge.errors import ArtifactError
from mimic_edge.runtime.aoti_predictor import AotiPredictor
from mimic_edge.sidecar import sidecar_path

pytestmark = pytest.mark.slow  # the session's package takes a minute to compile, once
TINY = dict(iters=3, warmup=1, seq_len=6)


def cached(artifacts, cache_dir):
    """The session's package where the bench looks for the seeded MIMIC of preset mosi."""
    torch.manual_seed(0)  # the bench's model: seed 0, as the session's checkpoint
    folder = artifact_dir(build_model("mimic").eval(), "mimic", "mosi", cache_dir)
    folder.mkdir(parents=True)
    package = folder / "mimic-mosi.cpu.pt2"  # the export's name for a model given in memory
    shutil.copyfile(artifacts.pt2(), package)
    shutil.copyfile(sidecar_path(artifacts.pt2()), sidecar_path(package))
    return package


def test_aoti_backend_times_predict_on_the_cached_package(artifacts, tmp_path, monkeypatch):
    package = cached(artifacts, tmp_path)
    monkeypatch.setattr(backends.exporter, "export", lambda *a, **k: pytest.fail("the cached package was not reused"))
    calls, predict = [], AotiPredictor.predict

    def counted(self, text, audio, vision):
        calls.append((type(text), text.shape))
        return predict(self, text, audio, vision)

    monkeypatch.setattr(AotiPredictor, "predict", counted)
    rows = run_bench(BenchConfig(models=("mimic",), backends=("aoti",), batch_sizes=(1, 2), device="cpu",
                                 cache_dir=str(tmp_path), threads=1, **TINY))
    assert [r["status"] for r in rows] == ["ok", "ok"], rows
    assert calls == [(np.ndarray, (b, 6, 300)) for b in (1, 2) for _ in range(TINY["warmup"] + TINY["iters"])]
    assert rows[0]["artifact_bytes"] == package.stat().st_size and rows[0]["precision"] == "fp32"
    assert rows[0]["p50_ms"] > 0


def test_a_cached_package_that_cannot_run_here_is_compiled_again(artifacts, tmp_path, monkeypatch):
    package = cached(artifacts, tmp_path)
    record = json.loads(sidecar_path(package).read_text())
    sidecar_path(package).write_text(json.dumps({**record, "torch_version": "2.12.0"}))
    exports = []
    monkeypatch.setattr(backends.exporter, "export", lambda config, log, model: exports.append(config))
    torch.manual_seed(0)
    model = build_model("mimic").eval()
    ctx = Context("mimic", "mosi", "cpu", 1, package.parent, 0, BACKENDS["aoti"], max_batch=8)
    with pytest.raises(ArtifactError, match="compiled for torch 2.12.0"):  # the stub export wrote nothing new
        setup_aoti(model, [np.zeros((1, 6, d), np.float32) for d in (300, 74, 47)], ctx)
    (config,) = exports
    assert (config.format, config.device, config.batch, config.seq) == ("pt2", "cpu", "1:1:8", "1:50:100")


def test_a_cached_package_with_other_kernels_is_compiled_again(artifacts, tmp_path, monkeypatch):
    """A package compiled before Triton was installed (here: one whose sidecar says cuDNN LSTMs)
    would time other kernels than the export now compiles."""
    package = cached(artifacts, tmp_path)
    record = json.loads(sidecar_path(package).read_text())
    assert record["lstm"] == "aten.mkldnn_rnn_layer" and record["fusion_head"] == "torch"
    sidecar_path(package).write_text(json.dumps({**record, "lstm": "aten._cudnn_rnn"}))
    exports = []
    monkeypatch.setattr(backends.exporter, "export", lambda config, log, model: exports.append(config))
    torch.manual_seed(0)
    ctx = Context("mimic", "mosi", "cpu", 1, package.parent, 0, BACKENDS["aoti"], max_batch=8)
    setup_aoti(build_model("mimic").eval(), [np.zeros((1, 6, d), np.float32) for d in (300, 74, 47)], ctx)
    assert [config.format for config in exports] == ["pt2"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_aoti_on_cuda_without_a_gpu_is_unavailable(tmp_path):
    ctx = Context("mimic", "mosi", "cuda", None, tmp_path, 0, BACKENDS["aoti"])
    with pytest.raises(BackendUnavailable, match="compiling a CUDA package needs a CUDA GPU"):
        setup_aoti(build_model("mimic"), [], ctx)
