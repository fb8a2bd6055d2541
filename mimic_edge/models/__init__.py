"""The reference models: MIMIC (docs/design.md §3) and the MISA baseline (docs/design.md §4)."""
from __future__ import annotations

from torch import nn

from mimic_edge.config import DEFAULT_PRESET, MimicConfig, MisaConfig, ModelConfig, make_config
from mimic_edge.models.mimic import MIMIC
from mimic_edge.models.misa import MISA

MODEL_CLASSES = {MimicConfig: MIMIC, MisaConfig: MISA}


def model_from_config(config: ModelConfig) -> nn.Module:
    return MODEL_CLASSES[type(config)](config)


def build_model(name: str, preset: str = DEFAULT_PRESET, **overrides) -> nn.Module:
    """A freshly initialised `name` ("mimic" | "misa") for `preset`, config fields overridden."""
    return model_from_config(make_config(name, preset, **overrides))


__all__ = ["MIMIC", "MISA", "build_model", "model_from_config"]
