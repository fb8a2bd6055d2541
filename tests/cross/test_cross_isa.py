"""Export here, run there: int8 artifacts of a trained MIMIC and MISA, exported on this CPU, pass
their gates on x86 without VNNI and on aarch64, judged there against the PyTorch scores computed
here (mimic_edge.export.judge); so does the one `mimic-edge bench` makes. A control proves the emulated x86 runs the saturating kernels:
full-range int8 weights, as `--target cpu` made them before, fail there."""
from __future__ import annotations

import pytest
import torch

from mimic_edge.export import ExportConfig, export

pytestmark = pytest.mark.slow
MODELS = {"mimic": 25, "misa": 8}  # max epochs: trained well past fresh weights, in about a minute in all
TARGETS = {"int8": "tensorrt", "int8-cpu": "cpu"}  # precision key → --target


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, str]:
    from mimic_edge.data import synthetic
    from mimic_edge.train import TrainConfig, train

    folder = tmp_path_factory.mktemp("trained")
    dataset = synthetic("mosi")
    torch.set_num_threads(2)
    return {name: str(train(dataset, TrainConfig(model=name, max_epochs=epochs), folder / name).checkpoint)
            for name, epochs in MODELS.items()}


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory) -> dict[tuple[str, str], tuple]:
    """(model, precision key) → (artifact, saved reference): exported and validated natively. Beside
    the trained models, MISA's fresh weights as `mimic-edge bench` exports them (its ort-int8-cpu row)."""
    out = tmp_path_factory.mktemp("exported")
    configs = {(name, key): ExportConfig(checkpoint=checkpoint, precision="int8", target=TARGETS[key],
                                         out=str(out / name)) for name, checkpoint in trained.items() for key in TARGETS}
    configs["misa-fresh", "int8-cpu"] = ExportConfig(model="misa", precision="int8", target="cpu", out=str(out / "fresh"))
    done = {}
    for (name, key), config in configs.items():
        result = export(config, log=lambda _: None)
        assert result.report["passed"]
        done[name, key] = (result.onnx_path, result.reference.save(out / f"{name}.{key}.reference.npz"))
    return done


def _failed(report: dict) -> list:
    return [(c["check"], c["value"]) for c in report["checks"] if not c["passed"]]


@pytest.mark.parametrize("name, key", [(name, key) for name in MODELS for key in TARGETS] + [("misa-fresh", "int8-cpu")])
def test_int8_passes_its_gates_on_x86_without_vnni(haswell, exported, name, key):
    artifact, reference = exported[name, key]
    report = haswell.judge(artifact, reference, key)
    assert (report["machine"], report["int8_isa"]) == ("x86_64", "avx2")
    assert report["passed"], _failed(report)


def test_full_range_int8_weights_saturate_on_x86_without_vnni(haswell, exported, trained, tmp_path):
    """The control: the int8-cpu graph with 8-bit weights (what the export made before) loses
    its accuracy on AVX2 kernels, so the test above would have caught it."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from mimic_edge.export.onnx import lean, metadata, stamp
    from mimic_edge.export.precision import CPU_QUANTIZED_OPS

    artifact, reference = exported["mimic", "int8-cpu"]
    fp32 = export(ExportConfig(checkpoint=trained["mimic"], out=str(tmp_path)), log=lambda _: None).onnx_path
    full_range = tmp_path / "full-range.onnx"
    quantize_dynamic(fp32, full_range, op_types_to_quantize=list(CPU_QUANTIZED_OPS), weight_type=QuantType.QInt8,
                     per_channel=False, reduce_range=False)
    onnx.save(stamp(lean(onnx.load(full_range)), metadata(onnx.load(artifact))), full_range)
    report = haswell.judge(full_range, reference, "int8-cpu")
    assert report["int8_isa"] == "avx2" and not report["passed"]
    sqnr = next(c["value"] for c in report["checks"] if c["check"] == "validation set sqnr_db")
    assert sqnr < 20  # measured 14.4 dB there; 40.5 dB with VNNI or on ARM


@pytest.mark.parametrize("name", [*MODELS, "misa-fresh"])
def test_int8_cpu_passes_its_gates_on_aarch64_without_torch(aarch64, exported, name):
    artifact, reference = exported[name, "int8-cpu"]
    report = aarch64.judge(artifact, reference, "int8-cpu")
    assert report["machine"] == "aarch64" and report["int8_isa"] in ("neon", "dotprod", "i8mm")
    assert not report["torch_loaded"] and report["onnxruntime"] == "1.19.2"
    assert report["passed"], _failed(report)


def test_predict_on_aarch64_with_the_core_alone(aarch64, trained, exported, tmp_path):
    """`mimic-edge predict` as a Pi runs it: numpy, onnxruntime 1.19.2 and the package, no torch.
    fp32 scores equal this CPU's within fp32's bound (mimic_edge.export.precisions: 1e-4 on any CPU)."""
    import json

    import numpy as np

    from mimic_edge.data import synthetic
    from mimic_edge.export.precisions import PRECISIONS
    from mimic_edge.runtime import load

    fp32 = export(ExportConfig(checkpoint=trained["mimic"], out=str(tmp_path / "fp32")), log=lambda _: None).onnx_path
    valid = synthetic("mosi", n=(1, 8, 1), seed=3)["valid"]
    np.savez(tmp_path / "x.npz", **{m: valid[m] for m in ("text", "audio", "vision")})
    scores = {}
    for artifact in (fp32, exported["mimic", "int8-cpu"][0]):
        done = aarch64.run("-c", "import sys; from mimic_edge.cli import main; code = main(sys.argv[1:]); "
                           "assert 'torch' not in sys.modules; sys.exit(code)",
                           "predict", "--model", str(artifact), "--input", str(tmp_path / "x.npz"), "--json")
        scores[artifact] = np.array(json.loads(done.stdout)["scores"], np.float32)
        assert scores[artifact].shape == (8, 1) and np.isfinite(scores[artifact]).all()
    here = load(fp32).predict(valid["text"], valid["audio"], valid["vision"])
    np.testing.assert_allclose(scores[fp32], here, rtol=0, atol=PRECISIONS["fp32"].thresholds.max_abs)
