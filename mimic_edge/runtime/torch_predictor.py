"""Run a checkpoint (`.safetensors` + `.json`) with PyTorch: the reference the artifacts are judged by."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from mimic_edge.checkpoint import load_checkpoint
from mimic_edge.config import MODALITIES
from mimic_edge.input_checks import check_inputs
from mimic_edge.runtime.inputs import check_scores, lengths_feeds


class TorchPredictor:
    """`predict(text, audio, vision) -> (B, out)` on the PyTorch model, in inference mode.

    Thread-safe: the model is only read (eval mode, no autograd state).
    """

    backend = "torch"
    takes_lengths = True  # per-sample lengths of a padded batch (predict's `lengths`)

    def __init__(self, path: str | Path, device: str | None = None):
        self.path = Path(path)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = load_checkpoint(self.path).to(self.device)
        self.dims = self.model.config.dims
        self.out_dim = self.model.config.out_dim

    @classmethod
    def from_model(cls, model: torch.nn.Module, device: str | torch.device | None = None, *, config=None,
                   name: str = "<in-memory model>") -> TorchPredictor:
        """A predictor for a model already in memory, e.g. a `torch.compile`d one (the bench
        times every PyTorch backend through this). The model is moved to `device` and put in eval
        mode. `config`: the model's config, for its dims (default: `model.config`; a compiled
        module may carry none). `name` stands for the path in `repr`."""
        predictor = cls.__new__(cls)
        predictor.path = Path(name)
        predictor.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        predictor.model = model.to(predictor.device).eval()
        config = config if config is not None else model.config
        predictor.dims, predictor.out_dim = config.dims, config.out_dim
        return predictor

    def predict(self, text: Any, audio: Any, vision: Any, lengths: Mapping[str, Any] | None = None) -> np.ndarray:
        """Scores (B, out); `lengths`: per modality (B,) valid lengths of a padded batch (the model
        masks the padding: each sample is scored as alone)."""
        inputs = dict(zip(MODALITIES, (text, audio, vision)))
        check_inputs(inputs, self.dims, lengths=lengths)
        tensors = [_as_tensor(inputs[m]).to(self.device, torch.float32) for m in MODALITIES]
        valid = {m: torch.from_numpy(n).to(self.device) for m, n in lengths_feeds(lengths, inputs).items()}
        with torch.inference_mode():
            scores = self.model(*tensors, valid if lengths else None).float().cpu().numpy()  # (B, out)
        return check_scores(scores, self.path)

    def __repr__(self) -> str:
        return f"TorchPredictor({str(self.path)!r}, device={str(self.device)!r})"


def _as_tensor(x: Any) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        # torch cannot share numpy memory with negative strides (x[:, ::-1]) and warns on read-only
        # arrays (np.broadcast_to, memory maps): a float32 C-order copy works for every array.
        return torch.from_numpy(np.array(x, dtype=np.float32, order="C"))
    return x
