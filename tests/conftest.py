import os

import pytest
import torch

# Without a GPU, Triton kernels run only through its interpreter, which must be enabled before
# any @triton.jit function is defined, so before mimic_edge.kernels is imported anywhere.
# On a GPU machine the real kernels run (TRITON_INTERPRET=1 forces the interpreter there too).
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def random_inputs(config, batch, seq_lens=(50, 50, 50), seed=0):
    """Random (text, audio, vision) for `config`; seq_lens per modality in MODALITIES order."""
    from mimic_edge.config import MODALITIES

    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, L, config.dims[m], generator=gen) for m, L in zip(MODALITIES, seq_lens)]


@pytest.fixture
def make_inputs():
    return random_inputs


class Artifacts:
    """A MIMIC checkpoint (preset mosi, seeded random weights) and its ONNX exports, each made on
    first use and kept for the whole test session: exports are the slow part of many tests."""

    def __init__(self, folder):
        from mimic_edge import build_model, save_checkpoint

        torch.manual_seed(0)
        self.folder = folder
        self.model = build_model("mimic").eval()
        self.checkpoint = save_checkpoint(self.model, folder / "mimic")  # mimic.safetensors + mimic.json
        self._onnx = {}

    def onnx(self, precision: str = "fp32"):
        """Path of the `precision` ("fp32" | "fp16" | "int8") ONNX artifact."""
        if precision not in self._onnx:
            self._onnx[precision] = _export_onnx(self.model, precision, self.folder / f"mimic.{precision}.onnx")
        return self._onnx[precision]


def _export_onnx(model, precision, path):
    import numpy as np
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.transformers.float16 import convert_float_to_float16

    from mimic_edge.config import MODALITIES
    from mimic_edge.data import synthetic

    fp32 = path.with_name("mimic.fp32.onnx")
    if not fp32.exists():
        example = tuple(torch.zeros(2, 3 + i, model.config.dims[m]) for i, m in enumerate(MODALITIES))
        axes = {m: {0: "batch", 1: f"seq_{m}"} for m in MODALITIES} | {"score": {0: "batch"}}
        torch.onnx.export(model, example, fp32, dynamo=False, opset_version=17, input_names=list(MODALITIES),
                          output_names=["score"], dynamic_axes=axes)
    if precision == "fp16":
        onnx.save(convert_float_to_float16(onnx.load(fp32), keep_io_types=True), path)
    if precision == "int8":
        calib = synthetic("mosi", n=(64, 1, 1), seed=1)["train"]

        class Reader:
            batches = iter([{m: calib[m][i:i + 32] for m in MODALITIES} for i in (0, 32)])

            def get_next(self):
                return next(self.batches, None)

        quantize_static(fp32, path, Reader(), quant_format=QuantFormat.QDQ, activation_type=QuantType.QInt8,
                        weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=["MatMul", "Gemm"],
                        extra_options={"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False})
    return path


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory):
    return Artifacts(tmp_path_factory.mktemp("artifacts"))
