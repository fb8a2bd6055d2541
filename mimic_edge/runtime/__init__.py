"""Run any mimic-edge artifact from Python: `load(path)`, then `predict(text, audio, vision)`.

    from mimic_edge.runtime import load
    predictor = load("mimic.int8.onnx")
    scores = predictor.predict(text, audio, vision)   # (B, Lm, dm) numpy or torch -> numpy (B, out)

| artifact                                   | backend      | what loading it imports          |
|--------------------------------------------|--------------|----------------------------------|
| `*.onnx` (fp32, fp16, int8)                | ONNX Runtime | numpy, onnxruntime               |
| `*.engine` / `*.plan` + its JSON sidecar   | TensorRT     | numpy, tensorrt, CUDA bindings   |
| `*.pt2` (AOTInductor) + its JSON sidecar   | PyTorch AOTI | numpy, torch (not triton)        |
| checkpoint `*.safetensors` + `*.json`      | PyTorch      | torch                            |

Running an ONNX artifact or a TensorRT engine imports neither torch nor triton, so an app on a
Jetson carries no training stack; an AOTInductor package needs torch (the release it was compiled
with: its sidecar says which, and the device). Every predictor validates its inputs against the artifact
(feature dims, and for engines and packages the batch and sequence ranges) and is safe to call
from several threads at once.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np

from mimic_edge.errors import ArtifactError
from mimic_edge.extras import require_extra
from mimic_edge.runtime.inputs import read_inputs, write_inputs

ONNX_SUFFIXES = (".onnx",)
ENGINE_SUFFIXES = (".engine", ".plan")
PT2_SUFFIXES = (".pt2",)
CHECKPOINT_SUFFIXES = (".safetensors", ".json")


@runtime_checkable
class Predictor(Protocol):
    backend: str  # "onnxruntime" | "tensorrt" | "torch" | "aoti"
    path: Path
    dims: dict[str, int]  # feature dim per modality, read from the artifact
    out_dim: int | None  # columns of the output
    takes_lengths: bool  # predict takes per-sample lengths (a checkpoint; ONNX exported with --lengths)

    def predict(self, text: Any, audio: Any, vision: Any, lengths: Any = None) -> np.ndarray:
        """(B, L_m, d_m) numpy arrays or torch tensors → float32 numpy (B, out). `lengths`: per
        modality (B,) valid lengths of a padded batch, where the artifact takes them (a checkpoint;
        an ONNX artifact exported with --lengths); elsewhere an InputError."""
        ...


def load(path: str | Path, *, providers: Sequence[str] | None = None, device: str | None = None,
         threads: int | None = None, allow_foreign: bool = False) -> Predictor:
    """The predictor for the artifact at `path`, chosen by its suffix.

    `providers`: ONNX Runtime execution providers (default: TensorRT, CUDA, CPU, those installed).
    `threads`: ONNX Runtime intra-op threads (default: ONNX Runtime's, one per physical core).
    `device`: torch device for a checkpoint (default: cuda when available, else cpu), or for a
    `.pt2` package (default: the device it was compiled for; e.g. "cuda:1" picks the GPU).
    `allow_foreign`: also run an ONNX graph that `mimic-edge export` did not write (one you made
    yourself, with the same inputs and output). By default an ONNX without the export's stamp
    (producer "mimic-edge", metadata `model` and `config_digest`) is refused with an ArtifactError.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in ONNX_SUFFIXES:
        from mimic_edge.runtime.onnx_predictor import OnnxPredictor

        return OnnxPredictor(path, providers, threads, allow_foreign=allow_foreign)
    if suffix in ENGINE_SUFFIXES:
        from mimic_edge.runtime.tensorrt_predictor import TensorRTPredictor

        return TensorRTPredictor(path)
    if suffix in PT2_SUFFIXES:
        require_extra("torch", f"running the AOTInductor package {path.name}")
        from mimic_edge.runtime.aoti_predictor import AotiPredictor

        return AotiPredictor(path, device)
    if suffix in CHECKPOINT_SUFFIXES or path.with_name(path.name + ".safetensors").is_file():
        require_extra("torch", f"running the checkpoint {path.name}")
        from mimic_edge.runtime.torch_predictor import TorchPredictor

        return TorchPredictor(path, device)
    raise ArtifactError(f"{path}: unknown artifact type: expected an ONNX model ({', '.join(ONNX_SUFFIXES)}), "
                        f"a TensorRT engine ({', '.join(ENGINE_SUFFIXES)}), an AOTInductor package "
                        f"({', '.join(PT2_SUFFIXES)}) or a checkpoint "
                        f"({' + '.join(CHECKPOINT_SUFFIXES)}), found suffix {path.suffix or 'none'!r}")


__all__ = ["Predictor", "load", "read_inputs", "write_inputs"]
