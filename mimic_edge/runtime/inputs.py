"""Model inputs on their way into a predictor: checks, conversion, and the files that carry them.

Input files (read by `mimic-edge predict`, the Python example and the C++ examples):
- `inputs.npz` with arrays `text`, `audio`, `vision`;
- or a folder with `text.npy`, `audio.npy`, `vision.npy`: the form the C++ examples read,
  float32, C order, shape (B, L_m, d_m), one `.npy` per modality (numpy's documented format).

Torch-free: a torch tensor passed to `prepare_inputs` is converted by duck typing.
"""
from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from mimic_edge.config import LENGTHS_INPUTS, MODALITIES
from mimic_edge.errors import ArtifactError, InputError
from mimic_edge.io import atomic_write, check_array_sizes
from mimic_edge.input_checks import check_inputs


def prepare_inputs(
    text: Any,
    audio: Any,
    vision: Any,
    dims: Mapping[str, int],
    seq_range: Mapping[str, tuple[int, int]] | None = None,
    batch_range: tuple[int, int] | None = None,
    lengths: Mapping[str, Any] | None = None,
) -> dict[str, np.ndarray]:
    """Validate (docs/design.md §9) and return C-contiguous float32 numpy arrays keyed by modality.
    `lengths` (per modality, (B,) valid lengths in [1, L_m]) are checked here; see `lengths_feeds`."""
    inputs = dict(zip(MODALITIES, (text, audio, vision)))
    batch = check_inputs(inputs, dims, lengths=lengths, seq_range=seq_range)
    if batch_range is not None and not batch_range[0] <= batch <= batch_range[1]:
        raise InputError(f"batch size {batch} is outside the supported range [{batch_range[0]}, {batch_range[1]}]")
    return {m: _as_float32(x) for m, x in inputs.items()}


def refuse_lengths(lengths: Mapping[str, Any] | None, path: Path | str) -> None:
    """For artifacts without lengths inputs (TensorRT engines, .pt2 packages): one InputError."""
    if lengths is not None:
        raise InputError(f"{path}: lengths given, but this artifact has no lengths inputs: expected none (pad "
                         "nothing), or an ONNX artifact exported with --lengths")


def lengths_feeds(lengths: Mapping[str, Any] | None, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """(B,) int64 per modality, for a model that takes lengths: the checked `lengths` given, and
    every step of a sequence where none is given for its modality."""
    lengths = lengths or {}
    out = {}
    for m, x in feeds.items():
        given = lengths.get(m)
        if given is None:
            out[m] = np.full(len(x), x.shape[1], np.int64)
        else:
            out[m] = np.ascontiguousarray(given.cpu() if hasattr(given, "cpu") else given, dtype=np.int64)
    return out


def check_scores(scores: np.ndarray, path: Path | str) -> np.ndarray:
    """Return `scores`, or raise ArtifactError if any is NaN or Inf: the last guard of every predictor.

    The inputs have passed `prepare_inputs` (finite as float32), so a non-finite score is the
    artifact's fault: NaN/Inf weights, or arithmetic that overflows its precision (fp16 ends at
    65504) on these inputs. An ArtifactError, not an InputError (a ValueError): a caller that
    catches bad inputs must not take a broken model for one."""
    bad_rows = ~np.isfinite(scores).reshape(len(scores), -1).all(axis=1)  # scores: (B, out)
    if bad_rows.any():
        rows = int(bad_rows.sum())
        raise ArtifactError(f"{path}: produced NaN or Inf scores for {rows} of {len(scores)} samples whose "
                            f"inputs are finite: expected finite scores (are its weights NaN/Inf, or do "
                            f"these inputs overflow its precision?)")
    return scores


def _as_float32(x: Any) -> np.ndarray:
    if not isinstance(x, np.ndarray):  # a torch tensor (numpy has no bfloat16: go through float32)
        x = x.detach().float().cpu().numpy()
    return np.ascontiguousarray(x, dtype=np.float32)


def read_inputs(path: str | Path) -> dict[str, np.ndarray]:
    """Read `text`, `audio`, `vision` from an `.npz` file or a folder of `.npy` files (unchecked),
    and `text_lengths`, `audio_lengths`, `vision_lengths` where present (a padded batch)."""
    path = Path(path)
    if path.is_dir():
        return {name: _load_npy(path / f"{name}.npy") for name in (*MODALITIES, *LENGTHS_INPUTS.values())
                if name in MODALITIES or (path / f"{name}.npy").is_file()}
    if not path.is_file():
        raise InputError(f"input file not found: expected an .npz file or a folder with "
                         f"{', '.join(m + '.npy' for m in MODALITIES)}, found nothing at {path}")
    expected = f"expected an .npz file with arrays {list(MODALITIES)}"
    _check_magic(path, expected)
    check_array_sizes(path, InputError)
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise InputError(f"{path}: {expected}, found an unreadable file ({e})") from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise InputError(f"{path}: {expected}, found a single array of shape {loaded.shape}")
    with loaded as npz:
        missing = [m for m in MODALITIES if m not in npz.files]
        if missing:
            raise InputError(f"{path}: missing array(s) {missing}: {expected}, found {npz.files}")
        try:
            return {name: npz[name] for name in (*MODALITIES, *LENGTHS_INPUTS.values()) if name in npz.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
            raise InputError(f"{path}: {expected}, found a corrupt file ({e})") from None


def _load_npy(path: Path) -> np.ndarray:
    if not path.is_file():
        raise InputError(f"input file not found: expected {path}")
    _check_magic(path, "expected a .npy array")
    check_array_sizes(path, InputError)
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise InputError(f"{path}: expected a .npy array, found an unreadable file ({e})") from None


def write_inputs(folder: str | Path, inputs: Mapping[str, Any]) -> Path:
    """Write `folder/{text,audio,vision}.npy` as float32, C order: the C++ examples' input form."""
    folder = Path(folder)
    for m in MODALITIES:
        array = np.ascontiguousarray(inputs[m], dtype=np.float32)

        def save(tmp: str, array: np.ndarray = array) -> None:
            with open(tmp, "wb") as f:
                np.save(f, array)

        atomic_write(folder / f"{m}.npy", save)
    return folder


# np.load takes any file that is neither a zip archive nor a .npy array for a pickle, and then
# says so: a garbage file would be reported as "pickled data". Its first bytes tell which it is.
_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"\x93NUMPY")  # zip archive (an .npz; empty), .npy array


def _check_magic(path: Path, expected: str) -> None:
    try:
        with open(path, "rb") as f:
            head = f.read(6)
    except OSError as e:  # no permission, a device that fails: one line, not a traceback
        raise InputError(f"{path}: {expected}, found a file that cannot be read ({e.strerror or e})") from None
    if not head.startswith(_MAGIC):
        raise InputError(f"{path}: {expected}, found neither a zip archive (.npz) nor a .npy array "
                         f"(first bytes {head!r})")
