"""Datasets in MMSA's layout (docs/design.md §8): loaders for `.pkl` / `.npz` files and a synthetic set.

A dataset is a dict of splits {"train", "valid", "test"}; each split is a dict of numpy arrays:

    text (N, Lt, dt) float32   audio (N, La, da) float32   vision (N, Lv, dv) float32
    regression_labels (N,) float32 in [-3, 3]              id (N,) str
    audio_lengths, vision_lengths (N,) int64               optional: valid steps per sample

The numpy parts are torch-free (the runtime uses them); `batches` imports torch when called.
"""
from __future__ import annotations

import functools
import os
import pickle
import warnings
import zipfile
from pathlib import Path
from typing import Iterator

import numpy as np

from mimic_edge.config import MODALITIES, PRESETS, get_preset
from mimic_edge.errors import ConfigError, DataError, InputError
from mimic_edge.io import atomic_write, check_array_sizes
from mimic_edge.input_checks import check_inputs

SPLITS = ("train", "valid", "test")
MOSI_SIZES = (1284, 229, 686)  # CMU-MOSI's standard train / valid / test split
LENGTH_KEYS = {"audio": "audio_lengths", "vision": "vision_lengths"}
# Every preset is MOSI or MOSEI: a label is a sentiment score, the mean of annotators' ratings on
# a -3..3 scale. Labels beyond it mean another dataset's scale, and the metrics (which clip to
# ±3 for Mult_acc_7) and the loss would quietly mean something else.
LABEL_RANGE = (-3.0, 3.0)


class DataWarning(UserWarning):
    """Data that loads and runs but is probably not what was meant (labels off the MOSI scale)."""


# Synthetic generator, tuned by training both models at MOSI's sizes on the 2-core CPU: with these
# values both learn in a few minutes (MIMIC close to the label noise, MISA to about the best
# text-only predictor). With a pure interaction label, 3 tanh(0.9 z_t (z_a + z_v) / √2), MIMIC
# learned it but MISA memorised the training set and never beat the mean on validation, with
# noise std 1 as with 0.3.
N_NUISANCE = 2  # label-free factors per modality, as strong as the useful one
NOISE = 0.5  # std of the per-step, per-feature Gaussian noise; the factors have std 1
TEXT_GAIN = 0.8  # y = 3 tanh(TEXT_GAIN · z_t + CROSS_GAIN · z_t (z_a + z_v) / √2) + annotator noise
CROSS_GAIN = 0.8
LABEL_NOISE = 0.2  # std of the annotator noise added to y
LABEL_STEP = 0.2  # labels are multiples of 0.2, like MOSI's means of 5 annotators' scores


def synthetic(preset: str = "mosi", n: int | tuple[int, int, int] = MOSI_SIZES, seed: int = 0,
              seq_len: int | None = None) -> dict[str, dict[str, np.ndarray]]:
    """A deterministic synthetic dataset with the layout and feature dims of real `preset` data.

    `n`: samples per split (train, valid, test), or a total split in MOSI's proportions.
    Each modality m carries a latent z_m ~ N(0, 1) along a fixed random direction, beside
    label-free nuisance factors, at every step, plus Gaussian noise. The label is
    3·tanh(0.8·z_t + 0.8·z_t (z_a + z_v)/√2) + noise, rounded to 0.2, clipped to [-3, 3]: text
    polarity, strengthened or weakened by voice and face. Audio, vision, or both together say
    nothing (given them, the label is symmetric about 0, as z_t is), text alone leaves about
    half of the label's variance unexplained, and all three are needed for the rest: text
    matters most, as on MOSI.
    """
    p = get_preset(preset)
    sizes = _split_sizes(n)
    length = seq_len or p.seq_len
    dims = p.dims
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
    y = 3 * np.tanh(TEXT_GAIN * t + CROSS_GAIN * t * (a + v) / np.sqrt(2)) + LABEL_NOISE * rng.standard_normal(size)
    y = np.clip(np.round(y / LABEL_STEP) * LABEL_STEP, -3, 3)
    out["regression_labels"] = y.astype(np.float32)
    out["id"] = np.array([f"synthetic_{split}_{i:05d}" for i in range(size)])
    return out


def _sequences(rng: np.random.Generator, factors: np.ndarray, directions: np.ndarray, length: int) -> np.ndarray:
    """(N, L, d) float32: the factors along their directions at every step, plus Gaussian noise."""
    size, dim = factors.shape[0], directions.shape[0]
    signal = (factors @ directions.T).astype(np.float32)  # (N, d)
    x = NOISE * rng.standard_normal((size, length, dim), dtype=np.float32)  # (N, L, d)
    return x + signal[:, None, :]


def num_samples(split: dict[str, np.ndarray]) -> int:
    return len(split["regression_labels"])


def load_dataset(source: str | os.PathLike, preset: str = "mosi", n: int | tuple[int, int, int] = MOSI_SIZES,
                 seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """"synthetic" → `synthetic(preset, n, seed)`; anything else is a file for `load_mmsa`."""
    if str(source) == "synthetic":
        return synthetic(preset, n, seed)
    return load_mmsa(source, preset)


# ---------------------------------------------------------------------------------------------
# Files: MMSA .pkl (restricted unpickler) and .npz with keys "<split>/<key>"

REQUIRED_KEYS = ("text", "audio", "vision", "regression_labels")


def load_mmsa(path: str | os.PathLike, preset: str | None = None) -> dict[str, dict[str, np.ndarray]]:
    """Load an MMSA-layout dataset from `.pkl` (MMSA's files) or `.npz` (see `save_npz`).

    Features are cast to float32 and audio's -inf (COVAREP) set to 0, as MMSA does. Splits that
    are absent are left out (a file may hold only `test`). With `preset`, the feature dims are
    checked against it. Labels may be (N,) or (N, 1) (MMSA's); any other shape is refused, and
    labels outside [-3, 3] get a DataWarning. The pickle loader admits only numpy arrays and
    plain containers: nothing in the file runs.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"dataset not found: expected a .pkl or .npz file at {path}")
    if path.suffix in (".pkl", ".pickle"):
        raw = _load_pickle(path)
    elif path.suffix == ".npz":
        raw = _load_npz(path)
    else:
        raise DataError(f"{path}: expected a .pkl (MMSA) or .npz dataset, found suffix {path.suffix!r}")
    if not isinstance(raw, dict) or not any(s in raw for s in SPLITS):
        found = sorted(map(str, raw)) if isinstance(raw, dict) else type(raw).__name__
        raise DataError(f"{path}: expected a dict with splits {list(SPLITS)}, found {found}")
    dataset = {s: _clean_split(raw[s], f"{path}[{s}]") for s in SPLITS if s in raw}
    _check_dims(dataset, preset, path)
    return dataset


def save_npz(path: str | os.PathLike, dataset: dict[str, dict[str, np.ndarray]]) -> Path:
    """Write a dataset as `.npz` with keys "<split>/<key>" (no pickle), atomically."""
    arrays = {f"{s}/{k}": np.asarray(v) for s, split in dataset.items() for k, v in split.items()}

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:  # a file object: np.savez would append ".npz" to a name
            np.savez(f, **arrays)

    return atomic_write(path, write)


@functools.cache
def _allowed_globals() -> dict[tuple[str, str], object]:
    """What a pickle of numpy arrays in plain containers needs, under numpy 1.x and 2.x names."""
    import codecs
    from collections import OrderedDict

    core = getattr(np, "_core", None) or np.core  # numpy 2 renamed numpy.core to numpy._core
    allowed = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
               ("collections", "OrderedDict"): OrderedDict,
               ("_codecs", "encode"): codecs.encode}  # bytes in protocol-2 pickles
    for package in ("numpy.core", "numpy._core"):
        allowed[(f"{package}.multiarray", "_reconstruct")] = core.multiarray._reconstruct
        allowed[(f"{package}.multiarray", "scalar")] = core.multiarray.scalar
        allowed[(f"{package}.numeric", "_frombuffer")] = core.numeric._frombuffer  # protocol 5
    return allowed


class RefusedGlobal(pickle.UnpicklingError):
    pass


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only `_allowed_globals`; any other class or function in the file is refused
    before it is looked up, so nothing it names can run."""

    def find_class(self, module: str, name: str):
        found = _allowed_globals().get((module, name))
        if found is None:
            raise RefusedGlobal(f"{module}.{name}")
        return found

    def persistent_load(self, pid):
        raise RefusedGlobal(f"persistent id {pid!r}")


def _load_pickle(path: Path):
    try:
        with open(path, "rb") as f:
            return _RestrictedUnpickler(f).load()
    except RefusedGlobal as e:
        raise DataError(f"{path}: refused to load: the pickle needs {e}, but only numpy arrays and plain "
                        f"containers are admitted (nothing in the file was run)") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as e:
        raise DataError(f"{path}: expected an MMSA pickle, found a corrupt or foreign file ({e})") from None


def _load_npz(path: Path) -> dict:
    if not zipfile.is_zipfile(path):  # np.load would try anything else as a pickle
        raise DataError(f"{path}: expected an .npz archive, found a corrupt or foreign file (not a zip archive)")
    check_array_sizes(path, DataError)
    try:
        with np.load(path, allow_pickle=False) as archive:
            raw: dict[str, dict] = {}
            for key in archive.files:
                split, _, name = key.partition("/")
                raw.setdefault(split, {})[name] = archive[key]
    except ValueError as e:  # object arrays need pickle: refused
        raise DataError(f"{path}: expected plain numeric or string arrays, found {e}") from None
    except (OSError, zipfile.BadZipFile, EOFError) as e:
        raise DataError(f"{path}: expected an .npz archive, found a corrupt or foreign file ({e})") from None
    return raw


def _numeric(value, where: str, what: str) -> np.ndarray:
    """`value` as float32, when it holds numbers (bool, integers, floats; any byte order)."""
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise DataError(f"{where}: expected numeric {what}, found dtype {array.dtype}")
    return array.astype(np.float32)


def _clean_split(raw, where: str) -> dict[str, np.ndarray]:
    """MMSA's preprocessing and our checks: float32 features, -inf audio → 0, one N for all."""
    if not isinstance(raw, dict):
        raise DataError(f"{where}: expected a dict of arrays, found {type(raw).__name__}")
    missing = [k for k in REQUIRED_KEYS if k not in raw]
    if missing:
        raise DataError(f"{where}: missing key(s) {missing}: expected {list(REQUIRED_KEYS)} "
                        f"(+ optional id, audio_lengths, vision_lengths), found {sorted(map(str, raw))}")
    split = {}
    for m in MODALITIES:
        x = _numeric(raw[m], f"{where}: {m}", "features")
        if x.ndim != 3 or 0 in x.shape:
            raise DataError(f"{where}: {m}: expected a non-empty (N, seq_len, dim) array, found shape {x.shape}")
        if m == "audio":
            x = np.where(x == -np.inf, np.float32(0), x)  # COVAREP's log of 0; MMSA does the same
        if not np.isfinite(x).all():
            raise DataError(f"{where}: {m}: found NaN or Inf values: expected finite features")
        split[m] = x
    size = len(split["text"])
    labels = _numeric(raw["regression_labels"], f"{where}: regression_labels", "scores")
    _check_labels(labels, size, where)
    split["regression_labels"] = labels.reshape(-1)  # MMSA stores (N, 1)
    outside = (labels < LABEL_RANGE[0]) | (labels > LABEL_RANGE[1])
    if outside.any():  # a warning, not an error: the file may be right and the presets' scale not its own
        warnings.warn(f"{where}: {int(outside.sum())} of {size} regression_labels lie outside "
                      f"[{LABEL_RANGE[0]:g}, {LABEL_RANGE[1]:g}] (found [{labels.min():g}, {labels.max():g}]): "
                      f"expected MOSI/MOSEI sentiment scores; are the labels on another scale?", DataWarning)
    split["id"] = np.asarray(raw["id"]).astype(str) if "id" in raw else np.array([f"{i}" for i in range(size)])
    for m, key in LENGTH_KEYS.items():
        if key in raw:
            n = np.asarray(raw[key]).astype(np.int64).reshape(-1)
            seq_len = split[m].shape[1]
            if n.size and (n.min() < 1 or n.max() > seq_len):
                raise DataError(f"{where}: {key}: expected values in [1, {seq_len}], found [{n.min()}, {n.max()}]")
            split[key] = n
    sizes = {k: len(v) for k, v in split.items()}
    if len(set(sizes.values())) != 1:
        raise DataError(f"{where}: expected the same number of samples in every array, found {sizes}")
    return split


def feature_dims(dataset: dict[str, dict[str, np.ndarray]]) -> dict[str, int]:
    first = next(iter(dataset.values()))
    return {m: first[m].shape[2] for m in MODALITIES}


def _check_dims(dataset: dict, preset: str | None, path: Path) -> None:
    dims = feature_dims(dataset)
    for s, split in dataset.items():
        for m in MODALITIES:
            if split[m].shape[2] != dims[m]:
                raise DataError(f"{path}: {m} feature dim differs between splits: "
                                f"{dims[m]} in {next(iter(dataset))}, {split[m].shape[2]} in {s}")
    if preset is None:
        return
    p = get_preset(preset)
    expected = p.dims
    if dims != expected:
        found = ", ".join(f"{m} {dims[m]}" for m in MODALITIES)
        want = ", ".join(f"{m} {expected[m]}" for m in MODALITIES)
        matching = [name for name, q in PRESETS.items() if q.dims == dims]
        hint = f"; preset(s) with these dims: {', '.join(matching)}" if matching else ""
        raise DataError(f"{path}: feature dims ({found}) do not match preset {preset!r} ({want}){hint}")


# ---------------------------------------------------------------------------------------------
# Torch side: batches for training and evaluation


def split_lengths(split: dict[str, np.ndarray]) -> dict[str, np.ndarray] | None:
    lengths = {m: split[key] for m, key in LENGTH_KEYS.items() if key in split}
    return lengths or None


def check_split(split: dict[str, np.ndarray], dims: dict[str, int], name: str) -> int:
    """check_inputs on a whole split (dims, rank, finiteness, lengths) and, when present, its
    labels (shape (N,) or (N, 1), finite); returns its size. Training, evaluation and export
    pass here, datasets built in memory included."""
    try:
        size = check_inputs(split, dims, split_lengths(split))
    except InputError as e:
        raise DataError(f"{name} split: {e}") from None
    if "regression_labels" in split:
        _check_labels(np.asarray(split["regression_labels"]), size, f"{name} split")
    return size


def _check_labels(labels: np.ndarray, size: int, where: str) -> None:
    """One finite score per sample: (N,) or (N, 1). Flattening (20, 2) into 40 labels for 40
    samples would train and evaluate against scores of the wrong samples, without a word."""
    if labels.shape not in ((size,), (size, 1)):
        raise DataError(f"{where}: regression_labels: expected shape ({size},) or ({size}, 1), one score per "
                        f"sample, found {labels.shape}")
    if labels.dtype.kind not in "fiu":
        raise DataError(f"{where}: regression_labels: expected numeric scores, found dtype {labels.dtype}")
    if not np.isfinite(labels).all():
        raise DataError(f"{where}: regression_labels: found NaN or Inf values: expected finite scores")


def batches(split: dict[str, np.ndarray], batch_size: int, shuffle_seed: int | None = None) -> Iterator[dict]:
    """Yield {"text", "audio", "vision", "target", "lengths"} torch batches (lengths: dict or None),
    in order, or shuffled by `shuffle_seed`."""
    import torch

    size = num_samples(split)
    order = np.arange(size) if shuffle_seed is None else np.random.default_rng(shuffle_seed).permutation(size)
    lengths = split_lengths(split)
    for start in range(0, size, batch_size):
        index = order[start:start + batch_size]
        batch = {m: torch.from_numpy(split[m][index]) for m in MODALITIES}
        batch["target"] = torch.from_numpy(split["regression_labels"][index])
        batch["lengths"] = {m: torch.from_numpy(n[index]) for m, n in lengths.items()} if lengths else None
        yield batch
