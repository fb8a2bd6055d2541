"""`mimic-edge export`: a validated FP32/FP16/INT8 ONNX artifact and, with --engine on a machine
with TensorRT and a CUDA GPU, a TensorRT engine with its JSON sidecar; or, with --format pt2, an
AOTInductor package (N.<device>.pt2, fp32, for CPU or CUDA) with its JSON sidecar, which runs
from Python (mimic_edge.runtime.load) and C++ (libtorch) on the torch release it was built with.

Every artifact is validated against the PyTorch model (max abs error, SQNR, MAE and Acc-2
deltas, thresholds per precision) before it is written, and ONNX artifacts for TensorRT are
checked against its parser rules; the report goes to N.P.validation.json beside it
(N.<device>.pt2.validation.json for a package). A failed check exits non-zero.
"""
from __future__ import annotations

from mimic_edge.cli._common import EXAMPLES_HELP

EXAMPLES = """examples:
  mimic-edge export --checkpoint runs/mimic/best --precision int8           # artifacts/mimic-best.int8.onnx
  mimic-edge export --checkpoint runs/mimic/best --precision int8 --target cpu   # artifacts/mimic-best.int8-cpu.onnx
  mimic-edge export --checkpoint runs/misa/best                             # the model and preset: the checkpoint's
  mimic-edge export --model misa --preset mosi-bert --precision fp16 --out exports/
  mimic-edge export --checkpoint runs/mimic/best --precision int8 --calib-data mosi.pkl --calib-samples 512
  mimic-edge export --checkpoint runs/mimic/best --precision fp16 --engine --batch 1:1:32 --seq 1:50:100
  mimic-edge export --precision int8                     # fresh weights: tries the pipeline, no model
  mimic-edge export --checkpoint runs/mimic/best --format pt2       # artifacts/mimic-best.cpu.pt2 + its .json
  mimic-edge export --checkpoint runs/mimic/best --format pt2 --device cuda --batch 1:1:32 --seq 1:50:100
  mimic-edge export --checkpoint runs/mimic/best --format triton --out models/      # models/mimic-best-fp32/
  mimic-edge export --checkpoint runs/mimic/best --format triton --precision int8 --target cpu --instances 2 --out models/
  mimic-edge export --checkpoint runs/mimic/best --format triton --precision fp16 --device cuda --accelerator tensorrt --out models/
"""


def add_parser(sub) -> None:
    from mimic_edge.config import DEFAULT_MODEL, DEFAULT_PRESET, MODEL_NAMES, PRESETS
    from mimic_edge.export import DEFAULT_CALIB_SAMPLES, PRECISION_NAMES, PRECISIONS, TARGETS, ExportConfig
    from mimic_edge.export.config import DEVICES, FORMATS

    defaults = ExportConfig()
    p = sub.add_parser("export", help="validated ONNX artifacts (fp32/fp16/int8), TensorRT engines, AOTInductor "
                                      "packages",
                       description=__doc__, epilog=EXAMPLES, formatter_class=EXAMPLES_HELP)
    model = p.add_argument_group("model")
    model.add_argument("--model", choices=MODEL_NAMES, default=None,
                       help=f"model architecture; must match the checkpoint's (default: the checkpoint's, else "
                            f"{DEFAULT_MODEL})")
    model.add_argument("--checkpoint", metavar="PATH",
                       help="checkpoint (PATH.safetensors + PATH.json); without it, freshly initialised weights")
    model.add_argument("--preset", choices=list(PRESETS), metavar="PRESET",
                       help=f"feature preset, one of {', '.join(PRESETS)} (default: the checkpoint's, else "
                            f"{DEFAULT_PRESET})")
    artifact = p.add_argument_group("artifact")
    artifact.add_argument("--precision", choices=PRECISION_NAMES, default=defaults.precision,
                          help="; ".join(f"{p.name}{'' if p.target == defaults.target else ' --target ' + p.target}: "
                                         f"{p.help}" for p in PRECISIONS.values())
                               + f" (default: {defaults.precision})")
    artifact.add_argument("--target", choices=TARGETS, default=defaults.target,
                          help=f"the runtime the artifact is made for: tensorrt (explicit Q/DQ that TensorRT's parser "
                               f"accepts; also runs in ONNX Runtime) or cpu (ONNX Runtime's integer kernels, "
                               f"int8 only) (default: {defaults.target})")
    artifact.add_argument("--calib-data", default=defaults.calib_data, metavar="PATH|synthetic",
                          help="MMSA .pkl/.npz dataset: its train split calibrates INT8, its valid split "
                               "validates (default: synthetic)")
    artifact.add_argument("--calib-samples", type=int, default=DEFAULT_CALIB_SAMPLES, metavar="N",
                          help=f"INT8 calibration samples (default: {DEFAULT_CALIB_SAMPLES})")
    artifact.add_argument("--opset", type=int, default=defaults.opset, help="ONNX opset, 17-20 (default: 17)")
    artifact.add_argument("--lengths", action="store_true",
                          help="inputs text_lengths, audio_lengths, vision_lengths (int64, per sample) in the ONNX "
                               "artifact, its engine or the .pt2 package: a batch padded to one length is scored as "
                               "each sample alone (what a server batching requests needs); without them every step "
                               "of every sequence counts; not for int8 --target cpu")
    artifact.add_argument("--out", default=defaults.out, metavar="DIR", help="output folder (default: artifacts)")
    artifact.add_argument("--force", action="store_true",
                          help="replace an artifact of another model or config under the same name (re-exporting "
                               "the same checkpoint and options replaces it anyway)")
    artifact.add_argument("--format", choices=FORMATS, default=defaults.format,
                          help="onnx: N.P.onnx (and --engine); pt2: an AOTInductor package N.<device>.pt2, fp32, "
                               "compiled with torch.export and AOTInductor (a minute or more), with the fused "
                               "Triton head on CUDA; triton: a Triton Inference Server model N-P/ (config.pbtxt, "
                               f"<version>/model.onnx) (default: {defaults.format})")
    artifact.add_argument("--device", choices=DEVICES, default=defaults.device,
                          help="--format pt2: the device the package is compiled for (cuda needs a CUDA GPU "
                               "here, the kind it will run on); --format triton: the device the model's instances "
                               f"run on (default: {defaults.device})")
    triton = p.add_argument_group("Triton Inference Server model repository (--format triton, docs/serving.md)")
    triton.add_argument("--instances", type=int, default=defaults.instances, metavar="N",
                        help=f"model instances per device (default: {defaults.instances})")
    triton.add_argument("--max-queue-delay-us", type=int, default=defaults.max_queue_delay_us, metavar="US",
                        help="how long the dynamic batcher waits to fill a batch, microseconds "
                             f"(default: {defaults.max_queue_delay_us})")
    triton.add_argument("--accelerator", choices=("tensorrt",), default=None,
                        help="GPU instances: ONNX Runtime's TensorRT execution accelerator (needed for --precision "
                             "int8, which is judged by TensorRT's arithmetic)")
    triton.add_argument("--model-version", type=int, default=defaults.model_version, metavar="N",
                        help=f"the version folder written (default: {defaults.model_version})")
    engine = p.add_argument_group("TensorRT engine (needs tensorrt and a CUDA GPU) and pt2 shape ranges")
    engine.add_argument("--engine", action="store_true", help="also build a TensorRT engine and its JSON sidecar")
    engine.add_argument("--batch", default=defaults.batch, metavar="MIN:OPT:MAX",
                        help="optimization profile batch sizes; with --format pt2 the package's batch range "
                             "(default: 1:1:64)")
    engine.add_argument("--seq", default=None, metavar="MIN:OPT:MAX",
                        help="optimization profile sequence lengths, every modality; with --format pt2 each "
                             "modality's sequence range (default: 1:L:2L, L the preset's length: 1:50:100)")
    p.set_defaults(run=run)


def run(args) -> int:
    from mimic_edge.errors import ExportError
    from mimic_edge.export import ExportConfig, export

    config = ExportConfig(model=args.model, precision=args.precision, target=args.target, checkpoint=args.checkpoint,
                          preset=args.preset, calib_data=args.calib_data, calib_samples=args.calib_samples,
                          batch=args.batch, seq=args.seq, opset=args.opset, engine=args.engine, out=args.out,
                          format=args.format, device=args.device, force=args.force, instances=args.instances,
                          max_queue_delay_us=args.max_queue_delay_us, accelerator=args.accelerator,
                          model_version=args.model_version, lengths=args.lengths)
    result = export(config)
    if result.engine_skipped:
        raise ExportError(f"--engine: {result.engine_skipped}; {result.onnx_path} was written and validated")
    print(f"done in {result.seconds:.1f} s")
    return 0
