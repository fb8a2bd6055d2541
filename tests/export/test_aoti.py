"""`mimic-edge export --format pt2`: AOTInductor packages (export/aoti.py and the pipeline's pt2
path). The compiled package is the session's (`artifacts.pt2()`, compiled once); the rest runs
without compiling: the option checks, the LSTM rewrite, the dynamic shapes, the CUDA variant's
trace (on the meta device) and the pipeline's failure path (with the session's package copied
in place of a compile)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

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
from mimic_edge.export.precisions import PRECISIONS
from mimic_edge.export.shapes import make_profile
from mimic_edge.runtime import load
from mimic_edge.sidecar import file_sha256, sidecar_path

PROFILE = make_profile("1:1:64", "1:50:100")  # the export's defaults at preset mosi
# The package against eager PyTorch: fp32 in other summation orders (oneDNN's blocking, inductor's GEMMs,
# the Triton encoder and head), held to the fp32 bound derived in export/precisions.py.
# Measured: ≤ 3e-8 (oneDNN path), ≤ 1.5e-8 (Triton).
EAGER_ATOL = TRITON_ATOL = PRECISIONS["fp32"].thresholds.max_abs


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


def test_a_cuda_package_needs_the_cuda_toolkit_and_says_so_before_any_work(tmp_path, monkeypatch):
    """A pip-only torch image has CUDA's runtime but no nvcc: AOTInductor would fail after the export."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(aoti, "_cuda_toolkit", lambda: None)
    with pytest.raises(ConfigError, match="--format pt2 --device cuda: compiling a CUDA package needs the CUDA "
                                          "toolkit .nvcc and its headers., found none: set CUDA_HOME"):
        export(ExportConfig(format="pt2", device="cuda", out=str(tmp_path)), log=lambda _: None)
    assert list(tmp_path.iterdir()) == []


def test_cli_pt2_errors_are_one_line(tmp_path, capsys):
    assert main(["export", "--format", "pt2", "--precision", "int8", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "--format pt2 compiles the fp32 model" in err and "Traceback" not in err


def test_cli_help_shows_the_pt2_format(capsys):
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    out = capsys.readouterr().out
    assert "--format {onnx,pt2,triton}" in out and "--device {cpu,cuda}" in out and "--format pt2 --device cuda" in out


# --- what is compiled -----------------------------------------------------------------------

def test_kernels_per_device():
    mimic = build_model("mimic", encoder="triton", fusion_head="triton").config
    assert kernel_choices(mimic, "cpu") == {"fusion_head": "torch", "encoder": "torch"}
    expected = "triton" if aoti.triton_head_usable(torch.device("cuda")) else "torch"  # Triton installed or not
    assert kernel_choices(build_model("mimic").config, "cuda") == {"fusion_head": expected, "encoder": expected}
    assert kernel_choices(build_model("misa").config, "cuda") == {}  # no fusion head to fuse


@pytest.mark.skipif(not aoti.triton_head_usable(torch.device("cuda")), reason="triton is not installed")
def test_on_cuda_the_model_runs_on_both_triton_kernels():
    model = build_model("mimic").eval()  # a checkpoint's defaults: PyTorch encoders and head
    compiled = pt2_model(model, "cuda")
    assert (compiled.config.encoder, compiled.config.fusion_head) == ("triton", "triton")
    # the Triton encoder reads the nn.LSTMs' weights: they stay plain, with the checkpoint's values
    assert sum(type(m) is nn.LSTM for m in compiled.modules()) == 3
    assert not any(isinstance(m, ExportLSTM) for m in compiled.modules())
    assert all(torch.equal(a, b) for a, b in zip(compiled.state_dict().values(), model.state_dict().values()))
    assert aoti.package_kernels(model.config, "cuda") == {"fusion_head": "triton",
                                                          "lstm": "mimic_edge::bilstm_encoders (Triton)"}


def test_a_cpu_package_uses_the_pytorch_kernels_whatever_the_checkpoint_says():
    model = build_model("mimic", fusion_head="triton", encoder="triton").eval()
    compiled = pt2_model(model, "cpu")
    assert (compiled.config.encoder, compiled.config.fusion_head) == ("torch", "torch")
    assert aoti.package_kernels(model.config, "cpu") == {"fusion_head": "torch", "lstm": "aten.mkldnn_rnn_layer"}
    assert aoti.package_kernels(build_model("misa").config, "cuda") == {"fusion_head": "n/a", "lstm": "aten._cudnn_rnn"}
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
    the sequence axes dynamic; compiling and running it is .ci/gpu_check.sh's."""
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
def test_both_triton_kernels_are_inside_the_exported_program_and_it_equals_eager(make_inputs):
    """What AOTInductor compiles into a CUDA package, traced and run on CPU through Triton's
    interpreter: each triton_op is one node, the LSTM weights are the program's parameters (not
    constants captured beside them), and the program equals the PyTorch model across the axes."""
    torch.manual_seed(0)
    reference = build_model("mimic").eval()
    model = build_model("mimic", fusion_head="triton", encoder="triton").eval()
    model.load_state_dict(reference.state_dict())
    program = export_program(model, PROFILE, "cpu")
    targets = [str(n.target) for n in program.graph.nodes if n.op == "call_function"]
    assert targets.count("mimic_edge.bilstm_encoders.default") == 1 and "mimic_edge.fusion_head.default" in targets
    assert not [t for t in targets if t.startswith("aten.") and ("lstm" in t or "rnn" in t or "max_pool3d" in t)]
    assert not program.constants
    assert sum(".lstm." in name for name in program.graph_signature.parameters) == 3 * 8
    for batch, lengths in ((1, (1, 1, 1)), (3, (7, 100, 4))):
        inputs = make_inputs(model.config, batch, lengths)
        with torch.no_grad():
            found, expected = program.module()(*inputs), reference(*inputs)
        assert_close(found.numpy(), expected.double().numpy(), TRITON_ATOL, f"b={batch} L={lengths}")


# Traced as .ci/gpu_check.sh's CUDA package is, on fake CUDA tensors (no GPU needed) and
# without Triton's interpreter (so torch sees the kernels' launches), in a subprocess.
_FAKE_CUDA_TRACE = """
import json, logging
import torch
from torch import nn
from torch._higher_order_ops.triton_kernel_wrap import kernel_side_table
from torch._subclasses.fake_tensor import FakeTensorMode
from mimic_edge import build_model
from mimic_edge.export.aoti import export_program, pt2_model
from mimic_edge.export.shapes import make_profile

# without a GPU driver, torch cannot analyse which tensors a kernel writes and says so at length
logging.getLogger("torch._higher_order_ops.triton_kernel_wrap").setLevel(logging.ERROR)
module = pt2_model(build_model("mimic").eval(), "cuda")
with FakeTensorMode():
    for name, p in list(module.named_parameters()):
        owner, _, attr = name.rpartition(".")
        fake = torch.empty(p.shape, dtype=p.dtype, device="cuda")
        setattr(module.get_submodule(owner), attr, nn.Parameter(fake, requires_grad=False))
    program = export_program(module, make_profile("1:1:64", "1:50:100"), "cuda")
ops = [str(n.target) for n in program.graph.nodes if n.op == "call_function"]
lowered = program.run_decompositions({}, decompose_custom_triton_ops=True)  # what AOTInductor compiles
launches = []
for node in lowered.graph.nodes:
    if node.target is torch.ops.higher_order.triton_kernel_wrapper_functional:
        args = node.kwargs["kwargs"]
        launches.append({
            "kernel": kernel_side_table.get_kernel(node.kwargs["kernel_idx"]).fn.__name__,
            "grid": [str(g.meta["val"]) if isinstance(g, torch.fx.Node) else g for g in node.kwargs["grid"][0]],
            "ints": {k: str(v.meta["val"]) for k, v in args.items()
                     if k.startswith(("seq_len", "batch")) and isinstance(v, torch.fx.Node)},
            "device": str(args["Out" if "Out" in args else "O0"].meta["val"].device)})
print(json.dumps({"ops": ops, "launches": launches,
                  "ranges": sorted([int(r.lower), int(r.upper)] for r in program.range_constraints.values())}))
"""


@pytest.mark.skipif(not aoti.triton_head_usable(torch.device("cuda")), reason="triton is not installed")
def test_the_cuda_package_launches_both_triton_kernels_with_symbolic_shapes(tmp_path):
    """The CUDA package's program without a GPU: the two triton_ops, and after the decomposition
    AOTInductor applies, two kernel launches on CUDA tensors whose grid, batch and sequence
    lengths are the program's symbols (one package for every shape in the ranges). Compiling
    and timing it on a GPU is .ci/gpu_check.sh's `aoti_cuda` step."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    result = subprocess.run([sys.executable, "-c", _FAKE_CUDA_TRACE], capture_output=True, text=True,
                            timeout=300, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["ranges"] == [[1, 64], [1, 100], [1, 100], [1, 100]]
    assert "mimic_edge.bilstm_encoders.default" in found["ops"] and "mimic_edge.fusion_head.default" in found["ops"]
    assert not [op for op in found["ops"] if op.startswith("aten.") and ("lstm" in op or "rnn" in op)]
    lstm, head = sorted(found["launches"], key=lambda launch: launch["kernel"])
    assert lstm["kernel"] == "_bilstm_kernel" and head["kernel"] == "_fusion_head_kernel"
    assert lstm["device"] == head["device"] == "cuda:0"
    batch = lstm["ints"]["batch"]
    assert not batch.isdigit() and head["ints"]["batch"] == batch
    assert lstm["grid"][1:] == [3, 2] and batch in lstm["grid"][0]  # (sample blocks, modality, direction)
    seq = [lstm["ints"][f"seq_len{m}"] for m in range(3)]
    assert len(set(seq)) == 3 and not any(s.isdigit() for s in seq)  # one symbol per modality


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

    def copy_instead_of_compiling(model, profile, device, path, lengths=False):
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


@pytest.mark.slow  # one small AOTInductor compile: ~10 s
def test_work_on_the_weights_alone_runs_once_at_load_not_per_call(tmp_path):
    """The Triton encoder packs the LSTM weights in the graph (kernels/lstm.py pack_weights): with
    the package's Inductor settings that is constant-folded at load, out of every call's path."""
    import zipfile

    from torch._inductor import aoti_compile_and_package

    from mimic_edge.export.aoti import INDUCTOR_CONFIGS

    class Packs(torch.nn.Module):  # a concatenation of weights, as pack_weights does, then a GEMM
        def __init__(self):
            super().__init__()
            self.a, self.b = torch.nn.Parameter(torch.randn(8, 4)), torch.nn.Parameter(torch.randn(8, 4))

        def forward(self, x):
            return x @ torch.cat([self.a, self.b]).T

    module = Packs().eval()
    program = torch.export.export(module, (torch.randn(2, 4),))
    path = aoti_compile_and_package(program, package_path=str(tmp_path / "p.pt2"), inductor_configs=INDUCTOR_CONFIGS)
    with zipfile.ZipFile(path) as archive:
        (wrapper,) = [archive.read(n).decode() for n in archive.namelist() if n.endswith("wrapper.cpp")]
    call = wrapper.index("cpp_fused_cat_0((")  # where the concatenation kernel is called from
    caller = wrapper[wrapper.rindex("AOTInductorModel::", 0, call):].split("(", 1)[0]
    assert wrapper.count("cpp_fused_cat_0((") == 1 and caller == "AOTInductorModel::_const_run_impl"
    loader = torch._C._aoti.AOTIModelPackageLoader(path, "model", False, 1, -1)
    x = torch.randn(3, 4)
    torch.testing.assert_close(loader.boxed_run([x])[0], module(x), rtol=0, atol=1e-6)
