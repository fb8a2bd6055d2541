"""Evaluation as in the paper: MMSA metrics (§4.2), modality removal (Table 1) and the cosine
similarity between modality-individual representations (Table 2), for MIMIC and MISA alike.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
from torch import nn

from mimic_edge.config import MODALITIES, model_name
from mimic_edge.data import batches, check_split, num_samples
from mimic_edge.errors import ConfigError
from mimic_edge.metrics import METRIC_KEYS, mosi_metrics

EVAL_BATCH = 64  # fastest on the 2-core CPU: 686 samples in 0.09 s (MIMIC) / 0.80 s (MISA) vs 0.12 / 1.0 s at 256
INDIVIDUAL_KEY = {"mimic": "individual", "misa": "private"}  # MIMIC's i_m, MISA's private vectors
PAIRS = (("audio", "text"), ("audio", "vision"), ("text", "vision"))  # paper Table 2's columns
FULL = "all modalities"


def drop_inputs(batch: dict, drop: Iterable[str]) -> dict:
    """Paper Table 1: the dropped modalities' inputs replaced by zeros, for any model."""
    drop = set(drop)
    unknown = drop - set(MODALITIES)
    if unknown:
        raise ConfigError(f"unknown modality {sorted(unknown)} to drop: expected some of {list(MODALITIES)}")
    return {k: torch.zeros_like(v) if k in drop else v for k, v in batch.items()}


def _model_batches(model: nn.Module, split: dict, batch_size: int, drop: Iterable[str]):
    check_split(split, model.config.dims, "evaluation")
    for batch in batches(split, batch_size):
        yield drop_inputs(batch, drop)


@torch.no_grad()
def predict(model: nn.Module, split: dict, batch_size: int = EVAL_BATCH, drop: Iterable[str] = ()) -> np.ndarray:
    """Model scores (N,) on a split, in eval mode; `drop` zeroes those modalities' inputs."""
    was_training = model.training
    model.eval()
    scores = [model(b["text"], b["audio"], b["vision"], b["lengths"])[:, 0]
              for b in _model_batches(model, split, batch_size, drop)]
    model.train(was_training)
    return torch.cat(scores).numpy()


def evaluate(model: nn.Module, split: dict, drop: Iterable[str] = (), batch_size: int = EVAL_BATCH) -> dict[str, float]:
    return mosi_metrics(predict(model, split, batch_size, drop), split["regression_labels"])


def modality_rows(model: nn.Module, split: dict, drops: Iterable[str] = (), batch_size: int = EVAL_BATCH) -> list[dict]:
    """[{"setting": "all modalities", **metrics}, {"setting": "w/o text", ...}, ...]."""
    rows = [{"setting": FULL, **evaluate(model, split, (), batch_size)}]
    rows += [{"setting": f"w/o {m}", **evaluate(model, split, (m,), batch_size)} for m in drops]
    return rows


def mean_baseline_row(train_labels: np.ndarray, split: dict) -> dict:
    """The predict-the-training-mean baseline on `split`: what any model has to beat."""
    pred = np.full(num_samples(split), float(np.mean(train_labels)))
    return {"setting": "predict the train mean", **mosi_metrics(pred, split["regression_labels"])}


@torch.no_grad()
def similarity(model: nn.Module, split: dict, batch_size: int = EVAL_BATCH) -> dict[str, float]:
    """Paper Table 2: mean cosine similarity between modality-individual representations,
    per modality pair ("audio-text", ...): MIMIC's i_m, MISA's private vectors."""
    key = INDIVIDUAL_KEY[model_name(model.config)]
    index = {m: j for j, m in enumerate(MODALITIES)}  # representations are stacked in MODALITIES order
    was_training = model.training
    model.eval()
    totals = dict.fromkeys(PAIRS, 0.0)
    for b in _model_batches(model, split, batch_size, ()):
        reps = model.representations(b["text"], b["audio"], b["vision"], b["lengths"])[key]  # (B, 3, D)
        for m, n in PAIRS:
            totals[(m, n)] += torch.cosine_similarity(reps[:, index[m]], reps[:, index[n]], dim=-1).sum().item()
    model.train(was_training)
    return {f"{m}-{n}": total / num_samples(split) for (m, n), total in totals.items()}


def json_safe(obj):
    """NaN/Inf → null (strict JSON), recursively; paths → str."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _cell(value: float, scale: float = 1.0, digits: int = 4) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value * scale:.{digits}f}"


def metrics_markdown(rows: list[dict]) -> str:
    lines = ["| setting | " + " | ".join(METRIC_KEYS) + " |", "|---|" + "---:|" * len(METRIC_KEYS)]
    lines += ["| " + row["setting"] + " | " + " | ".join(_cell(row[k]) for k in METRIC_KEYS) + " |" for row in rows]
    return "\n".join(lines)


def similarity_markdown(model: str, sims: dict[str, float]) -> str:
    """One row like paper Table 2, in percent (cosine × 100)."""
    header = "| model | " + " | ".join(sims) + " |"
    return "\n".join([header, "|---|" + "---:|" * len(sims),
                      f"| {model} | " + " | ".join(_cell(v, 100, 1) for v in sims.values()) + " |"])
