"""Presets (docs/design.md §2) and the model config dataclasses (docs/design.md §3, §4).

A config is all a model needs to be rebuilt: checkpoints store it as JSON next to the weights.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass

from mimic_edge.errors import ConfigError

MODALITIES = ("text", "audio", "vision")  # input order everywhere: CLI, ONNX, runtime
OUTPUT_NAME = "score"  # the one output of every artifact: ONNX, TensorRT engine, runtime
# Per-sample valid lengths (B,) int64, inputs of artifacts exported with --lengths: a padded batch is
# scored as each sample alone
LENGTHS_INPUTS = {m: f"{m}_lengths" for m in MODALITIES}
EXECUTION_FIELDS = ("fusion_head", "encoder")  # how MIMIC runs (PyTorch or Triton), not what it computes


@dataclass(frozen=True)
class Preset:
    text_dim: int
    audio_dim: int
    vision_dim: int
    seq_len: int
    source: str

    @property
    def dims(self) -> dict[str, int]:
        """Feature dim per modality, in MODALITIES order."""
        return {"text": self.text_dim, "audio": self.audio_dim, "vision": self.vision_dim}


PRESETS = {
    "mosi": Preset(300, 74, 47, 50, "CMU-MultimodalSDK, word-aligned, GloVe text"),
    "mosi-bert": Preset(768, 74, 47, 50, "CMU-MultimodalSDK, word-aligned, BERT text"),
    "mosei": Preset(300, 74, 35, 50, "CMU-MultimodalSDK, GloVe text"),
    "mosei-bert": Preset(768, 74, 35, 50, "CMU-MultimodalSDK, BERT text"),
    "mmsa-mosi": Preset(768, 5, 20, 50, "MMSA aligned_50.pkl"),
    "mmsa-mosei": Preset(768, 74, 35, 50, "MMSA aligned_50.pkl"),
}
DEFAULT_PRESET = "mosi"


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}: expected one of {', '.join(PRESETS)}")
    return PRESETS[name]


@dataclass(frozen=True)
class ModelConfig:
    """Fields shared by both models: the feature dims and the output size."""

    preset: str = DEFAULT_PRESET
    text_dim: int = 300
    audio_dim: int = 74
    vision_dim: int = 47
    out_dim: int = 1  # 1: regression (MSE); C > 1: C classes (cross-entropy)

    @property
    def dims(self) -> dict[str, int]:
        return {"text": self.text_dim, "audio": self.audio_dim, "vision": self.vision_dim}

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def digest(self) -> str:
        """Stable hash of what the model computes: engines and artifacts record it to detect
        mismatches. Fields that only choose how it runs (EXECUTION_FIELDS) are left out, so that
        adding such a field or switching a kernel on does not orphan every artifact."""
        fields = {k: v for k, v in self.to_dict().items() if k not in EXECUTION_FIELDS}
        canonical = json.dumps({"model": model_name(self), **fields}, sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class MimicConfig(ModelConfig):
    lstm_hidden: int = 32  # per direction: D = 64 (paper §3.1)
    d_model: int = 64  # D, the unified embedding dimension (paper §3.1)
    bottleneck: int = 16  # ĩ_m, h̃_m ∈ R^16 (paper Eqs. 5-6)
    fusion_dim: int = 64  # width of M and I (docs/design.md §3.5)
    head_hidden: int = 64  # 3-layer MLP 192→64→64→out (docs/design.md §3.7)
    dropout: float = 0.1  # the paper is silent; a light dropout for a 0.3 M model
    contrast_weight: float = 0.1  # λ, Eq. 15
    temperature: float = 0.1  # τ, Eq. 12
    use_shared: bool = True  # ablation switches, paper §4.3: False zeroes S in F0
    use_individual: bool = True  # False zeroes I
    use_interaction: bool = True  # False zeroes M
    drop_modalities: tuple[str, ...] = ()  # paper Table 1: these inputs are replaced by zeros
    fusion_head: str = "torch"  # "torch" | "triton" (the fused kernel, mimic_edge.kernels)
    encoder: str = "torch"  # "torch" | "triton" (the three BiLSTMs in one kernel, mimic_edge.kernels)


@dataclass(frozen=True)
class MisaConfig(ModelConfig):
    hidden_size: int = 128  # official config.hidden_size
    dropout: float = 0.5  # official config.dropout
    n_heads: int = 2  # official nn.TransformerEncoderLayer(d_model=128, nhead=2)
    ff_dim: int = 2048  # PyTorch's default dim_feedforward, as in the official code
    text_lstm_hidden: int = 300  # official GloVe path: hidden = embedding size 300
    diff_weight: float = 0.3  # official defaults
    sim_weight: float = 1.0
    recon_weight: float = 1.0
    cmd_moments: int = 5

    @property
    def bert_text(self) -> bool:
        """BERT-feature presets take the official BERT path: masked mean of the text features."""
        return self.text_dim == 768


CONFIGS = {"mimic": MimicConfig, "misa": MisaConfig}
MODEL_NAMES = tuple(CONFIGS)  # every command, the bench and the export read the names from here
DEFAULT_MODEL = MODEL_NAMES[0]


def model_name(config: ModelConfig) -> str:
    for name, cls in CONFIGS.items():
        if type(config) is cls:
            return name
    raise ConfigError(f"unknown config type {type(config).__name__}")


def make_config(name: str, preset: str = DEFAULT_PRESET, **overrides) -> ModelConfig:
    """The config of model `name` on `preset`, with field overrides; unknown names are errors."""
    if name not in CONFIGS:
        raise ConfigError(f"unknown model {name!r}: expected one of {', '.join(CONFIGS)}")
    cls = CONFIGS[name]
    p = get_preset(preset)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ConfigError(f"unknown {name} config field(s) {unknown}: expected some of {sorted(fields)}")
    values = dict(preset=preset, text_dim=p.text_dim, audio_dim=p.audio_dim, vision_dim=p.vision_dim)
    values.update(overrides)
    if "drop_modalities" in values:
        values["drop_modalities"] = tuple(values["drop_modalities"])
    config = cls(**values)
    _check(config)
    return config


def config_from_dict(name: str, values: dict) -> ModelConfig:
    """Inverse of `to_dict` (checkpoints); every field is checked like `make_config`."""
    cls = CONFIGS.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ConfigError(f"unknown model {name!r}: expected one of {', '.join(CONFIGS)}")
    if not isinstance(values, dict):
        raise ConfigError(f"expected the {name} config as an object of fields, found {type(values).__name__}")
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise ConfigError(f"unknown {name} config field(s) {unknown}")
    values = dict(values)
    if isinstance(values.get("drop_modalities"), list):  # JSON has lists; anything else is left to _check
        values["drop_modalities"] = tuple(values["drop_modalities"])
    config = cls(**values)
    _check(config)
    return config


# What each field annotation admits. A config may come from a hand-edited checkpoint JSON, so
# types are checked, not trusted: bool is an int subclass (`"lstm_hidden": true` must fail) and
# "32" is no integer. Every int field is a size or a count, every float a rate, weight or
# temperature: none may be negative.
_FIELD_TYPES = {
    "int": ("a positive integer", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1),
    "float": ("a finite number >= 0",
              lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0),
    "bool": ("true or false", lambda v: isinstance(v, bool)),
    "str": ("a string", lambda v: isinstance(v, str)),
    "tuple[str, ...]": ("a list of strings", lambda v: isinstance(v, tuple) and all(isinstance(x, str) for x in v)),
}


def _check(config: ModelConfig) -> None:
    for f in dataclasses.fields(config):
        what, admits = _FIELD_TYPES[f.type]  # a KeyError here: a new field type needs an entry above
        value = getattr(config, f.name)
        if not admits(value):
            raise ConfigError(f"{f.name}: expected {what}, found {value!r} ({type(value).__name__})")
    get_preset(config.preset)
    if config.dropout >= 1:  # both models have one
        raise ConfigError(f"dropout: expected a probability in [0, 1), found {config.dropout!r}")
    if isinstance(config, MisaConfig) and config.hidden_size % config.n_heads:
        raise ConfigError(f"hidden_size ({config.hidden_size}) must be a multiple of n_heads ({config.n_heads})")
    if isinstance(config, MimicConfig):
        if config.temperature <= 0:  # the contrastive logits are divided by it
            raise ConfigError(f"temperature: expected a number > 0, found {config.temperature!r}")
        bad = [m for m in config.drop_modalities if m not in MODALITIES]
        if bad:
            raise ConfigError(f"drop_modalities: unknown modality {bad}, expected some of {MODALITIES}")
        if config.fusion_head not in ("torch", "triton"):
            raise ConfigError(f"fusion_head must be 'torch' or 'triton', got {config.fusion_head!r}")
        if config.encoder not in ("torch", "triton"):
            raise ConfigError(f"encoder must be 'torch' or 'triton', got {config.encoder!r}")
        if config.d_model != 2 * config.lstm_hidden:
            raise ConfigError(f"d_model ({config.d_model}) must be 2 × lstm_hidden ({config.lstm_hidden})")
        if config.bottleneck % 2:
            raise ConfigError(f"bottleneck must be even (2×2×2 max-pool), got {config.bottleneck}")
