"""The precision registry: one entry per precision and target, read by the CLI, the export, the
TensorRT build and the bench (docs/design.md §6). Standard library only, so that `--help` and the
option checks stay fast.

Adding a precision or a target is one entry here and its converter in `precision.py`.

Validation thresholds. Scores live in [-3, 3]. Measured on a 2-core x86_64 CPU (onnxruntime
1.32), preset mosi, 229 validation samples, MIMIC and MISA trained on the synthetic set
(`mimic-edge train`; MIMIC MAE 0.27, Acc-2 0.93), worst of the two
(benchmarks/export/export_precisions.py):
  fp32  max_abs ≤ 8.3e-7 (kernel summation order), SQNR ≥ 127 dB, no metric change
  fp16  max_abs ≤ 1.0e-3, SQNR ≥ 65 dB (ONNX Runtime's CPU provider computes most fp16 ops
        in fp32: TensorRT also rounds activations, hence the margin)
  int8  max_abs ≤ 0.047, SQNR ≥ 32 dB, |Δ MAE| ≤ 1e-3, |Δ Acc-2| ≤ 0.0087 (2 of 229)
Freshly initialised models give near-constant scores (MISA: mean 0.08, std 0.11), the worst
case for a relative measure: int8 SQNR 16-30 dB (MISA, mosi-bert), |Δ Acc-2| ≤ 0.019.
So for int8 the absolute error and the task metrics are the gates, and the SQNR limit only
catches an artifact that no longer tracks the model. Acc-2 moves by 1/N per flipped sign:
the limits allow ~1 (fp32), 2 (fp16), 7 (int8) of 229.

fp32's max_abs is a bound, not a fit (the tests compare fp32 implementations with it too). Two
fp32 implementations of the model (PyTorch's oneDNN, ONNX Runtime's MLAS, another thread count;
each picks its kernels and blocking by CPU instruction set) sum the same products in other
orders. One sum of K ≤ 768 terms of magnitude ≤ 1 differs by about √K·u ≈ 28u (u = 2^-24,
rounding errors of random sign); a recurrence passes a difference on through at most 50 steps
(forget gate ≤ 1), so a score differs by at most about 50·28u ≈ 8.3e-5 < 1e-4, on any CPU.
Measured: 8.3e-7.
"""
from __future__ import annotations

from dataclasses import dataclass

from mimic_edge.errors import ConfigError

DEFAULT_TARGET = "tensorrt"
# Shown wherever a user may reach for fp16 on a CPU (the export's log, --help, errors).
FP16_ON_CPU = ("; ONNX Runtime on x86 CPUs has no fast fp16 path (it computes fp16 graphs in fp32 behind casts), "
               "so on a CPU use fp32, or int8 --target cpu")


@dataclass(frozen=True)
class Thresholds:
    max_abs: float  # max |artifact − torch| on any parity case
    sqnr_db: float  # minimum SQNR, parity cases and validation set
    mae_delta: float  # max |MAE(artifact) − MAE(torch)|
    acc2_delta: float  # max |Acc-2(artifact) − Acc-2(torch)|, Has0 and Non0


@dataclass(frozen=True)
class Precision:
    """One exportable precision for one target runtime."""

    name: str  # what `--precision` takes
    help: str  # one line for `--help` and the docs
    converter: str  # the FP32 graph → this precision, a function in mimic_edge.export.precision
    thresholds: Thresholds  # validation against PyTorch
    calibrated: bool = False  # needs calibration inputs (the train split of --calib-data)
    target: str = DEFAULT_TARGET  # the runtime the artifact is made for
    tensorrt_flags: tuple[str, ...] = ()  # TensorRT 10.x builder flags (11.x: the ONNX's types decide)
    tensorrt_cleared_flags: tuple[str, ...] = ()  # builder flags on by default that this precision clears
    note: str = ""  # what a user should know before using it; the export prints it
    # How a CPU judges the artifact (mimic_edge.export.validate, mimic_edge.runtime.onnx_predictor):
    qdq: bool = False  # explicit Q/DQ pairs, run in float on a CPU: the int8 math TensorRT implements
    integer_kernels: bool = False  # run by ONNX Runtime's CPU integer kernels: judged by this host's
    # A sample's scores do not depend on the other samples of its batch (false for dynamic quantization,
    # whose activation scales are computed over the whole batch, padding included): --lengths needs it.
    batch_independent: bool = True

    @property
    def key(self) -> str:
        """The artifact's infix (N.<key>.onnx) and this entry's key: the name, plus the target
        when it is not the default one."""
        return self.name if self.target == DEFAULT_TARGET else f"{self.name}-{self.target}"

    @property
    def tensorrt(self) -> bool:
        """Made for TensorRT: checked against its parser rules, and an engine can be built."""
        return self.target == "tensorrt"


PRECISIONS: dict[str, Precision] = {p.key: p for p in (
    # TF32 is on by default in TensorRT 10.x and 11.x builders: it rounds matrix-product inputs to 10
    # mantissa bits (~5e-4 relative), which fp32's thresholds (1e-4, 80 dB) rightly refuse.
    Precision("fp32", "float32 weights and compute", "to_fp32",
              Thresholds(max_abs=1e-4, sqnr_db=80.0, mae_delta=1e-5, acc2_delta=0.005),
              tensorrt_cleared_flags=("TF32",)),
    Precision("fp16", "float16 weights and compute, float32 inputs and outputs, for GPUs", "to_fp16",
              Thresholds(max_abs=1e-2, sqnr_db=40.0, mae_delta=2e-3, acc2_delta=0.01),
              tensorrt_flags=("FP16",), note="fp16 artifacts are for GPUs" + FP16_ON_CPU),
    # INT8 alone keeps the float parts of the artifact, the LSTMs among them, in FP32 as validated.
    Precision("int8", "calibrated int8 Q/DQ on every MatMul/Gemm, LSTMs in float", "to_int8",
              Thresholds(max_abs=0.1, sqnr_db=15.0, mae_delta=0.02, acc2_delta=0.03),
              calibrated=True, tensorrt_flags=("INT8",), qdq=True),
    # For ONNX Runtime on CPUs, where the TensorRT artifact above is slower than fp32 (its LSTMs
    # stay float and Q/DQ pairs cost a reformat each): docs/export.md, "INT8 on CPUs".
    Precision("int8", "dynamic int8 for ONNX Runtime's CPU integer kernels, LSTMs included", "to_int8_cpu",
              Thresholds(max_abs=0.1, sqnr_db=15.0, mae_delta=0.02, acc2_delta=0.03), target="cpu",
              integer_kernels=True, batch_independent=False),
)}
PRECISION_NAMES = tuple(dict.fromkeys(p.name for p in PRECISIONS.values()))  # what --precision takes
TARGETS = tuple(dict.fromkeys(p.target for p in PRECISIONS.values()))  # what --target takes
DEFAULT_PRECISION = "fp32"


def find_precision(name: str, target: str = DEFAULT_TARGET) -> Precision:
    """The entry for precision `name` on `target`; a ConfigError naming what exists otherwise."""
    for entry in PRECISIONS.values():
        if (entry.name, entry.target) == (name, target):
            return entry
    if name not in PRECISION_NAMES:
        raise ConfigError(f"unknown precision {name!r}: expected one of {', '.join(PRECISION_NAMES)}")
    if target not in TARGETS:
        raise ConfigError(f"unknown target {target!r}: expected one of {', '.join(TARGETS)}")
    offered = [p.target for p in PRECISIONS.values() if p.name == name]
    hint = " (its artifact runs on every ONNX runtime: leave --target out)" if offered == [DEFAULT_TARGET] else ""
    raise ConfigError(f"precision {name} has no artifact for target {target}: expected target "
                      f"{', '.join(offered)}{hint}" + (FP16_ON_CPU if (name, target) == ("fp16", "cpu") else ""))


def get_precision(key: str) -> Precision:
    """The entry for `key` (a precision name, with `-<target>` for a non-default target); a
    ConfigError naming the valid keys otherwise."""
    if key not in PRECISIONS:
        raise ConfigError(f"unknown precision {key!r}: expected one of {', '.join(PRECISIONS)}")
    return PRECISIONS[key]
