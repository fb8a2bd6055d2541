"""Shared, session-scoped export work: seeded models, their FP32 graphs and a small synthetic
dataset per preset, each built once on first use (exports and MISA's LSTMs are the slow part)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from mimic_edge.config import MODALITIES

CALIB_SAMPLES = 64  # small calibration set: enough to settle min/max on a seeded model
VALID_SAMPLES = 229  # CMU-MOSI's: Acc-2 moves by 1/229 per flipped sign, as the thresholds assume


class ExportCache:
    def __init__(self):
        self._models, self._fp32, self._data, self._converted = {}, {}, {}, {}

    def model(self, name: str, preset: str = "mosi") -> torch.nn.Module:
        if (name, preset) not in self._models:
            from mimic_edge.models import build_model

            torch.manual_seed(0)
            self._models[name, preset] = build_model(name, preset).eval()
        return self._models[name, preset]

    def fp32(self, name: str, preset: str = "mosi"):
        """A fresh copy of the FP32 graph (callers may modify it)."""
        import onnx

        from mimic_edge.export.onnx import to_bytes, to_onnx

        if (name, preset) not in self._fp32:
            self._fp32[name, preset] = to_bytes(to_onnx(self.model(name, preset)))
        return onnx.load_from_string(self._fp32[name, preset])

    def data(self, preset: str = "mosi") -> dict:
        if preset not in self._data:
            from mimic_edge.data import synthetic

            self._data[preset] = synthetic(preset, n=(CALIB_SAMPLES, VALID_SAMPLES, 1), seed=0)
        return self._data[preset]

    def calibration(self, preset: str = "mosi") -> dict[str, np.ndarray]:
        return {m: self.data(preset)["train"][m] for m in MODALITIES}

    def converted(self, name: str, precision: str, preset: str = "mosi"):
        """The `precision` graph of (name, preset), converted once."""
        from mimic_edge.export.precision import convert
        from mimic_edge.export.precisions import PRECISIONS

        key = (name, precision, preset)
        if key not in self._converted:
            self._converted[key] = convert(self.fp32(name, preset), PRECISIONS[precision], self.calibration(preset))
        return self._converted[key]


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """CI runs on 2 shared cores: with other jobs busy, PyTorch's LSTMs ran 5× faster on one
    intra-op thread than on two (spinning OpenMP threads). Results do not depend on it."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def exports() -> ExportCache:
    return ExportCache()
