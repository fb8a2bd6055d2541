"""Checkpoints: weights in `<path>.safetensors`, config in `<path>.json`. Never pickle.

`path` may be given with or without either suffix.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from torch import nn

from mimic_edge.config import config_from_dict, model_name
from mimic_edge.errors import CheckpointError, MimicEdgeError
from mimic_edge.io import atomic_write_bytes, atomic_write_json

FORMAT_VERSION = 1


def checkpoint_paths(path: str | Path) -> tuple[Path, Path]:
    path = Path(path)
    if path.suffix in (".safetensors", ".json"):
        path = path.with_suffix("")
    return path.with_name(path.name + ".safetensors"), path.with_name(path.name + ".json")


def weights_bytes(model: nn.Module) -> bytes:
    """The `.safetensors` file `save_checkpoint` writes for `model`: the same bytes for the same
    weights, so a model in memory and its saved checkpoint have one digest (`weights_id`)."""
    from safetensors.torch import save

    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    return save(tensors, metadata={"format_version": str(FORMAT_VERSION)})


def weights_id(model: nn.Module) -> str:
    """What reports and artifacts say the weights are: the sha256 of their checkpoint file."""
    return f"sha256:{hashlib.sha256(weights_bytes(model)).hexdigest()}"


def save_checkpoint(model: nn.Module, path: str | Path, extra: dict | None = None) -> Path:
    """Write weights and config atomically; `extra` (e.g. training metrics) goes into the JSON."""
    weights, meta = checkpoint_paths(path)
    atomic_write_bytes(weights, weights_bytes(model))
    atomic_write_json(meta, {
        "format_version": FORMAT_VERSION,
        "model": model_name(model.config),
        "config": model.config.to_dict(),
        "config_digest": model.config.digest(),
        **({"extra": extra} if extra else {}),
    })
    return weights


def read_checkpoint_meta(path: str | Path) -> dict:
    _, meta_path = checkpoint_paths(path)
    if not meta_path.is_file():
        raise CheckpointError(f"checkpoint config not found: expected {meta_path}")
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{meta_path}: expected checkpoint JSON, found unreadable text ({e})") from None
    if not isinstance(meta, dict) or not {"model", "config"} <= meta.keys():
        raise CheckpointError(f"{meta_path}: expected a JSON object with 'model' and 'config' keys")
    version = meta.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:  # bool is an int: true == 1
        raise CheckpointError(f"{meta_path}: expected format_version {FORMAT_VERSION}, found {version!r}")
    return meta


def load_checkpoint(path: str | Path) -> nn.Module:
    """Rebuild the model from its JSON config and load the weights, strictly (eval mode).

    Nothing in the files is trusted: config values are checked (types, ranges, known preset),
    every tensor must be present, of the config's shape and finite; else a CheckpointError."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from mimic_edge.models import model_from_config

    weights, meta_path = checkpoint_paths(path)
    meta = read_checkpoint_meta(path)
    if not weights.is_file():
        raise CheckpointError(f"checkpoint weights not found: expected {weights}")
    try:
        config = config_from_dict(meta["model"], meta["config"])
    except MimicEdgeError as e:
        raise CheckpointError(f"{meta_path}: invalid config: {e}") from None
    try:
        state = load_file(weights)
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{weights}: expected a safetensors file, found a corrupt or foreign file ({e})") from None
    # Shapes from a model on the meta device, which allocates nothing: a config with a huge (but
    # well-typed) size fails the comparison below instead of exhausting memory. Sizes beyond
    # torch's int64 (TypeError) or whose product overflows it (a bottleneck of 10^6 gives a
    # 64 × 1.25e17 weight: RuntimeError) fail here: the config is checked, but torch cannot build it.
    try:
        with torch.device("meta"):
            expected = model_from_config(config).state_dict()
    except (RuntimeError, ValueError, TypeError, OverflowError) as e:
        raise CheckpointError(f"{meta_path}: invalid config: torch cannot build a {meta['model']} model of "
                              f"these sizes ({str(e).splitlines()[0]})") from None
    missing = sorted(expected.keys() - state.keys())
    unexpected = sorted(state.keys() - expected.keys())
    if missing or unexpected:
        raise CheckpointError(f"{weights}: weights do not match the {meta['model']} config: "
                              f"missing {missing[:5]}{'…' if len(missing) > 5 else ''}, "
                              f"unexpected {unexpected[:5]}{'…' if len(unexpected) > 5 else ''}")
    bad = [(k, tuple(state[k].shape), tuple(v.shape)) for k, v in expected.items() if state[k].shape != v.shape]
    if bad:
        k, found, want = bad[0]
        raise CheckpointError(f"{weights}: tensor {k} has shape {found}, expected {want} "
                              f"for preset {config.preset!r} ({len(bad)} mismatched)")
    # NaN/Inf weights (a diverged run, a flipped bit) would turn every score into NaN.
    not_finite = sorted(k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all())
    if not_finite:
        raise CheckpointError(f"{weights}: expected finite weights, found NaN or Inf in {len(not_finite)} "
                              f"tensor(s): {not_finite[:5]}{'…' if len(not_finite) > 5 else ''}")
    model = model_from_config(config)
    model.load_state_dict(state)
    return model.eval()
