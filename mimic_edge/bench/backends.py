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
  aoti                                   AotiPredictor.predict (load of the exported .pt2 for the
      bench's device): checks against the compiled ranges, numpy → torch (→ device), the
      package's run, the scores back to numpy

A library the backend needs that is not installed (onnxruntime, onnx, onnxslim, tensorrt,
torch_tensorrt) makes its rows `skipped: <reason>`; any other error in a set-up is the row's
`failed: <error>` (mimic_edge.bench.run).
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from mimic_edge import __version__
from mimic_edge import export as exporter  # light: the pipeline loads on the first export()
from mimic_edge.bench.config import Backend
from mimic_edge.checkpoint import weights_id
from mimic_edge.config import model_name
from mimic_edge.errors import ArtifactError
from mimic_edge.export.formats import FORMATS
from mimic_edge.export.tensorrt import unavailable_reason
from mimic_edge.models import build_model
from mimic_edge.runtime import load
from mimic_edge.runtime.torch_predictor import TorchPredictor
from mimic_edge.sidecar import file_sha256, read_sidecar


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
    max_batch: int = 64  # the run's largest batch size: a TensorRT engine's profile must reach it
    # Exports of this model that failed in this run, by what was asked for: later rows fail with the
    # same error at once instead of exporting, validating and failing again for every batch size.
    export_failures: dict = field(default_factory=dict)


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
        raise BackendUnavailable("the Triton kernels (encoders, fused head) are MIMIC's")
    if ctx.device != "cuda":
        raise BackendUnavailable("needs a CUDA GPU (on CPU, Triton runs only in its interpreter)")
    try:
        import triton  # noqa: F401
    except ImportError:
        raise BackendUnavailable("triton is not installed") from None
    fused = build_model("mimic", ctx.preset, fusion_head="triton", encoder="triton")  # every Triton kernel
    fused.load_state_dict(model.state_dict())
    return _torch_call(fused, fused.config, inputs, ctx.device)


def require(*modules: str, why: str) -> None:
    """BackendUnavailable naming those of `modules` that are not installed."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise BackendUnavailable(f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed ({why})")


# exporting an artifact and validating it (safetensors: the export identifies weights by their checkpoint bytes)
EXPORT_MODULES = ("onnx", "onnxslim", "onnxruntime", "safetensors")


def setup_ort(model, inputs, ctx: Context) -> TimedCall:
    require(*EXPORT_MODULES, why="exporting the ONNX artifact and running it")
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
    require(*EXPORT_MODULES, why="exporting and validating the ONNX artifact the engine is built from")
    path = exported(model, ctx, ctx.backend.artifact, engine=True)
    predictor = load(path)
    return TimedCall(lambda: predictor.predict(*inputs), path.stat().st_size,
                     f"profile batch 1:1:{ctx.max_batch}")


def torch_tensorrt_fp16(compile_fn: Callable) -> dict:
    """The keyword arguments that make torch-tensorrt's dynamo path compute in fp16, read from the
    signature of the installed `torch_tensorrt.dynamo.compile`: `enable_autocast` with
    `autocast_low_precision_type` from 2.10 on (from 2.13 the dynamo path ignores
    `enabled_precisions`: torch_tensorrt/_compile.py says "not used for the Dynamo path"), else
    `enabled_precisions`, which earlier versions honour."""
    params = inspect.signature(compile_fn).parameters
    if "enable_autocast" in params and "autocast_low_precision_type" in params:
        return {"enable_autocast": True, "autocast_low_precision_type": torch.float16}
    if "enabled_precisions" in params:
        return {"enabled_precisions": {torch.float16}}
    raise BackendUnavailable("this torch_tensorrt has neither enable_autocast nor enabled_precisions: "
                             "no known way to ask it for fp16")


def setup_torch_tensorrt(model, inputs, ctx: Context) -> TimedCall:
    if ctx.device != "cuda":
        raise BackendUnavailable("needs a CUDA GPU")
    try:
        import torch_tensorrt
    except ModuleNotFoundError as e:
        if e.name != "torch_tensorrt":
            raise  # installed but broken (e.g. its TensorRT missing): a failure to report, not a skip
        raise BackendUnavailable("torch_tensorrt is not installed") from None
    fp16 = torch_tensorrt_fp16(torch_tensorrt.dynamo.compile)
    cuda_inputs = [torch.from_numpy(x).cuda() for x in inputs]
    compiled = torch_tensorrt.compile(model.cuda().eval(), ir="dynamo", inputs=cuda_inputs, min_block_size=1, **fp16)
    # torch-tensorrt has no LSTM converter: the LSTMs run in PyTorch (fp32) between TensorRT blocks
    return _torch_call(compiled, model.config, inputs, "cuda",
                       f"fp16 by {', '.join(fp16)} in the TensorRT blocks; LSTMs fall back to PyTorch fp32")


def setup_aoti(model, inputs, ctx: Context) -> TimedCall:
    from mimic_edge.export.aoti import unavailable_reason as aoti_unavailable

    reason = aoti_unavailable(ctx.device)
    if reason:
        raise BackendUnavailable(reason)
    require(*EXPORT_MODULES, why="the export pipeline that compiles and validates the package")
    path = exported_pt2(model, ctx, inputs[0].shape[1])
    predictor = load(path)
    record = predictor.sidecar
    return TimedCall(lambda: predictor.predict(*inputs), path.stat().st_size,
                     f"LSTMs as {record.get('lstm')}, fusion head {record.get('fusion_head')}")


SETUPS: dict[str, Setup] = {  # Backend.setup → its set-up
    "eager": setup_eager,
    "compile": setup_compile,
    "triton": setup_triton,
    "ort": setup_ort,
    "tensorrt": setup_tensorrt,
    "torch-tensorrt": setup_torch_tensorrt,
    "aoti": setup_aoti,
}


def artifact_dir(model, name: str, preset: str, cache_dir: str | Path) -> Path:
    """Cache folder of a model's artifacts, keyed by its weights and the mimic-edge version (a
    digest of the tensors: rows that export nothing need no safetensors)."""
    digest = hashlib.sha256()
    for key, tensor in model.state_dict().items():
        digest.update(key.encode() + tensor.detach().cpu().contiguous().numpy().tobytes())
    return Path(cache_dir) / f"{name}-{preset}-{digest.hexdigest()[:12]}-v{__version__}"


def exported(model, ctx: Context, key: str, engine: bool = False) -> Path:
    """The validated artifact of `model` at precision `key` (of PRECISIONS), exported from the
    model in memory once per cache. An engine's profile reaches the run's largest batch (batch
    1:1:max_batch, so tuned for batch 1); a cached engine whose profile stops short of it is built
    again."""
    entry = exporter.PRECISIONS[key]
    config = exporter.ExportConfig(precision=entry.name, target=entry.target, out=str(ctx.artifact_dir),
                                   engine=engine, batch=f"1:1:{ctx.max_batch}", seed=ctx.seed, force=True)
    onnx_path, report_path = FORMATS["onnx"].paths(ctx.artifact_dir, _name(model), key=key)
    engine_path, _ = FORMATS["engine"].paths(ctx.artifact_dir, _name(model), key=key)
    if not _reusable(onnx_path, report_path, model, entry) or (
            engine and not _profile_reaches(engine_path, ctx.max_batch)):
        _export_once(ctx, config, model)
    return engine_path if engine else onnx_path


def _name(model) -> str:
    """What the export names a model's artifacts (<model>-<preset>: mimic_edge.export)."""
    return f"{model_name(model.config)}-{model.config.preset}"


def _reusable(artifact: Path, report_path: Path, model, entry) -> bool:
    """A cached artifact is what this run would build: its report passed and names this precision,
    these weights and config, today's export code (its recipe), and the artifact file's own
    bytes. Anything else (a file copied over it, truncated, made by an older export) is built again."""
    from mimic_edge.export.precision import recipe

    try:
        report = json.loads(report_path.read_text())
        return (report.get("passed") is True and report.get("precision") == entry.key
                and report.get("config_digest") == model.config.digest() and report.get("weights") == weights_id(model)
                and report.get("recipe") == recipe(entry, exporter.ExportConfig().opset)
                and report.get("artifact_sha256") == file_sha256(artifact))
    except (OSError, ValueError, AttributeError):
        return False


class ExportFailedEarlier(Exception):
    """An export that already failed in this run: its first error, not retried."""


def _export_once(ctx: Context, config, model) -> None:
    """`export(config, model=model)`, unless the same export failed earlier in this run: then its
    error again."""
    if config in ctx.export_failures:
        raise ExportFailedEarlier(ctx.export_failures[config])
    try:
        exporter.export(config, log=lambda _: None, model=model)
    except Exception as e:
        first_line = (str(e).strip().splitlines() or [""])[0]
        ctx.export_failures[config] = f"{type(e).__name__}: {first_line} (failed earlier in this run, not retried)"
        raise


def exported_pt2(model, ctx: Context, seq_len: int) -> Path:
    """The validated AOTInductor package of `model` for `ctx.device`, made once per cache like the
    ONNX artifacts, with ranges that reach the run's largest batch and `seq_len` (batch
    1:1:max_batch, sequence 1:L:max(2L, seq_len), L the preset's). A cached package that does not
    run here (another torch release or CPU: its sidecar says), holds other weights, whose ranges
    stop short, or that runs other kernels than a package compiled now would (Triton installed
    since) is compiled again."""
    from mimic_edge.config import get_preset
    from mimic_edge.export.aoti import package_kernels
    from mimic_edge.runtime.aoti_predictor import check_package_sidecar

    path, _ = FORMATS["pt2"].paths(ctx.artifact_dir, _name(model), device=ctx.device)
    try:
        record = check_package_sidecar(path) if path.is_file() else None
    except ArtifactError:
        record = None
    kernels = package_kernels(model.config, ctx.device)
    if (record is None or record.get("weights") != weights_id(model) or record["batch"][2] < ctx.max_batch
            or min(r[2] for r in record["seq"].values()) < seq_len
            or any(record.get(key) != value for key, value in kernels.items())):
        length = get_preset(model.config.preset).seq_len
        _export_once(ctx, exporter.ExportConfig(
            format="pt2", device=ctx.device, out=str(ctx.artifact_dir), batch=f"1:1:{ctx.max_batch}",
            seq=f"1:{length}:{max(2 * length, seq_len)}", seed=ctx.seed, force=True), model)
    return path


def _profile_reaches(engine_path: Path, batch: int) -> bool:
    """An engine is cached there whose sidecar's profile runs batch `batch`."""
    try:
        return engine_path.is_file() and read_sidecar(engine_path)["profile"]["batch"][2] >= batch
    except (ArtifactError, KeyError, IndexError, TypeError):
        return False
