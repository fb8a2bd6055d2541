"""The shape ranges an engine or a package is built for: `--batch` and `--seq` as MIN:OPT:MAX, one
range per dynamic axis (a TensorRT optimization profile; the `.pt2` package's dynamic ranges)."""
from __future__ import annotations

from dataclasses import dataclass

from mimic_edge.config import LENGTHS_INPUTS, MODALITIES
from mimic_edge.errors import ConfigError


@dataclass(frozen=True)
class Range:
    """MIN:OPT:MAX of one dynamic axis."""

    min: int
    opt: int
    max: int

    def as_list(self) -> list[int]:
        return [self.min, self.opt, self.max]


def parse_range(text: str | Range, what: str) -> Range:
    """"1:8:64" → Range(1, 8, 64); "8" → Range(8, 8, 8). Checked: 1 ≤ min ≤ opt ≤ max."""
    if isinstance(text, Range):
        return check_range(text, what)
    parts = str(text).split(":")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise ConfigError(f"{what}: expected MIN:OPT:MAX integers (e.g. 1:8:64), found {text!r}") from None
    if len(values) == 1:
        values *= 3
    if len(values) != 3:
        raise ConfigError(f"{what}: expected MIN:OPT:MAX (three integers), found {text!r}")
    return check_range(Range(*values), what)


def check_range(r: Range, what: str) -> Range:
    if r.min < 1:
        raise ConfigError(f"{what}: min must be ≥ 1, found {r.min} in {r.min}:{r.opt}:{r.max}")
    if r.min > r.opt:
        raise ConfigError(f"{what}: expected min ≤ opt, found min {r.min} > opt {r.opt} in {r.min}:{r.opt}:{r.max}")
    if r.opt > r.max:
        raise ConfigError(f"{what}: expected opt ≤ max, found opt {r.opt} > max {r.max} in {r.min}:{r.opt}:{r.max}")
    return r


@dataclass(frozen=True)
class Profile:
    """One optimization profile: the batch range, and a sequence range per modality."""

    batch: Range
    seq: dict[str, Range]

    def shapes(self, dims: dict[str, int], lengths: bool = False) -> dict[str, tuple[tuple[int, ...], ...]]:
        """input name → (min, opt, max) shapes (B, L, d), as `IOptimizationProfile.set_shape` takes them;
        with `lengths`, the per-sample lengths inputs too, (B,)."""
        shapes = {m: tuple((b, s, dims[m]) for b, s in zip(self.batch.as_list(), self.seq[m].as_list()))
                  for m in MODALITIES}
        if lengths:
            shapes.update({LENGTHS_INPUTS[m]: tuple((b,) for b in self.batch.as_list()) for m in MODALITIES})
        return shapes

    def to_dict(self) -> dict:
        return {"batch": self.batch.as_list(), "seq": {m: self.seq[m].as_list() for m in MODALITIES}}


def default_seq(seq_len: int) -> str:
    """The preset's length as OPT, up to twice it as MAX: 1:50:100 for the presets of docs/design.md §2."""
    return f"1:{seq_len}:{2 * seq_len}"


def make_profile(batch: str | Range, seq: str | Range) -> Profile:
    """The same sequence range for every modality (each still has its own dynamic axis)."""
    seq_range = parse_range(seq, "--seq")
    return Profile(parse_range(batch, "--batch"), {m: seq_range for m in MODALITIES})
