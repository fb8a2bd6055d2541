"""Export a model to a validated ONNX artifact and, on a GPU machine, a TensorRT engine
(docs/design.md §6). `mimic-edge export` is a thin shell over `export(ExportConfig(...))`.

Modules, in the order the pipeline uses them:
  precisions.py the precision registry: one entry per precision and target (thresholds,
                TensorRT flags, how a CPU judges it)
  formats.py    the format registry: onnx, pt2, engine (files, sidecar, what judges it, needs)
  config.py     ExportConfig and its checks (light: what the CLI needs)
  pipeline.py   export(): the steps below, then the files (see its doc for the layout)
  shapes.py     the batch and sequence ranges (--batch, --seq) of engines and packages
  onnx.py       PyTorch → lean FP32 ONNX (onnxslim plus this model's own rewrites)
  precision.py  FP32 → FP16 / INT8 (calibrated Q/DQ, or dynamic for CPUs), one converter per entry
  checker.py    TensorRT's parser rules; any finding stops the export
  validate.py   the PyTorch model's reference scores, and the artifact judged against them
  judge.py      the checks (parity, SQNR, task metrics) and the report; numpy only, so an
                artifact can be judged again where it runs
  tensorrt.py   engine build (TensorRT 10.x flags / 11.x strong typing), timing cache;
                the engine's sidecar is written by mimic_edge.sidecar
  aoti.py       the AOTInductor package (`.pt2`)

Importing this package is light: `export` and `ExportResult` load the pipeline (torch, onnx)
on first access.
"""
from mimic_edge.export.config import DEFAULT_CALIB_SAMPLES, DEFAULT_VALID_SAMPLES, ExportConfig
from mimic_edge.export.precisions import PRECISION_NAMES, PRECISIONS, TARGETS, Precision, find_precision, get_precision


def __getattr__(name: str):
    if name in ("export", "ExportResult"):
        from mimic_edge.export import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DEFAULT_CALIB_SAMPLES", "DEFAULT_VALID_SAMPLES", "ExportConfig", "ExportResult", "PRECISIONS",
           "PRECISION_NAMES", "Precision", "TARGETS", "export", "find_precision", "get_precision"]
