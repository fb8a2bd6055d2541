"""`mimic-edge serve`: an artifact behind NVIDIA Triton Inference Server (PyTriton): HTTP, gRPC and
Prometheus metrics, dynamic batching; ready once the artifact is loaded and warmed; SIGINT or
SIGTERM answers the requests in flight, then exits 0. Needs the serve extra
(pip install 'mimic-edge[serve]', in a venv of its own: PyTriton pins numpy < 2). For a fleet of
servers, `mimic-edge export --format triton` writes a model repository instead (docs/serving.md).
"""
from __future__ import annotations

from mimic_edge.cli._common import EXAMPLES_HELP

EXAMPLES = """examples:
  mimic-edge serve artifacts/mimic-best.fp32.onnx                      # HTTP :8000, gRPC :8001, metrics :8002
  mimic-edge serve artifacts/mimic-best.fp32.onnx --max-batch 32 --max-queue-delay-us 500 --instances 2
  mimic-edge serve runs/mimic/best.safetensors --model-name mimic --http-port 9000 --grpc-port 9001 --metrics-port 9002
  curl localhost:8000/v2/health/ready && curl localhost:8000/v2/models/mimic-best-fp32/config
"""


def add_parser(sub) -> None:
    from mimic_edge.serve import ServeOptions

    defaults = ServeOptions("model")
    p = sub.add_parser("serve", help="serve an artifact on Triton Inference Server (HTTP, gRPC, metrics)",
                       description=__doc__, epilog=EXAMPLES, formatter_class=EXAMPLES_HELP)
    p.add_argument("artifact", metavar="ARTIFACT",
                   help="an .onnx artifact (--lengths: padded requests share batches), an .engine/.plan, a .pt2 "
                        "package or a checkpoint (what mimic_edge.runtime.load opens)")
    p.add_argument("--model-name", default=None, help="(default: the artifact's file name, dots as dashes)")
    p.add_argument("--model-version", type=int, default=defaults.model_version)
    for name in ("http", "grpc", "metrics"):
        p.add_argument(f"--{name}-port", type=int, default=getattr(defaults, f"{name}_port"),
                       help=f"(default: {getattr(defaults, f'{name}_port')})")
    p.add_argument("--max-batch", type=int, default=defaults.max_batch,
                   help=f"the largest batch the dynamic batcher forms (default: {defaults.max_batch})")
    p.add_argument("--max-queue-delay-us", type=int, default=defaults.max_queue_delay_us,
                   help=f"how long it waits to fill a batch, microseconds (default: {defaults.max_queue_delay_us})")
    p.add_argument("--instances", type=int, default=defaults.instances,
                   help=f"model instances calling the artifact in parallel (default: {defaults.instances})")
    p.add_argument("--drain-s", type=int, default=defaults.drain_s,
                   help=f"on SIGINT/SIGTERM, time for the requests in flight (default: {defaults.drain_s})")
    p.set_defaults(run=run)


def run(args) -> int:
    from pathlib import Path

    from mimic_edge.serve import ServeOptions, serve

    name = args.model_name or Path(args.artifact).name.removesuffix(".safetensors").replace(".", "-")
    serve(args.artifact, ServeOptions(name, args.model_version, args.http_port, args.grpc_port, args.metrics_port,
                                      args.max_batch, args.max_queue_delay_us, args.instances, args.drain_s))
    return 0
