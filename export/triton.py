"""A model repository for NVIDIA Triton Inference Server (docs/serving.md): the validated ONNX
artifact served by Triton's own onnxruntime backend, on CPU or GPU instances, with dynamic
batching; on a GPU, optionally through ONNX Runtime's TensorRT execution accelerator.

    OUT/<model>/config.pbtxt        inputs text, audio, vision (TYPE_FP32, dims [-1, d_m]: any
                                    length; with --lengths also text_lengths... TYPE_INT64),
                                    output score (TYPE_FP32, [out]), max_batch_size,
                                    dynamic_batching, one instance group
    OUT/<model>/<version>/model.onnx
    OUT/<model>/<version>/validation.json

<model> is the artifact's name and precision key (mimic-best-fp16). Standard library only: the
config is text in Triton's protobuf text format, checked in the tests by parsing it into
Triton's own ModelConfig message (tritonclient's model_config_pb2).
"""
from __future__ import annotations

from dataclasses import dataclass

from mimic_edge.config import LENGTHS_INPUTS, MODALITIES, OUTPUT_NAME

KINDS = {"cpu": "KIND_CPU", "cuda": "KIND_GPU"}  # --device → the instance group's kind
ACCELERATORS = ("tensorrt",)  # --triton-accelerator: ONNX Runtime's execution accelerators on a GPU


@dataclass(frozen=True)
class ServingConfig:
    """What config.pbtxt says besides the model's signature."""

    max_batch_size: int  # the largest batch Triton forms or accepts (--batch MAX)
    device: str = "cpu"  # a key of KINDS
    instances: int = 1  # model instances per device
    max_queue_delay_us: int = 100  # how long the dynamic batcher waits to fill a batch
    accelerator: str | None = None  # one of ACCELERATORS, GPU only
    precision_mode: str = "FP32"  # what the TensorRT accelerator builds in: FP32, FP16, INT8 (the artifact's)


def model_config(name: str, dims: dict[str, int], out_dim: int, serving: ServingConfig, lengths: bool = False,
                 platform: str = "onnxruntime") -> str:
    """config.pbtxt for the onnxruntime backend. Triton's dynamic batcher joins requests whose
    shapes agree but for the batch: with `lengths` (an artifact exported with --lengths), clients
    that pad to a common length and send each sample's lengths share batches, scored as alone.
    `platform` "tensorrt_plan": a TensorRT engine (model.plan), on GPU instances."""
    specs = [f'  {{ name: "{m}" data_type: TYPE_FP32 dims: [ -1, {dims[m]} ] }}' for m in MODALITIES]
    if lengths:  # one int64 per sample: [1] per request item, reshaped to the graph's (batch,)
        specs += [f'  {{ name: "{LENGTHS_INPUTS[m]}" data_type: TYPE_INT64 dims: [ 1 ] reshape: {{ shape: [ ] }} }}'
                  for m in MODALITIES]
    inputs = ",\n".join(specs)
    lines = [
        f'name: "{name}"',
        'backend: "onnxruntime"' if platform == "onnxruntime" else f'platform: "{platform}"',
        f"max_batch_size: {serving.max_batch_size}",
        f"input [\n{inputs}\n]",
        f'output [\n  {{ name: "{OUTPUT_NAME}" data_type: TYPE_FP32 dims: [ {out_dim} ] }}\n]',
        f"dynamic_batching {{ max_queue_delay_microseconds: {serving.max_queue_delay_us} }}",
        f"instance_group [ {{ count: {serving.instances} kind: {KINDS[serving.device]} }} ]",
        "version_policy: { latest: { num_versions: 1 } }",
    ]
    # graph level 1: ONNX Runtime's EXTENDED optimizations, as the artifact was validated (mimic_edge.runtime);
    # the backend's default, ALL, is what segfaults on FP16 models on CPUs with AVX-512-FP16
    accelerator = ""
    if serving.accelerator == "tensorrt":
        accelerator = (' execution_accelerators { gpu_execution_accelerator: [ { name: "tensorrt" '
                       f'parameters {{ key: "precision_mode" value: "{serving.precision_mode}" }} }} ] }}')
    if platform == "onnxruntime":
        lines.append(f"optimization {{ graph {{ level: 1 }}{accelerator} }}")
    return "\n".join(lines) + "\n"


def precision_mode(tensorrt_flags: tuple[str, ...]) -> str:
    """The TensorRT accelerator's precision_mode for an artifact whose TensorRT 10.x builder flags
    (its precision entry's) are these: the flags say what the ONNX's types need."""
    return next((flag for flag in ("INT8", "FP16") if flag in tensorrt_flags), "FP32")
