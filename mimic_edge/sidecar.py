"""JSON sidecars (docs/design.md §6): what a TensorRT engine or an AOTInductor package needs to
run, written beside it at export, checked before it is loaded.

An engine runs only on the TensorRT version and the GPU it was built for; a package only on the
torch release, device and CPU ISA or GPU architecture it was compiled for. Neither says so when
loaded elsewhere (a failed deserialization at best, SIGILL at worst), so a sidecar records what
the artifact needs, and loading one made elsewhere fails with a message saying what differs:

    <name>.engine.json  {"format_version", "engine_sha256", "tensorrt_version", "gpu_name",
                         "compute_capability", "precision", "profile", "model", "preset",
                         "config_digest", "dims", "onnx_sha256", "mimic_edge_version"}
    <name>.pt2.json     {"format_version", "kind", "package_sha256", "torch_version", "device",
                         "machine", "cpu_isa", "cuda_arch", "gpu_name", "batch", "seq", "model",
                         "preset", "config_digest", "dims", "out_dim", "fusion_head", "lstm",
                         "weights", "mimic_edge_version"}

`profile`, `batch` and `seq` are the built ranges, [min, opt, max] (seq per modality). One reader
checks every sidecar the same way: it is JSON, of its kind and format version, holds its keys
with values of the expected types and ranges, and the artifact's bytes have the hash it records;
then the artifact's own check compares what it was made for with this machine.

Standard library only (no torch, no numpy): the runtime imports this module on a Jetson.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from mimic_edge import __version__
from mimic_edge.config import MODALITIES
from mimic_edge.errors import ArtifactError
from mimic_edge.io import atomic_write_json
from mimic_edge.tensorrt_probe import current_environment

MAX_DIM = 2**31 - 1  # TensorRT and ONNX Runtime take int32 dimensions


def _count(value) -> bool:
    return type(value) is int and 1 <= value <= MAX_DIM  # type(): JSON true is not a count


def _range(value) -> bool:
    return (isinstance(value, list) and len(value) == 3 and all(map(_count, value))
            and value[0] <= value[1] <= value[2])


def _per_modality(check: Callable[[object], bool]) -> Callable[[object], bool]:
    return lambda value: isinstance(value, dict) and all(check(value.get(m)) for m in MODALITIES)


# The value types a sidecar's keys must hold: (what the error says was expected, the check).
TEXT = ("a string", lambda v: isinstance(v, str))
TEXT_OR_NULL = ("a string or null", lambda v: v is None or isinstance(v, str))
COUNT = (f"an integer from 1 to {MAX_DIM}", _count)
RANGE = ("[min, opt, max]: integers, 1 ≤ min ≤ opt ≤ max", _range)
RANGES = (f"one [min, opt, max] per modality ({', '.join(MODALITIES)})", _per_modality(_range))
DIMS = (f"one integer ≥ 1 per modality ({', '.join(MODALITIES)})", _per_modality(_count))
PROFILE = ('{"batch": [min, opt, max], "seq": one [min, opt, max] per modality}',
           lambda v: isinstance(v, dict) and _range(v.get("batch")) and RANGES[1](v.get("seq")))


@dataclass(frozen=True)
class Schema:
    """What one kind of sidecar holds, and how a mismatch is explained."""

    noun: str  # "engine", "package"
    kind: str | None  # the record's "kind" value (None: the format has no kind key)
    version: int  # its format_version
    hash_key: str  # the key that holds the artifact file's sha256
    fields: dict  # required key → (expected, check)
    written_by: str  # the command that writes artifact and sidecar
    made: str  # "built", "compiled": "<artifact>: <made> for <mismatches>"
    runs_only: str  # why a mismatch matters
    rebuild: str  # what to do about it

    def required(self) -> tuple[str, ...]:
        return ("format_version", *(("kind",) if self.kind else ()), self.hash_key, *self.fields)


ENGINE = Schema(
    "engine", None, 1, "engine_sha256",
    {"tensorrt_version": TEXT, "gpu_name": TEXT, "compute_capability": TEXT, "precision": TEXT, "profile": PROFILE,
     "model": TEXT, "config_digest": TEXT, "dims": DIMS},
    "mimic-edge export --engine", "built", "TensorRT engines run only where they were built",
    "rebuild it on this machine: mimic-edge export --engine ...")
PACKAGE = Schema(
    "package", "aoti-package", 1, "package_sha256",
    {"torch_version": TEXT, "device": TEXT, "machine": TEXT, "cpu_isa": TEXT_OR_NULL, "cuda_arch": TEXT_OR_NULL,
     "batch": RANGE, "seq": RANGES, "model": TEXT, "config_digest": TEXT, "dims": DIMS, "out_dim": COUNT},
    "mimic-edge export --format pt2", "compiled",
    "an AOTInductor package runs only on the torch release and the device it was compiled for",
    "export it again on a machine like this one: mimic-edge export --format pt2 ...")


def sidecar_path(artifact: str | Path) -> Path:
    artifact = Path(artifact)
    return artifact.with_name(artifact.name + ".json")


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_record(artifact: str | Path, schema: Schema, record: dict) -> Path:
    """Write `<artifact>.json`: `record` plus the format version, kind and the (already written)
    artifact's hash; checked by the reader's rules first, so a writer's slip fails the export."""
    full = {"format_version": schema.version, **({"kind": schema.kind} if schema.kind else {}),
            schema.hash_key: file_sha256(artifact), **record, "mimic_edge_version": __version__}
    _check_fields(full, schema, sidecar_path(artifact), error=ValueError)
    return atomic_write_json(sidecar_path(artifact), full)


def read_record(artifact: str | Path, schema: Schema) -> dict:
    """The sidecar of `artifact`, checked for its kind (first: another artifact's sidecar is named
    as such), format version, keys and their values: one ArtifactError for a missing,
    unreadable, foreign, incomplete or ill-typed one."""
    path = sidecar_path(artifact)
    if not path.is_file():
        raise ArtifactError(f"{artifact}: no JSON sidecar: expected {path} beside the {schema.noun} "
                            f"({schema.written_by} writes both)")
    try:
        record = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError, RecursionError) as e:  # ValueError: also ints over 4300 digits
        raise ArtifactError(f"{path}: expected the {schema.noun}'s JSON sidecar, found unreadable text "
                            f"({str(e)[:200] or type(e).__name__})") from None
    if not isinstance(record, dict):
        raise ArtifactError(f"{path}: expected a JSON object, found {type(record).__name__}")
    if schema.kind is not None and record.get("kind") != schema.kind:
        raise ArtifactError(f"{path}: expected a sidecar of kind {schema.kind!r}, found {_show(record.get('kind'))}")
    missing = [k for k in schema.required() if k not in record]
    if missing:
        raise ArtifactError(f"{path}: sidecar lacks {missing}: expected keys {list(schema.required())}")
    if record["format_version"] != schema.version or type(record["format_version"]) is not int:
        raise ArtifactError(f"{path}: expected sidecar format_version {schema.version}, "
                            f"found {_show(record['format_version'])}")
    _check_fields(record, schema, path, error=ArtifactError)
    return record


def check_record(artifact: str | Path, schema: Schema, mismatches: Callable[[dict], list[str]]) -> dict:
    """Read the sidecar, check the artifact's bytes against it and `mismatches(record)` (what it
    was made for that this machine is not): one ArtifactError naming all of them; else the record."""
    record = read_record(artifact, schema)
    found = file_sha256(artifact)
    if found != record[schema.hash_key]:
        raise ArtifactError(f"{artifact}: {schema.noun} bytes (sha256 {found[:12]}…) do not match its sidecar "
                            f"({record[schema.hash_key][:12]}…): the {schema.noun} is corrupt or was replaced; "
                            f"{schema.rebuild}")
    problems = mismatches(record)
    if problems:
        raise ArtifactError(f"{artifact}: {schema.made} for " + "; ".join(problems) +
                            f": {schema.runs_only}; {schema.rebuild}")
    return record


def _check_fields(record: dict, schema: Schema, path: Path, error: type[Exception]) -> None:
    fields = {schema.hash_key: TEXT, **schema.fields}
    bad = [key for key, (_, check) in fields.items() if not check(record.get(key))]
    if bad:
        expected = "; ".join(f"{key}: {fields[key][0]}, found {_show(record.get(key))}" for key in bad)
        raise error(f"{path}: expected {expected}")


def _show(value) -> str:
    """A value from an untrusted file, shortened for an error message."""
    text = repr(value)  # json.loads refuses integers of over 4300 digits, so repr cannot
    return text if len(text) <= 60 else text[:57] + "..."


def read_sidecar(engine_path: str | Path) -> dict:
    return read_record(engine_path, ENGINE)


def check_sidecar(engine_path: str | Path, environment: dict | None = None,
                  config_digest: str | None = None) -> dict:
    """The engine's sidecar, checked against the engine file and this machine.

    `environment`: {"tensorrt_version", "gpu_name", "compute_capability"} of the machine that
    will run the engine; by default `current_environment()` asks TensorRT and CUDA.
    `config_digest`: when given, the model config the caller expects.
    """
    def mismatches(record: dict) -> list[str]:
        env = environment if environment is not None else current_environment()
        return [f"{label} {record[key]!r} but this machine has {env[key]!r}"
                for key, label in (("tensorrt_version", "TensorRT"), ("compute_capability", "compute capability"),
                                   ("gpu_name", "GPU"))
                if str(record[key]) != str(env[key])]

    record = check_record(engine_path, ENGINE, mismatches)
    if config_digest is not None and record["config_digest"] != config_digest:
        raise ArtifactError(f"{engine_path}: built for model config {record['config_digest']}, "
                            f"expected {config_digest}")
    return record
