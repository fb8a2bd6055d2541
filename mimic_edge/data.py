"""Datasets in MMSA's layout (DESIGN §8): loaders for `.pkl` / `.npz` files and a synthetic set.

A dataset is a dict of splits {"train", "valid", "test"}; each split is a dict of numpy arrays:

    text (N, Lt, dt) float32   audio (N, La, da) float32   vision (N, Lv, dv) float32
    regression_labels (N,) float32 in [-3, 3]              id (N,) str
    audio_lengths, vision_lengths (N,) int64               optional: valid steps per sample

The numpy parts are torch-free (the runtime uses them); `batches` imports torch when called.
"""
from __future__ import annotations

import numpy as np

from mimic_edge.config import MODALITIES, get_preset
from mimic_edge.errors import ConfigError

SPLITS = ("train", "valid", "test")
MOSI_SIZES = (1284, 229, 686)  # CMU-MOSI's standard train / valid / test split
LENGTH_KEYS = {"audio": "audio_lengths", "vision": "vision_lengths"}

# Synthetic generator constants.
N_NUISANCE = 2  # label-free factors per modality, as strong as the useful one
SIGNAL = 1.0  # amplitude of each factor on the steps that carry it (noise std is 1)
LABEL_GAIN = 0.9  # y = 3 tanh(LABEL_GAIN · z_t (z_a + z_v) / √2) before annotator noise
LABEL_NOISE = 0.2  # std of the annotator noise added to y
LABEL_STEP = 0.2  # labels are multiples of 0.2, like MOSI's means of 5 annotators' scores


def synthetic(preset: str = "mosi", n: int | tuple[int, int, int] = MOSI_SIZES, seed: int = 0,
              seq_len: int | None = None) -> dict[str, dict[str, np.ndarray]]:
    """A deterministic synthetic dataset with the layout and feature dims of real `preset` data.

    `n`: samples per split (train, valid, test), or a total split in MOSI's proportions.
    Each modality m carries a latent z_m ~ N(0, 1) along a fixed random direction, on a random
    window of 50-100 % of the steps, beside label-free nuisance factors and unit noise. The label
    is 3·tanh(0.9 · z_t (z_a + z_v) / √2) + noise, rounded to 0.2, clipped to [-3, 3]: text
    polarity confirmed or flipped by voice and face. Given any single modality the expected
    label is 0 (the others are symmetric), and without text it is 0 too, so no single modality
    suffices and text matters most, as on MOSI.
    """
    p = get_preset(preset)
    sizes = _split_sizes(n)
    length = seq_len or p.seq_len
    dims = {"text": p.text_dim, "audio": p.audio_dim, "vision": p.vision_dim}
    rng = np.random.default_rng(seed)
    basis = {m: _orthonormal(rng, dims[m], 1 + N_NUISANCE) for m in MODALITIES}  # (d, k) shared by splits
    return {split: _synthetic_split(rng, split, size, length, basis) for split, size in zip(SPLITS, sizes)}


def _split_sizes(n: int | tuple[int, int, int]) -> tuple[int, int, int]:
    if isinstance(n, (int, np.integer)):
        total = sum(MOSI_SIZES)
        train, valid = round(n * MOSI_SIZES[0] / total), round(n * MOSI_SIZES[1] / total)
        sizes = (train, valid, int(n) - train - valid)
    else:
        sizes = tuple(int(s) for s in n)
    if len(sizes) != 3 or min(sizes) < 1:
        raise ConfigError(f"synthetic sizes: expected at least 1 sample in each of train, valid, test, found {sizes}")
    return sizes


def _orthonormal(rng: np.random.Generator, dim: int, k: int) -> np.ndarray:
    """(dim, min(k, dim)) orthonormal columns: the directions the latent factors are written along."""
    q, _ = np.linalg.qr(rng.standard_normal((dim, min(k, dim))))
    return q


def _synthetic_split(rng: np.random.Generator, split: str, size: int, length: int,
                     basis: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    z = rng.standard_normal((size, len(MODALITIES)))  # (N, 3) latent per modality, MODALITIES order
    out = {}
    for j, m in enumerate(MODALITIES):
        directions = basis[m]  # (d, k); column 0 carries z_m, the rest nuisance
        factors = rng.standard_normal((size, directions.shape[1]))  # (N, k)
        factors[:, 0] = z[:, j]
        out[m] = _sequences(rng, factors, directions, length)
    t, a, v = z[:, 0], z[:, 1], z[:, 2]
    y = 3 * np.tanh(LABEL_GAIN * t * (a + v) / np.sqrt(2)) + LABEL_NOISE * rng.standard_normal(size)
    y = np.clip(np.round(y / LABEL_STEP) * LABEL_STEP, -3, 3)
    out["regression_labels"] = y.astype(np.float32)
    out["id"] = np.array([f"synthetic_{split}_{i:05d}" for i in range(size)])
    return out


def _sequences(rng: np.random.Generator, factors: np.ndarray, directions: np.ndarray, length: int) -> np.ndarray:
    """(N, L, d) float32: the factors on a random window of steps, plus unit Gaussian noise."""
    size, dim = factors.shape[0], directions.shape[0]
    span = rng.integers((length + 1) // 2, length + 1, size)  # window of 50-100 % of the steps
    start = rng.integers(0, length - span + 1)
    steps = np.arange(length)[None, :]
    on = ((steps >= start[:, None]) & (steps < (start + span)[:, None])).astype(np.float32)  # (N, L)
    signal = SIGNAL * factors @ directions.T  # (N, d)
    x = rng.standard_normal((size, length, dim), dtype=np.float32)
    x += on[:, :, None] * signal[:, None, :].astype(np.float32)
    return x


def num_samples(split: dict[str, np.ndarray]) -> int:
    return len(split["regression_labels"])
