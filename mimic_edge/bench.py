"""`mimic-edge bench`: params, FLOPs, latency and memory of MIMIC vs MISA per backend (DESIGN §7).

A backend is one `setup_<name>(model, inputs, ctx)` function returning a `Runner` (a callable
that runs one forward pass, and the size of what it runs), or raising
`BackendUnavailable(reason)`: the row then says `skipped: <reason>`, never a number. Adding a
backend is adding one function to BACKENDS.

Timing: `warmup` untimed calls, then `iters` timed calls, each synchronised on CUDA; p50/p99
are nearest-rank percentiles of the per-call times. Memory: the peak RSS growth of the
process over set-up and runs on CPU (Linux), the peak of torch's CUDA allocator on CUDA.
"""
from __future__ import annotations

import os
import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from mimic_edge.config import DEFAULT_PRESET, get_preset
from mimic_edge.errors import ConfigError
from mimic_edge.flops import flops_breakdown
from mimic_edge.models import build_model


class BackendUnavailable(Exception):
    """This machine cannot run the backend; the message is the reason shown in the table."""


@dataclass
class BenchConfig:
    models: tuple[str, ...] = ("mimic", "misa")
    presets: tuple[str, ...] = (DEFAULT_PRESET,)
    backends: tuple[str, ...] | None = None  # None: every backend, unavailable ones skipped
    batch_sizes: tuple[int, ...] = (1, 8, 64)
    seq_len: int | None = None  # None: the preset's
    warmup: int = 10
    iters: int = 100  # timed runs per row; p99 needs about 100
    threads: int | None = None  # intra-op threads for torch and ONNX Runtime; None: their defaults
    device: str = "auto"  # "auto" (cuda when available) | "cpu" | "cuda"
    seed: int = 0
    cache_dir: str = ".cache/mimic-edge"  # exported artifacts, reused across runs


@dataclass
class Context:
    """What a backend's set-up may need besides the model and its inputs."""

    model_name: str
    preset: str
    device: str
    threads: int | None
    artifact_dir: Path  # this model's exported artifacts (see `artifact_dir`)
    seed: int


@dataclass
class Runner:
    run: Callable[[], object]
    artifact_bytes: int | None = None  # what is deployed: weights, ONNX file or engine
    note: str = ""


def _weights_bytes(model: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in model.state_dict().values())


def _torch_runner(model, inputs, device, note="") -> Runner:
    model = model.to(device).eval()
    inputs = [x.to(device) for x in inputs]

    def run():
        with torch.inference_mode():
            return model(*inputs)

    return Runner(run, _weights_bytes(model), note)


def setup_eager(model, inputs, ctx: Context) -> Runner:
    return _torch_runner(model, inputs, ctx.device)


def setup_compile(model, inputs, ctx: Context) -> Runner:
    # dynamic=False: one graph per batch size, as a deployed service would warm up
    compiled = torch.compile(model.to(ctx.device).eval(), dynamic=False)
    return _torch_runner(compiled, inputs, ctx.device)


def setup_triton(model, inputs, ctx: Context) -> Runner:
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
    return _torch_runner(fused, inputs, ctx.device)


def artifact_dir(model, name: str, preset: str, cache_dir: str | Path) -> Path:
    """Cache folder of a model's artifacts, keyed by its weights and the mimic-edge version
    (delete the cache after changing the export code)."""
    import hashlib

    from mimic_edge import __version__

    digest = hashlib.sha256()
    for key, tensor in model.state_dict().items():
        digest.update(key.encode() + tensor.detach().cpu().contiguous().numpy().tobytes())
    return Path(cache_dir) / f"{name}-{preset}-{digest.hexdigest()[:12]}-v{__version__}"


def exported(model, ctx: Context, precision: str, engine: bool = False):
    """The validated artifact of `model` at `precision` (mimic_edge.export), made once per cache.

    The model is saved as a checkpoint first, so the artifact holds exactly these weights.
    """
    from mimic_edge.checkpoint import save_checkpoint
    from mimic_edge.export import ExportConfig, export

    folder = ctx.artifact_dir
    onnx_path = folder / f"model.{precision}.onnx"
    engine_path = onnx_path.with_suffix(".engine")
    if not onnx_path.is_file() or (engine and not engine_path.is_file()):
        save_checkpoint(model, folder / "model")
        export(ExportConfig(model=ctx.model_name, precision=precision, checkpoint=str(folder / "model"),
                            out=str(folder), engine=engine, seed=ctx.seed), log=lambda _: None)
    return engine_path if engine else onnx_path


def _setup_ort(precision: str) -> Callable:
    def setup(model, inputs, ctx: Context) -> Runner:
        import onnxruntime as ort

        from mimic_edge.runtime import load

        provider = "CUDAExecutionProvider" if ctx.device == "cuda" else "CPUExecutionProvider"
        if provider not in ort.get_available_providers():
            raise BackendUnavailable(f"onnxruntime {ort.__version__} has no {provider} (onnxruntime-gpu has)")
        path = exported(model, ctx, precision)
        predictor = load(path, providers=[provider], threads=ctx.threads)
        feeds = {m: x.numpy() for m, x in zip(("text", "audio", "vision"), inputs)}
        # session.run on prepared feeds: the same work as eager's forward, no input checks
        return Runner(lambda: predictor.session.run(["score"], feeds), path.stat().st_size)

    return setup


def _setup_tensorrt(precision: str) -> Callable:
    def setup(model, inputs, ctx: Context) -> Runner:
        from mimic_edge.export.tensorrt import unavailable_reason
        from mimic_edge.runtime import load

        reason = unavailable_reason()
        if reason:
            raise BackendUnavailable(reason)
        path = exported(model, ctx, precision, engine=True)
        predictor = load(path)
        arrays = [x.numpy() for x in inputs]
        return Runner(lambda: predictor.predict(*arrays), path.stat().st_size,
                      "host→device copies included")

    return setup


def setup_torch_tensorrt(model, inputs, ctx: Context) -> Runner:
    if ctx.device != "cuda":
        raise BackendUnavailable("needs a CUDA GPU")
    try:
        import torch_tensorrt
    except ImportError:
        raise BackendUnavailable("torch_tensorrt is not installed") from None
    cuda_inputs = [x.cuda() for x in inputs]
    compiled = torch_tensorrt.compile(model.cuda().eval(), ir="dynamo", inputs=cuda_inputs,
                                      enabled_precisions={torch.float16}, min_block_size=1)
    # torch-tensorrt has no LSTM converter: the LSTMs run in PyTorch between TensorRT blocks
    return _torch_runner(compiled, inputs, "cuda", "LSTMs fall back to PyTorch")


BACKENDS: dict[str, tuple[str, Callable]] = {  # name → (precision, setup)
    "eager": ("fp32", setup_eager),
    "compile": ("fp32", setup_compile),
    "triton": ("fp32", setup_triton),
    "ort-fp32": ("fp32", _setup_ort("fp32")),
    "ort-fp16": ("fp16", _setup_ort("fp16")),
    "ort-int8": ("int8", _setup_ort("int8")),
    "trt-fp16": ("fp16", _setup_tensorrt("fp16")),
    "trt-int8": ("int8", _setup_tensorrt("int8")),
    "torch-tensorrt": ("fp16", setup_torch_tensorrt),
}


class PeakMemory:
    """Peak memory growth over a block: RSS high-water mark on CPU, torch's allocator on CUDA."""

    def __init__(self, device: str):
        self.device = device
        self.mb: float | None = None

    def __enter__(self):
        if self.device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
        else:
            self.base = _reset_rss_peak()
        return self

    def __exit__(self, *exc):
        if self.device == "cuda":
            self.mb = (torch.cuda.max_memory_allocated() - self.base) / 2**20
        elif self.base is not None:
            peak = _proc_status_kb("VmHWM")
            self.mb = max(0, peak - self.base) / 1024 if peak is not None else None


def _proc_status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_rss_peak() -> int | None:
    """Reset the process's RSS high-water mark to its current RSS (Linux); return that RSS in kB."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return None  # not Linux, or not allowed: memory is reported as not measured
    return _proc_status_kb("VmRSS")


def time_runs(run: Callable[[], object], warmup: int, iters: int, device: str) -> list[float]:
    """Per-call latency in ms after `warmup` calls; synchronises CUDA around each call."""
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    for _ in range(warmup):
        run()
    sync()
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        run()
        sync()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in [0, 100])."""
    ordered = sorted(values)
    rank = max(1, round(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def example_inputs(config, batch: int, seq_len: int, seed: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, seq_len, d, generator=gen) for d in config.dims.values()]


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda"):
        raise ConfigError(f"device must be auto, cpu or cuda, got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device cuda requested, but torch sees no CUDA GPU")
    return device


def check_config(cfg: BenchConfig) -> None:
    for name in cfg.backends or ():
        if name not in BACKENDS:
            raise ConfigError(f"unknown backend {name!r}: expected some of {', '.join(BACKENDS)}")
    for name in cfg.models:
        if name not in ("mimic", "misa"):
            raise ConfigError(f"unknown model {name!r}: expected mimic or misa")
    for preset in cfg.presets:
        get_preset(preset)
    if not cfg.batch_sizes or min(cfg.batch_sizes) < 1:
        raise ConfigError(f"batch sizes must be positive integers, got {list(cfg.batch_sizes)}")
    if cfg.iters < 1 or cfg.warmup < 0:
        raise ConfigError(f"iters must be >= 1 and warmup >= 0, got iters={cfg.iters}, warmup={cfg.warmup}")
    if cfg.seq_len is not None and cfg.seq_len < 1:
        raise ConfigError(f"seq_len must be >= 1, got {cfg.seq_len}")
    if cfg.threads is not None and cfg.threads < 1:
        raise ConfigError(f"threads must be >= 1, got {cfg.threads}")


def bench_row(name: str, preset: str, backend: str, batch: int, seq_len: int, cfg: BenchConfig,
              device: str, static: dict) -> dict:
    """Set up one backend for one batch size and time it; `static`: the model, its params,
    FLOPs per sample and artifact folder."""
    model = static["model"]
    precision, setup = BACKENDS[backend]
    row = dict(model=name, preset=preset, backend=backend, precision=precision, device=device,
               batch_size=batch, seq_len=seq_len, threads=cfg.threads or torch.get_num_threads(),
               params=static["params"], flops=static["flops"]["total"] * batch,
               **{f"flops_{part}_per_sample": static["flops"][part] for part in ("encoders", "fusion", "head")},
               p50_ms=None, p99_ms=None,
               throughput=None, peak_mem_mb=None, artifact_bytes=None, note="")
    ctx = Context(name, preset, device, cfg.threads, static["artifact_dir"], cfg.seed)
    inputs = example_inputs(model.config, batch, seq_len, cfg.seed)
    try:
        with PeakMemory(device) as memory:
            runner = setup(model, inputs, ctx)
            times = time_runs(runner.run, cfg.warmup, cfg.iters, device)
    except BackendUnavailable as e:
        return {**row, "status": f"skipped: {e}"}
    p50 = statistics.median(times)
    return {**row, "p50_ms": p50, "p99_ms": percentile(times, 99), "throughput": batch / p50 * 1e3,
            "peak_mem_mb": memory.mb, "artifact_bytes": runner.artifact_bytes, "note": runner.note,
            "status": "ok"}


def run_bench(cfg: BenchConfig, progress: bool = False) -> list[dict]:
    """One row per preset × model × backend × batch size, in that order."""
    from tqdm import tqdm

    check_config(cfg)
    device = resolve_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    backends = cfg.backends or tuple(BACKENDS)
    plan = [(p, m, b, n) for p in cfg.presets for m in cfg.models for b in backends for n in cfg.batch_sizes]
    rows, static = [], {}
    bar = tqdm(plan, desc="bench", unit="row", disable=not progress, leave=False)
    for preset, name, backend, batch in bar:
        bar.set_postfix_str(f"{name} {preset} {backend} batch {batch}")
        seq_len = cfg.seq_len or get_preset(preset).seq_len
        if (preset, name) not in static:
            torch.manual_seed(cfg.seed)
            model = build_model(name, preset).eval()
            flops = flops_breakdown(model, *example_inputs(model.config, 1, seq_len, cfg.seed))
            static[(preset, name)] = {"model": model, "params": model.num_params(), "flops": flops,
                                      "artifact_dir": artifact_dir(model, name, preset, cfg.cache_dir)}
        s = static[(preset, name)]
        rows.append(bench_row(name, preset, backend, batch, seq_len, cfg, device, s))
    return rows


def machine_info(device: str = "cpu") -> dict:
    info = {
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d"),
    }
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name()
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    return info


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


COLUMNS = [("model", "model"), ("preset", "preset"), ("backend", "backend"), ("precision", "prec"),
           ("device", "device"), ("batch_size", "batch"), ("params", "params"), ("flops", "MFLOPs"),
           ("p50_ms", "p50 ms"), ("p99_ms", "p99 ms"), ("throughput", "samples/s"),
           ("peak_mem_mb", "peak MB"), ("artifact_bytes", "size MB"), ("status", "status")]


def _cell(key: str, value) -> str:
    if value is None:
        return "–"
    if key == "params":
        return f"{value:,}"
    if key == "flops":
        return f"{value / 1e6:.2f}"
    if key in ("p50_ms", "p99_ms"):
        return f"{value:.3f}"
    if key == "throughput":
        return f"{value:,.0f}"
    if key == "peak_mem_mb":
        return f"{value:.1f}"
    if key == "artifact_bytes":
        return f"{value / 1e6:.2f}"
    return str(value)


def to_markdown(rows: list[dict], columns=COLUMNS) -> str:
    """Measured rows as a table; skipped backends once each below it, with their reasons."""
    columns = [(k, t) for k, t in columns if k != "status"]
    lines = ["| " + " | ".join(title for _, title in columns) + " |",
             "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(_cell(key, row.get(key)) for key, _ in columns) + " |"
              for row in rows if row["status"] == "ok"]
    skipped = dict.fromkeys((r["backend"], r["model"], r["status"]) for r in rows if r["status"] != "ok")
    if skipped:
        lines += ["", "Not measured on this machine:"]
        lines += [f"- {backend} ({model}): {status}" for backend, model, status in skipped]
    return "\n".join(lines)


def write_csv(rows: list[dict], path: str | Path) -> None:
    import csv
    import io

    from mimic_edge.io import atomic_write

    keys = list(dict.fromkeys(k for row in rows for k in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=keys)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(path, lambda tmp: Path(tmp).write_text(buffer.getvalue()))
