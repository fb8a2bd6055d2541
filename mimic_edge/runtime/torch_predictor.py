"""Run a checkpoint (`.safetensors` + `.json`) with PyTorch: the reference the artifacts are judged by."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from mimic_edge.checkpoint import load_checkpoint
from mimic_edge.config import MODALITIES
from mimic_edge.input_checks import check_inputs


class TorchPredictor:
    """`predict(text, audio, vision) -> (B, out)` on the PyTorch model, in inference mode.

    Thread-safe: the model is only read (eval mode, no autograd state).
    """

    backend = "torch"

    def __init__(self, path: str | Path, device: str | None = None):
        self.path = Path(path)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = load_checkpoint(self.path).to(self.device)
        self.dims = self.model.config.dims
        self.out_dim = self.model.config.out_dim

    def predict(self, text: Any, audio: Any, vision: Any) -> np.ndarray:
        inputs = dict(zip(MODALITIES, (text, audio, vision)))
        check_inputs(inputs, self.dims)
        tensors = [torch.as_tensor(inputs[m]).to(self.device, torch.float32) for m in MODALITIES]
        with torch.inference_mode():
            return self.model(*tensors).float().cpu().numpy()  # (B, out)

    def __repr__(self) -> str:
        return f"TorchPredictor({str(self.path)!r}, device={str(self.device)!r})"
