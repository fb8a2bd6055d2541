"""`mimic-edge export --format pt2`: AOTInductor packages (export/aoti.py and the pipeline's pt2
path). The compiled package is the session's (`artifacts.pt2()`, compiled once); the rest runs
without compiling: the option checks, the LSTM rewrite, the dynamic shapes, the CUDA variant's
trace (on the meta device) and the pipeline's failure path (with the session's package copied
in place of a compile)."""
from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest
import torch
from torch import nn

from mimic_edge import build_model, save_checkpoint
from mimic_edge.cli import main
from mimic_edge.config import MODALITIES
from mimic_edge.errors import ArtifactValidationError, ConfigError, ExportError
from mimic_edge.export import ExportConfig, aoti, export
from mimic_edge.export.aoti import ExportLSTM, dynamic_shapes, export_program, kernel_choices, pt2_model
from mimic_edge.export.tensorrt import make_profile
from mimic_edge.runtime import load
from mimic_edge.sidecar import file_sha256, sidecar_path

PROFILE = make_profile("1:1:64", "1:50:100")  # the export's defaults at preset mosi
EAGER_ATOL = 1e-5  # same fp32 kernels (oneDNN LSTMs, the same GEMMs up to blocking): measured ≤ 3e-8


def quiet(_line: str) -> None:
    pass


def assert_close(found: np.ndarray, expected: np.ndarray, atol: float, what: str) -> None:
    assert found.shape == expected.shape, f"{what}: shape {found.shape}, expected {expected.shape}"
    diff = np.abs(found.astype(np.float64) - expected)
    assert not np.isnan(found).any(), f"{what}: NaN at {np.argwhere(np.isnan(found))[:5].tolist()}"
    where = np.unravel_index(diff.argmax(), diff.shape)
    assert diff.max() <= atol, f"{what}: max abs error {diff.max():.3g} at {where}"


# --- options: refused before any work ---------------------------------------------------------

@pytest.mark.parametrize("options, message", [
    (dict(format="zip"), "unknown format 'zip': expected one of onnx, pt2"),
    (dict(format="pt2", device="tpu"), "unknown device 'tpu': expected one of cpu, cuda"),
    (dict(format="pt2", precision="int8"), "--format pt2 compiles the fp32 model.*--precision fp32.*found int8"),
    (dict(format="pt2", engine=True), "--engine builds a TensorRT engine from an ONNX artifact.*found --format pt2"),
    (dict(device="cuda"), "--device cuda chooses what a pt2 package is compiled for.*found --format onnx"),
])
def test_bad_pt2_options_are_refused_before_any_work(tmp_path, options, message):
    with pytest.raises(ConfigError, match=message):
        export(ExportConfig(out=str(tmp_path / "out"), **options), log=quiet)
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_a_cuda_package_needs_a_gpu_and_says_so_before_any_work(tmp_path):
    with pytest.raises(ConfigError, match="--format pt2 --device cuda: compiling a CUDA package needs a CUDA GPU"):
        export(ExportConfig(format="pt2", device="cuda", out=str(tmp_path / "out")), log=quiet)
    assert not (tmp_path / "out").exists()


def test_cli_pt2_errors_are_one_line(tmp_path, capsys):
    assert main(["export", "--format", "pt2", "--precision", "int8", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "--format pt2 compiles the fp32 model" in err and "Traceback" not in err


def test_cli_help_shows_the_pt2_format(capsys):
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    out = capsys.readouterr().out
    assert "--format {onnx,pt2}" in out and "--device {cpu,cuda}" in out and "--format pt2 --device cuda" in out


# --- what is compiled -----------------------------------------------------------------------

def test_kernels_per_device():
    mimic = build_model("mimic").config
    assert kernel_choices(mimic, "cpu") == {"fusion_head": "torch", "encoder": "torch"}
    expected = "triton" if aoti.triton_head_usable(torch.device("cuda")) else "torch"  # Triton installed or not
    assert kernel_choices(mimic, "cuda") == {"fusion_head": expected, "encoder": "torch"}
    assert kernel_choices(build_model("misa").config, "cuda") == {}  # no fusion head to fuse


@pytest.mark.skipif(not aoti.triton_head_usable(torch.device("cuda")), reason="triton is not installed")
def test_on_cuda_the_model_config_uses_the_fused_triton_head():
    config = build_model("mimic").config
    assert dataclasses.replace(config, **kernel_choices(config, "cuda")).fusion_head == "triton"


def test_a_cpu_package_uses_the_pytorch_head_whatever_the_checkpoint_says():
    model = build_model("mimic", fusion_head="triton").eval()
    compiled = pt2_model(model, "cpu")
    assert compiled.config.fusion_head == "torch"
    assert not any(type(m) is nn.LSTM for m in compiled.modules())
    assert sum(isinstance(m, ExportLSTM) for m in compiled.modules()) == 3


@pytest.mark.parametrize("layers, bidirectional, batch_first", [(1, True, True), (2, True, False), (1, False, True)])
@pytest.mark.parametrize("batch, length", [(1, 1), (3, 6)])
def test_export_lstm_equals_nn_lstm(layers, bidirectional, batch_first, batch, length):
    torch.manual_seed(0)
    lstm = nn.LSTM(7, 5, num_layers=layers, bidirectional=bidirectional, batch_first=batch_first).eval()
    rewritten = ExportLSTM.from_lstm(lstm, "cpu").eval()
    assert rewritten.state_dict().keys() == lstm.state_dict().keys()
    x = torch.randn(batch, length, 7) if batch_first else torch.randn(length, batch, 7)
    with torch.no_grad():
        (out, (h, c)), (out2, (h2, c2)) = lstm(x), rewritten(x)
    for name, a, b in (("output", out, out2), ("h_n", h, h2), ("c_n", c, c2)):
        assert_close(b.numpy(), a.numpy(), 1e-6, name)


@pytest.mark.parametrize("name", ["mimic", "misa"])
def test_the_compiled_module_equals_the_model_in_eager_mode(name, make_inputs):
    torch.manual_seed(0)
    model = build_model(name).eval()
    compiled = pt2_model(model, "cpu")
    for batch, lengths in ((1, (1, 1, 1)), (3, (7, 4, 5))):
        inputs = make_inputs(model.config, batch, lengths)
        with torch.no_grad():
            assert_close(compiled(*inputs).numpy(), model(*inputs).numpy(), 1e-6, f"{name} b={batch} L={lengths}")


def test_dynamic_shapes_follow_the_ranges():
    examples, shapes = dynamic_shapes(PROFILE)
    assert examples == {m: (2, 50) for m in MODALITIES}  # batch opt 1 → 2: a size-1 example would be specialised
    batch = shapes["text"][0]
    assert (batch.min, batch.max) == (1, 64) and shapes["audio"][0] is batch  # one batch axis for all inputs
    assert {m: (shapes[m][1].min, shapes[m][1].max) for m in MODALITIES} == {m: (1, 100) for m in MODALITIES}
    assert len({shapes[m][1].__name__ for m in MODALITIES}) == 3  # one sequence axis per modality
    examples, shapes = dynamic_shapes(make_profile("8", "1:1:3"))
    assert examples["text"] == (8, 2) and list(shapes["text"]) == [1]  # MIN == MAX: a static batch


def test_cuda_variant_traces_with_dynamic_axes_on_the_meta_device():
    """The CUDA package's graph, traced without a GPU: cuDNN's LSTM op (its meta kernel) keeps
    the sequence axes dynamic; compiling and running it is benchmarks/gpu_check.sh's."""
    torch.manual_seed(0)
    model = build_model("mimic").eval()
    for name, module in list(model.named_modules()):
        if type(module) is nn.LSTM:
            model.set_submodule(name, ExportLSTM.from_lstm(module, "cuda"))
    program = export_program(model.to("meta"), PROFILE, "meta")
    ranges = sorted((int(r.lower), int(r.upper)) for r in program.range_constraints.values())
    assert ranges == [(1, 64), (1, 100), (1, 100), (1, 100)]
    targets = [str(n.target) for n in program.graph.nodes if n.op == "call_function"]
    assert targets.count("aten._cudnn_rnn.default") == 3 and "aten.lstm.input" not in targets


@pytest.mark.skipif(not aoti.triton_head_usable(torch.device("cpu")), reason="needs triton (CPU: TRITON_INTERPRET=1)")
def test_the_fused_triton_head_is_inside_the_exported_program():
    """What AOTInductor compiles into a CUDA package: the fused head's triton_op stays one node of
    the exported program (here traced on CPU through Triton's interpreter)."""
    torch.manual_seed(0)
    model = build_model("mimic", fusion_head="triton").eval()
    for name, module in list(model.named_modules()):
        if type(module) is nn.LSTM:
            model.set_submodule(name, ExportLSTM.from_lstm(module, "cpu"))
    program = export_program(model, PROFILE, "cpu")
    targets = [str(n.target) for n in program.graph.nodes if n.op == "call_function"]
    assert "mimic_edge.fusion_head.default" in targets and "aten.max_pool3d.default" not in targets


def test_a_failed_trace_is_one_export_error(monkeypatch, tmp_path):
    def fail(*args):
        raise RuntimeError("Constraints violated (seq_text)!\n  - a long explanation")

    monkeypatch.setattr(aoti, "export_program", fail)
    with pytest.raises(ExportError, match=r"^torch.export failed for cpu \(batch 1..64, sequences 1..100\): "
                                          r"RuntimeError: Constraints violated \(seq_text\)!$"):
        aoti.build_package(build_model("mimic").eval(), PROFILE, "cpu", tmp_path / "m.pt2")


# --- the session's package ------------------------------------------------------------------

@pytest.mark.slow
def test_export_writes_the_package_its_sidecar_and_report(artifacts):
    path = artifacts.pt2()
    assert path.name == "mimic.cpu.pt2"
    sidecar = json.loads(sidecar_path(path).read_text())
    report = json.loads(path.with_name("mimic.cpu.pt2.validation.json").read_text())
    assert report["passed"] and report["format"] == "pt2" and report["precision"] == "fp32"
    assert report["artifact"] == path.name
    assert report["artifact_sha256"] == sidecar["package_sha256"] == file_sha256(path)
    assert report["not_run"] == []
    assert report["ranges"] == {"batch": [1, 1, 64], "seq": {m: [1, 50, 100] for m in MODALITIES}}
    assert (sidecar["device"], sidecar["fusion_head"], sidecar["lstm"]) == ("cpu", "torch", "aten.mkldnn_rnn_layer")
    assert sidecar["torch_version"] == torch.__version__ and sidecar["cuda_arch"] is None
    config = artifacts.model.config
    assert sidecar["config_digest"] == config.digest() and sidecar["dims"] == config.dims
    assert sidecar["weights"].startswith("sha256:")
    assert not [p.name for p in path.parent.iterdir() if p.name.startswith(".")]  # no staging folder left
    metadata = torch._inductor.aoti_load_package(str(path)).get_metadata()  # what the C++ example reads
    assert metadata["mimic_edge.text_dim"] == "300" and metadata["mimic_edge.vision_seq_max"] == "100"
    assert metadata["mimic_edge.torch_version"] == torch.__version__ and metadata["AOTI_DEVICE_KEY"] == "cpu"


@pytest.mark.slow
@pytest.mark.parametrize("batch, lengths", [
    (1, (1, 1, 1)),  # the ranges' minimum: the example inputs were 2 long on every dynamic axis
    (64, (100, 100, 100)),  # the maximum
    (2, (1, 100, 37)),
    (5, (50, 20, 35)),
])
def test_the_package_equals_eager_pytorch_across_the_ranges(artifacts, make_inputs, batch, lengths):
    inputs = make_inputs(artifacts.model.config, batch, lengths, seed=batch)
    with torch.no_grad():
        expected = artifacts.model(*inputs).double().numpy()
    found = load(artifacts.pt2()).predict(*(x.numpy() for x in inputs))
    assert_close(found, expected, EAGER_ATOL, f"b={batch} L={lengths}")


@pytest.mark.slow
def test_a_package_that_fails_validation_is_not_written(artifacts, tmp_path, monkeypatch):
    """The session's package stands in for the compile, for a checkpoint with other weights: the
    validation fails, the report says so, and neither package nor sidecar is left under the final
    names (an older package there is removed), nor any staging folder."""
    torch.manual_seed(1)
    other = save_checkpoint(build_model("mimic").eval(), tmp_path / "mimic")

    def copy_instead_of_compiling(model, profile, device, path):
        shutil.copyfile(artifacts.pt2(), path)
        return aoti.BuiltPackage(path, "torch", "aten.mkldnn_rnn_layer", 0.0, 0.0)

    monkeypatch.setattr(aoti, "build_package", copy_instead_of_compiling)
    out = tmp_path / "out"
    out.mkdir()
    (out / "mimic.cpu.pt2").write_bytes(b"an older package")
    with pytest.raises(ArtifactValidationError, match="mimic.cpu.pt2 failed .* validation checks"):
        export(ExportConfig(checkpoint=str(other), format="pt2", out=str(out), valid_samples=16, force=True),  # no report
               log=quiet)
    assert sorted(p.name for p in out.iterdir()) == ["mimic.cpu.pt2.validation.json"]
    assert json.loads((out / "mimic.cpu.pt2.validation.json").read_text())["passed"] is False
