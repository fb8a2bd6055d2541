"""The backends' set-ups, and the cache of the artifacts they run.

A set-up `setup_<kind>(model, inputs, ctx)` returns a `TimedCall`: the call the bench times and
the size of what it runs. It raises `BackendUnavailable(reason)` when this machine cannot run
it: the row then says `skipped: <reason>`, never a number. Which backend uses which set-up is
data, `mimic_edge.bench.config.BACKENDS`; adding a kind of backend is one function in SETUPS.

Every set-up times the same call, the one a user makes: `Predictor.predict(text, audio,
vision)` on `inputs`, the three float32 numpy arrays in host memory, input checks and output
conversion to numpy included:
  eager, compile, triton, torch-tensorrt   TorchPredictor.from_model(module).predict: the input
      check, numpy → torch (→ device), the forward pass in inference mode, the scores back to
      numpy (on CUDA: the host↔device copies and the wait for the GPU)
  ort-<key>                              OnnxPredictor.predict (mimic_edge.runtime.load of the
      exported .onnx): prepare_inputs (checks, float32 C-contiguous), InferenceSession.run
  trt-<key>                              TensorRTPredictor.predict (load of the exported
      engine): checks against the profile, host→device copies, execution, device→host copy
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from mimic_edge import __version__
from mimic_edge import export as exporter  # light: the pipeline loads on the first export()
from mimic_edge.bench.config import Backend
from mimic_edge.checkpoint import save_checkpoint
from mimic_edge.export.tensorrt import unavailable_reason
from mimic_edge.models import build_model
from mimic_edge.runtime import load
from mimic_edge.runtime.torch_predictor import TorchPredictor


class BackendUnavailable(Exception):
    """This machine cannot run the backend; the message is the reason shown in the table."""


@dataclass
class Context:
    """What a backend's set-up may need besides the model and its inputs."""

    model_name: str
    preset: str
    device: str
    threads: int | None
    artifact_dir: Path  # this model's exported artifacts (see `artifact_dir`)
    seed: int
    backend: Backend


@dataclass
class TimedCall:
    """What a set-up hands to the timer."""

    call: Callable[[], object]  # one `predict` on the row's inputs
    artifact_bytes: int | None = None  # what is deployed: weights, ONNX file or engine
    note: str = ""


Setup = Callable[[torch.nn.Module, list[np.ndarray], Context], TimedCall]


def _weights_bytes(model: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in model.state_dict().values())


def _torch_call(module: torch.nn.Module, config, inputs: list[np.ndarray], device: str, note: str = "") -> TimedCall:
    predictor = TorchPredictor.from_model(module, device, config=config)
    return TimedCall(lambda: predictor.predict(*inputs), _weights_bytes(module), note)


def setup_eager(model, inputs, ctx: Context) -> TimedCall:
    return _torch_call(model, model.config, inputs, ctx.device)


def setup_compile(model, inputs, ctx: Context) -> TimedCall:
    # dynamic=False: one graph per batch size, as a deployed service would warm up
    compiled = torch.compile(model.to(ctx.device).eval(), dynamic=False)
    return _torch_call(compiled, model.config, inputs, ctx.device)


def setup_triton(model, inputs, ctx: Context) -> TimedCall:
    if ctx.model_name != "mimic":
        raise BackendUnavailable("the fused Triton head is MIMIC's")
    if ctx.device != "cuda":
        raise BackendUnavailable("needs a CUDA GPU (on CPU, Triton runs only in its interpreter)")
    try:
        import triton  # noqa: F401
    except ImportError:
        raise BackendUnavailable("triton is not installed") from None
    fused = build_model("mimic", ctx.preset, fusion_head="triton")
    fused.load_state_dict(model.state_dict())
    return _torch_call(fused, fused.config, inputs, ctx.device)


def setup_ort(model, inputs, ctx: Context) -> TimedCall:
    import onnxruntime as ort

    provider = "CUDAExecutionProvider" if ctx.device == "cuda" else "CPUExecutionProvider"
    if provider not in ort.get_available_providers():
        raise BackendUnavailable(f"onnxruntime {ort.__version__} has no {provider} (onnxruntime-gpu has)")
    path = exported(model, ctx, ctx.backend.artifact)
    predictor = load(path, providers=[provider], threads=ctx.threads)
    return TimedCall(lambda: predictor.predict(*inputs), path.stat().st_size)


def setup_tensorrt(model, inputs, ctx: Context) -> TimedCall:
    reason = unavailable_reason()
    if reason:
        raise BackendUnavailable(reason)
    path = exported(model, ctx, ctx.backend.artifact, engine=True)
    predictor = load(path)
    return TimedCall(lambda: predictor.predict(*inputs), path.stat().st_size)


def setup_torch_tensorrt(model, inputs, ctx: Context) -> TimedCall:
    if ctx.device != "cuda":
        raise BackendUnavailable("needs a CUDA GPU")
    try:
        import torch_tensorrt
    except ImportError:
        raise BackendUnavailable("torch_tensorrt is not installed") from None
    cuda_inputs = [torch.from_numpy(x).cuda() for x in inputs]
    compiled = torch_tensorrt.compile(model.cuda().eval(), ir="dynamo", inputs=cuda_inputs,
                                      enabled_precisions={torch.float16}, min_block_size=1)
    # torch-tensorrt has no LSTM converter: the LSTMs run in PyTorch between TensorRT blocks
    return _torch_call(compiled, model.config, inputs, "cuda", "LSTMs fall back to PyTorch")


SETUPS: dict[str, Setup] = {  # Backend.setup → its set-up
    "eager": setup_eager,
    "compile": setup_compile,
    "triton": setup_triton,
    "ort": setup_ort,
    "tensorrt": setup_tensorrt,
    "torch-tensorrt": setup_torch_tensorrt,
}


def artifact_dir(model, name: str, preset: str, cache_dir: str | Path) -> Path:
    """Cache folder of a model's artifacts, keyed by its weights and the mimic-edge version
    (delete the cache after changing the export code)."""
    digest = hashlib.sha256()
    for key, tensor in model.state_dict().items():
        digest.update(key.encode() + tensor.detach().cpu().contiguous().numpy().tobytes())
    return Path(cache_dir) / f"{name}-{preset}-{digest.hexdigest()[:12]}-v{__version__}"


def exported(model, ctx: Context, precision: str, engine: bool = False) -> Path:
    """The validated artifact of `model` at `precision` (a key of PRECISIONS), made once per cache
    by mimic_edge.export. The model is saved as a checkpoint first, so the artifact holds exactly
    these weights."""
    folder = ctx.artifact_dir
    onnx_path = folder / f"model.{precision}.onnx"
    engine_path = onnx_path.with_suffix(".engine")
    if not onnx_path.is_file() or (engine and not engine_path.is_file()):
        save_checkpoint(model, folder / "model")
        entry = exporter.PRECISIONS[precision]
        exporter.export(exporter.ExportConfig(model=ctx.model_name, precision=entry.name, target=entry.target,
                                              checkpoint=str(folder / "model"), out=str(folder), engine=engine,
                                              seed=ctx.seed), log=lambda _: None)
    return engine_path if engine else onnx_path
