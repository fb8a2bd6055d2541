"""The format registry: what `mimic-edge export` writes, one entry per format, beside the precision
registry (precisions.py; docs/design.md §6). Standard library only, so that `--help` stays fast.

An entry says what the format is built from, the files it is written to, whether a JSON sidecar
travels with it, what judges it and what it needs installed. The export takes its file names
and its commit (artifact, sidecar, then report) from here, the CLI the choices of `--format`.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from mimic_edge.errors import ConfigError


@dataclass(frozen=True)
class Format:
    name: str
    help: str
    built_from: str  # "model": chosen with --format; "onnx": built from the ONNX artifact (--engine)
    file_name: str  # str.format pattern over {name} (the artifact's), {key} (the precision's), {device}, {version}
    report_name: str  # the validation report's file, same fields
    sidecar: bool  # a JSON sidecar <file>.json beside it, checked before the artifact is loaded
    judged_by: str  # what computes the scores it is validated with (the report's judged_by)
    requires: tuple[str, ...] = ()  # Python modules it needs to be built

    def paths(self, out: str | Path, name: str, key: str = "", device: str = "", version: int = 1) -> tuple[Path, Path]:
        """(artifact, report) in folder `out`."""
        fields = {"name": name, "key": key, "device": device, "version": version}
        return Path(out) / self.file_name.format(**fields), Path(out) / self.report_name.format(**fields)

    def missing(self) -> list[str]:
        """The modules in `requires` that are not installed here."""
        return [m for m in self.requires if importlib.util.find_spec(m) is None]


FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("onnx", "one ONNX file, any precision, for ONNX Runtime and TensorRT", "model",
           "{name}.{key}.onnx", "{name}.{key}.validation.json", sidecar=False,
           judged_by="ONNX Runtime on this CPU, by the arithmetic of its target (precisions.py)",
           requires=("onnx", "onnxruntime", "onnxslim")),
    Format("pt2", "an AOTInductor package for PyTorch in Python and C++, fp32, for one device", "model",
           "{name}.{device}.pt2", "{name}.{device}.pt2.validation.json", sidecar=True,
           judged_by="the package through mimic_edge.runtime, within its compiled ranges", requires=("torch",)),
    Format("triton", "a Triton Inference Server model repository: the ONNX artifact, its config.pbtxt "
           "(onnxruntime backend, dynamic batching)", "model",
           "{name}-{key}/{version}/model.onnx", "{name}-{key}/{version}/validation.json", sidecar=False,
           judged_by="ONNX Runtime on this CPU, by the arithmetic of its target (precisions.py), as Triton's "
                     "onnxruntime backend runs it", requires=("onnx", "onnxruntime", "onnxslim")),
    Format("engine", "a TensorRT engine built from the ONNX artifact (--engine)", "onnx",
           "{name}.{key}.engine", "{name}.{key}.engine.validation.json", sidecar=True,
           judged_by="TensorRT on this GPU, within its profile", requires=("tensorrt", "cuda")),
)}
MODEL_FORMATS = tuple(n for n, f in FORMATS.items() if f.built_from == "model")  # what --format takes


def get_format(name: str) -> Format:
    """The entry for `--format name`; a ConfigError naming the choices otherwise."""
    if name not in MODEL_FORMATS:
        raise ConfigError(f"unknown format {name!r}: expected one of {', '.join(MODEL_FORMATS)}")
    return FORMATS[name]
