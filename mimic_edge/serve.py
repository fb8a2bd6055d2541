"""`mimic-edge serve`: any artifact `mimic_edge.runtime.load` opens, served by NVIDIA Triton
Inference Server through PyTriton (docs/serving.md): HTTP, gRPC and Prometheus metrics, dynamic
batching, readiness once the artifact is loaded and warmed, and on SIGINT or SIGTERM the
requests in flight answered before the server exits.

A request carries `text`, `audio`, `vision` float32 (batch, seq_len, dim) and, for an artifact
that takes them (a checkpoint; an ONNX artifact exported with --lengths), optionally
`text_lengths`, `audio_lengths`, `vision_lengths` int64 (batch, 1): requests padded to one
length then share batches and each is scored as alone. The answer is `score` float32 (batch, out).
"""
from __future__ import annotations

import os
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from mimic_edge.config import LENGTHS_INPUTS, MODALITIES, OUTPUT_NAME
from mimic_edge.errors import ConfigError
from mimic_edge.extras import require_extra


@dataclass(frozen=True)
class ServeOptions:
    model_name: str
    model_version: int = 1
    http_port: int = 8000
    grpc_port: int = 8001
    metrics_port: int = 8002
    max_batch: int = 64  # the largest batch the dynamic batcher forms
    max_queue_delay_us: int = 100  # how long it waits to fill one
    instances: int = 1  # model instances (threads calling the one predictor: predictors are thread-safe)
    drain_s: int = 30  # on SIGINT/SIGTERM, how long requests in flight may take to finish


def serve(artifact: str | Path, options: ServeOptions, log: Callable[[str], None] = print) -> None:
    """Load and warm the artifact, then serve it until SIGINT or SIGTERM (see the module doc)."""
    require_extra("serve", "mimic-edge serve")
    _check(options)
    import numpy as np

    from mimic_edge.runtime import load

    predictor = load(artifact)
    _warm(predictor)
    log(f"loaded and warmed {artifact} ({predictor.backend}); starting Triton Inference Server")
    _use_this_libpython()
    from pytriton.decorators import batch
    from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
    from pytriton.triton import Triton, TritonConfig

    takes_lengths = predictor.takes_lengths
    inputs = [Tensor(name=m, dtype=np.float32, shape=(-1, predictor.dims[m])) for m in MODALITIES]
    if takes_lengths:
        inputs += [Tensor(name=LENGTHS_INPUTS[m], dtype=np.int64, shape=(1,), optional=True) for m in MODALITIES]

    @batch
    def infer(**named):  # numpy arrays by input name → {"score": (batch, out)}
        lengths = {m: named[LENGTHS_INPUTS[m]].reshape(-1) for m in MODALITIES if LENGTHS_INPUTS[m] in named}
        scores = predictor.predict(*(named[m] for m in MODALITIES), **({"lengths": lengths} if lengths else {}))
        return {OUTPUT_NAME: scores}

    config = TritonConfig(http_port=options.http_port, grpc_port=options.grpc_port, metrics_port=options.metrics_port,
                          exit_timeout_secs=options.drain_s)
    with Triton(config=config) as triton:
        triton.bind(model_name=options.model_name, model_version=options.model_version,
                    infer_func=[infer] * options.instances, inputs=inputs,
                    outputs=[Tensor(name=OUTPUT_NAME, dtype=np.float32, shape=(predictor.out_dim or -1,))],
                    config=ModelConfig(max_batch_size=options.max_batch,
                                       batcher=DynamicBatcher(max_queue_delay_microseconds=options.max_queue_delay_us)),
                    strict=True)
        log(f"serving {options.model_name} (version {options.model_version}): HTTP :{options.http_port}, "
            f"gRPC :{options.grpc_port}, metrics :{options.metrics_port}; ready at "
            f"/v2/models/{options.model_name}/ready")
        triton.serve()  # returns on SIGINT (and SIGTERM, raised like it by the CLI), in-flight requests answered


def _check(options: ServeOptions) -> None:
    for field in ("model_version", "max_batch", "instances", "http_port", "grpc_port", "metrics_port"):
        value = getattr(options, field)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{field} must be a positive integer, found {value!r}")
    if options.max_queue_delay_us < 0 or options.drain_s < 0:
        raise ConfigError("max_queue_delay_us and drain_s must be >= 0")
    ports = (options.http_port, options.grpc_port, options.metrics_port)
    if len(set(ports)) < 3 or max(ports) > 65535:
        raise ConfigError(f"the HTTP, gRPC and metrics ports must be three different ports up to 65535, found {ports}")
    if not options.model_name or not all(c.isalnum() or c in "-_." for c in options.model_name):
        raise ConfigError(f"model name {options.model_name!r}: expected letters, digits, '-', '_' or '.'")


def _warm(predictor) -> None:
    """One call at batch 1 before the server reports ready: sessions, arenas and lazy kernels are set up."""
    import numpy as np

    low, high = (getattr(predictor, "seq_range", None) or {}).get(MODALITIES[0], (1, 50))
    length = min(max(low, 50), high)  # the presets' length where the artifact admits it
    predictor.predict(*(np.zeros((1, length, predictor.dims[m]), np.float32) for m in MODALITIES))


def _use_this_libpython() -> None:
    """Triton's Python backend stub links the system's libpython3.x; a venv made from another
    build of the same version (pyenv, conda) has another standard library, and the stub dies
    loading the model (`_thread.RLock` has no `_recursion_count`). The stub finds this
    interpreter's own libpython first on LD_LIBRARY_PATH, which the server inherits."""
    libdir = sysconfig.get_config_var("LIBDIR")
    library = sysconfig.get_config_var("LDLIBRARY")
    if sysconfig.get_config_var("Py_ENABLE_SHARED") and libdir and library and (Path(libdir) / library).exists():
        paths = [p for p in os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p]
        if libdir not in paths:
            os.environ["LD_LIBRARY_PATH"] = os.pathsep.join([libdir, *paths])
