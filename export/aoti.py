"""AOTInductor packages (`.pt2`, docs/design.md §6): the model through torch.export with dynamic batch
and sequence axes, compiled and packaged by AOTInductor for CPU or CUDA. The package loads
from Python (mimic_edge.runtime) and from C++ with libtorch (examples/cpp/aoti).

What is compiled (`pt2_model`), with the checkpoint's weights:
- on CUDA with Triton installed, MIMIC runs on its two Triton kernels: the three BiLSTM
  encoders in one launch (mimic_edge.kernels.bilstm_encoders) and the fused head
  (mimic_edge.kernels.fusion_head). Both are torch.library.triton_ops: torch.export keeps each
  as one node, and AOTInductor decomposes it into its input GEMMs and its kernel launch, with
  the grid and the sequence lengths symbolic, and compiles the kernel into the package;
- otherwise (CPU: AOTInductor's CPU backend emits C++, not Triton; MISA; no Triton) the
  PyTorch head, and each nn.LSTM as one ATen op per direction that torch.export keeps whole:
  `aten.mkldnn_rnn_layer` (oneDNN, what torch.compile lowers a CPU LSTM to) on CPU,
  `aten._cudnn_rnn` (what nn.LSTM calls on CUDA) on CUDA. torch.export switches oneDNN and
  cuDNN off while it traces (torch/export/_trace.py, `_ignore_backend_decomps`), so a plain
  nn.LSTM decomposes into one cell per time step of the example input, and the sequence axes
  cannot stay dynamic. Both ops have AOTInductor C shims (aoti_torch_cpu_mkldnn_rnn_layer,
  aoti_torch_cuda__cudnn_rnn): the package runs them as ATen calls ("fallbacks").

Dynamic shapes (`dynamic_shapes`): the batch axis and each modality's own sequence axis, with
the ranges of --batch / --seq (MIN:OPT:MAX, parsed like TensorRT profiles by
mimic_edge.export.shapes.make_profile). Example inputs are at least 2 long on every dynamic
axis: torch.export specialises an axis whose example size is 1. Ranges are static where
MIN == MAX.

The package's own metadata (`aot_inductor.metadata`) carries the feature dims and the ranges,
for C++ callers; the JSON sidecar (mimic_edge.runtime.aoti_predictor) says what the package
runs on and is checked before Python loads it.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import platform
import shutil
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mimic_edge.config import LENGTHS_INPUTS, MODALITIES, OUTPUT_NAME
from mimic_edge.errors import ExportError
from mimic_edge.export.shapes import Profile, Range
from mimic_edge.kernels import triton_head_usable
from mimic_edge.models import model_from_config
from mimic_edge.models.common import WithLengths
from mimic_edge.sidecar import PACKAGE, write_record

_LSTM_MODE = 2  # oneDNN's and cuDNN's code for LSTM (ideep::rnn_kind::LSTM, CUDNN_LSTM)
METADATA_PREFIX = "mimic_edge."  # keys of the package's metadata written here


def build_environment(device: str) -> dict:
    """What a package compiled here for `device` ("cpu" | "cuda") needs: recorded in its sidecar.
    The CPU ISA is the one AOTInductor compiles for (torch._inductor.cpu_vec_isa.pick_vec_isa,
    also recorded in the package's own metadata as AOTI_CPU_ISA)."""
    env: dict[str, Any] = {"torch_version": torch.__version__, "device": device, "machine": platform.machine(),
                           "cpu_isa": None, "cuda_arch": None, "gpu_name": None}
    if device == "cpu":
        from torch._inductor.cpu_vec_isa import pick_vec_isa

        env["cpu_isa"] = str(pick_vec_isa())  # e.g. "avx512 avx512_vnni amx_tile"; "" without vector ISA
    else:
        major, minor = torch.cuda.get_device_capability()
        env["cuda_arch"], env["gpu_name"] = f"{major}.{minor}", torch.cuda.get_device_name()
    return env


def write_package_sidecar(package: str | Path, record: dict) -> Path:
    """Write `<package>.json`: `record` (build_environment(...) plus the model and ranges), with
    the package's hash, format version and kind (mimic_edge.sidecar.PACKAGE)."""
    return write_record(package, PACKAGE, record)


def unavailable_reason(device: str) -> str | None:
    """Why a package for `device` cannot be compiled here, or None."""
    if device == "cuda" and not torch.cuda.is_available():
        return f"compiling a CUDA package needs a CUDA GPU, and torch {torch.__version__} sees none"
    if device == "cuda" and _cuda_toolkit() is None:  # else AOTInductor fails after the export's minutes
        return ("compiling a CUDA package needs the CUDA toolkit (nvcc and its headers), found none: set "
                "CUDA_HOME, or put nvcc on PATH (a pip-only torch image has the runtime, not the toolkit)")
    compiler = os.environ.get("CXX", "g++")  # the compiler AOTInductor runs (torch._inductor.config.cpp.cxx)
    if shutil.which(compiler) is None:
        return f"AOTInductor compiles C++, and the compiler {compiler!r} is not on PATH (install g++ or set CXX)"
    return None


def _cuda_toolkit() -> str | None:
    """Where torch's C++/CUDA builds find the toolkit: CUDA_HOME, CUDA_PATH, nvcc on PATH or
    /usr/local/cuda, as torch.utils.cpp_extension looks (AOTInductor's CUDA compile uses it)."""
    from torch.utils import cpp_extension

    return cpp_extension.CUDA_HOME


def kernel_choices(config, device: str) -> dict[str, str]:
    """The config fields that choose kernels, as the package for `device` has them: the Triton
    kernels (BiLSTM encoders, fused head) on CUDA when Triton is installed, PyTorch code
    otherwise, whatever the checkpoint says."""
    kernels = "triton" if device == "cuda" and triton_head_usable(torch.device("cuda")) else "torch"
    wanted = {"fusion_head": kernels, "encoder": kernels}
    fields = {f.name for f in dataclasses.fields(config)}
    return {k: v for k, v in wanted.items() if k in fields}  # MISA has no such fields


class ExportLSTM(nn.LSTM):
    """nn.LSTM (inference, no initial state) as one ATen op per layer and direction that
    torch.export keeps whole, so that the sequence axis stays dynamic: oneDNN's
    `mkldnn_rnn_layer` on CPU (as torch's own CPU decomposition, mkldnn_one_layer_lstm) or
    cuDNN's `_cudnn_rnn` on CUDA. Same parameters and state_dict as the nn.LSTM it replaces."""

    kind = "cpu"  # "cpu" | "cuda": which op (from_lstm sets it)

    @classmethod
    def from_lstm(cls, lstm: nn.LSTM, device: str) -> ExportLSTM:
        if lstm.proj_size or not lstm.bias:
            raise ExportError(f"--format pt2 supports LSTMs with biases and no projection, found {lstm}")
        new = cls(lstm.input_size, lstm.hidden_size, num_layers=lstm.num_layers, bias=True,
                  batch_first=lstm.batch_first, bidirectional=lstm.bidirectional)
        new.load_state_dict(lstm.state_dict())
        new.kind = device
        return new

    def forward(self, x, hx=None):  # type: ignore[override]
        if hx is not None:
            raise ExportError("--format pt2: LSTMs with an initial state are not supported")
        return self._cudnn(x) if self.kind == "cuda" else self._onednn(x)

    def _onednn(self, x):
        seq = x.transpose(0, 1).contiguous() if self.batch_first else x  # (L, B, I)
        zeros = seq.new_zeros(1, seq.shape[1], self.hidden_size)  # (1, B, H)
        directions = ("", "_reverse") if self.bidirectional else ("",)
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            outs = []
            for suffix in directions:
                names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
                weights = [getattr(self, f"{w}_l{layer}{suffix}") for w in names]
                # (input, weights, h0, c0, reverse, batch_sizes, mode, hidden, layers, biases,
                #  bidirectional, batch_first, train): one direction of one layer, seq-first
                y, h, c, _ = torch.ops.aten.mkldnn_rnn_layer.default(
                    seq, *weights, zeros, zeros, bool(suffix), [], _LSTM_MODE, self.hidden_size, 1, True,
                    False, False, False)
                outs.append(y)  # (L, B, H)
                h_n.append(h)  # (1, B, H)
                c_n.append(c)
            seq = torch.cat(outs, dim=-1)  # (L, B, D·H)
        out = seq.transpose(0, 1) if self.batch_first else seq
        return out, (torch.cat(h_n), torch.cat(c_n))  # (D·layers, B, H)

    def _cudnn(self, x):
        directions = 2 if self.bidirectional else 1
        batch = x.shape[0] if self.batch_first else x.shape[1]
        zeros = x.new_zeros(self.num_layers * directions, batch, self.hidden_size)
        # per layer and direction: w_ih, w_hh, b_ih, b_hh (nn.LSTM's order, which cuDNN takes)
        weights = [getattr(self, name) for name in self._flat_weights_names]
        out, h_n, c_n, _, _ = torch.ops.aten._cudnn_rnn.default(
            x, weights, 4, None, zeros, zeros, _LSTM_MODE, self.hidden_size, 0, self.num_layers,
            self.batch_first, 0.0, False, self.bidirectional, [], None)  # weight_buf None: cuDNN packs the weights
        return out, (h_n, c_n)


# Work on the weights alone (the Triton encoder's packing of the LSTM weights, kernels/lstm.py) runs
# once when the package is loaded, not in every call: by default AOTInductor computes it per call.
INDUCTOR_CONFIGS = {"aot_inductor.use_runtime_constant_folding": True}


def pt2_model(model: nn.Module, device: str, lengths: bool = False) -> nn.Module:
    """The module compiled for `device`, in eval mode, still on the CPU (build_package moves it):
    `model`'s weights under its config with the package's kernels (`kernel_choices`); every
    nn.LSTM an ExportLSTM unless the Triton encoder runs them (it only reads their weights)."""
    config = dataclasses.replace(model.config, **kernel_choices(model.config, device))
    compiled = model_from_config(config)
    compiled.load_state_dict(model.state_dict())
    if not triton_encoder(config):
        for name, module in list(compiled.named_modules()):
            if type(module) is nn.LSTM:
                compiled.set_submodule(name, ExportLSTM.from_lstm(module, device))
    return (WithLengths(compiled) if lengths else compiled).eval()


def triton_encoder(config) -> bool:
    return getattr(config, "encoder", "torch") == "triton"  # MISA has no such field


def package_kernels(config, device: str) -> dict[str, str]:
    """What a package of `config` compiled here for `device` runs, as its sidecar records it:
    the fusion head ("triton" | "torch" | "n/a": MISA has none) and what the LSTMs run as."""
    chosen = dataclasses.replace(config, **kernel_choices(config, device))
    if triton_encoder(chosen):
        lstm = "mimic_edge::bilstm_encoders (Triton)"
    else:
        lstm = "aten._cudnn_rnn" if device == "cuda" else "aten.mkldnn_rnn_layer"
    return {"fusion_head": getattr(chosen, "fusion_head", "n/a"), "lstm": lstm}


def _example_size(r: Range) -> int:
    """OPT, but at least 2 on a dynamic axis (an example of size 1 would be specialised)."""
    return r.min if r.min == r.max else min(max(r.opt, 2, r.min), r.max)


def dynamic_shapes(profile: Profile, lengths: bool = False) -> tuple[dict[str, tuple[int, int]], dict[str, dict]]:
    """(example (batch, seq_len) per modality, torch.export's dynamic_shapes per input): one Dim
    for the batch, one per modality's sequence axis; none on an axis with MIN == MAX. With
    `lengths`, the lengths inputs (batch,) too."""
    b = profile.batch
    batch = torch.export.Dim("batch", min=b.min, max=b.max) if b.min < b.max else None
    examples, shapes = {}, {}
    for m in MODALITIES:
        seq = profile.seq[m]
        examples[m] = (_example_size(b), _example_size(seq))
        axes = {}
        if batch is not None:
            axes[0] = batch
        if seq.min < seq.max:
            axes[1] = torch.export.Dim(f"seq_{m}", min=seq.min, max=seq.max)
        shapes[m] = axes
    if lengths:
        shapes.update({LENGTHS_INPUTS[m]: {0: batch} if batch is not None else {} for m in MODALITIES})
    return examples, shapes


def export_program(module: nn.Module, profile: Profile, device: str) -> torch.export.ExportedProgram:
    """torch.export of `module` (a `pt2_model`) with the profile's dynamic axes."""
    lengths = isinstance(module, WithLengths)
    examples, shapes = dynamic_shapes(profile, lengths)
    dims = module.config.dims
    # the values do not matter (nothing branches on them); made on `device` directly, which also
    # works for fake CUDA tensors traced on a machine without a GPU
    inputs = tuple(torch.zeros(*examples[m], dims[m], device=device) for m in MODALITIES)
    if lengths:  # valid lengths within each example's sequence
        inputs += tuple(torch.full((examples[m][0],), examples[m][1], dtype=torch.int64, device=device)
                        for m in MODALITIES)
    with torch.no_grad(), _quiet_torch_deprecation():
        return torch.export.export(module, inputs, dynamic_shapes=shapes)


@contextlib.contextmanager
def _quiet_torch_deprecation():
    """torch.export's and AOTInductor's own pytree code trips torch's own deprecation warning
    (torch 2.13, `isinstance(treespec, LeafSpec)`): nothing a user can act on."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)", category=FutureWarning)
        yield


def package_metadata(module: nn.Module, profile: Profile) -> dict[str, str]:
    """Strings stored in the package (AOTIModelPackageLoader::get_metadata): what a C++ caller
    checks its inputs against."""
    meta = {f"{METADATA_PREFIX}{m}_dim": str(d) for m, d in module.config.dims.items()}
    meta.update({f"{METADATA_PREFIX}batch_min": str(profile.batch.min),
                 f"{METADATA_PREFIX}batch_max": str(profile.batch.max),
                 f"{METADATA_PREFIX}out_dim": str(module.config.out_dim),
                 f"{METADATA_PREFIX}inputs": ",".join(
                     [*MODALITIES, *(LENGTHS_INPUTS.values() if isinstance(module, WithLengths) else ())]),
                 f"{METADATA_PREFIX}output": OUTPUT_NAME})
    for m in MODALITIES:
        meta[f"{METADATA_PREFIX}{m}_seq_min"] = str(profile.seq[m].min)
        meta[f"{METADATA_PREFIX}{m}_seq_max"] = str(profile.seq[m].max)
    meta[f"{METADATA_PREFIX}torch_version"] = torch.__version__
    return meta


@dataclasses.dataclass
class BuiltPackage:
    path: Path
    fusion_head: str  # "triton" | "torch" | "n/a" (a model without a fusion head)
    lstm: str  # what the LSTMs run as
    export_seconds: float
    compile_seconds: float


def build_package(model: nn.Module, profile: Profile, device: str, path: Path, lengths: bool = False) -> BuiltPackage:
    """Export and compile `model` for `device` into the package file `path` (written by
    AOTInductor; the caller stages it and writes the sidecar); with `lengths`, the package takes
    each sample's valid lengths after the three inputs (a padded batch scores as each alone)."""
    module = pt2_model(model, device, lengths).to(device)
    seq = profile.seq[MODALITIES[0]]
    ranges = f"batch {profile.batch.min}..{profile.batch.max}, sequences {seq.min}..{seq.max}"
    start = time.perf_counter()
    try:
        program = export_program(module, profile, device)
    except Exception as e:  # torch's UserError, constraint violations, unsupported ops: one line, chained
        raise ExportError(f"torch.export failed for {device} ({ranges}): {_first_line(e)}") from e
    exported = time.perf_counter()
    from torch._inductor import aoti_compile_and_package

    try:
        with _quiet_torch_deprecation():
            aoti_compile_and_package(
                program, package_path=str(path),
                inductor_configs=INDUCTOR_CONFIGS | {"aot_inductor.metadata": package_metadata(module, profile)})
    except Exception as e:  # a compiler error, a lowering AOTInductor lacks
        raise ExportError(f"AOTInductor could not compile the {device} package ({ranges}): {_first_line(e)}") from e
    kernels = package_kernels(module.config, device)
    return BuiltPackage(path, kernels["fusion_head"], kernels["lstm"], exported - start, time.perf_counter() - exported)


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0]}" if text else type(e).__name__
