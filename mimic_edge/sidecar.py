"""The JSON sidecar of a TensorRT engine (docs/design.md §6): write it beside the engine at build time,
check it before the engine is loaded.

An engine runs only on the TensorRT version and the GPU it was built for; TensorRT reports a
mismatch, at best, as a failed deserialization. The sidecar records what the engine needs, so
that loading one built elsewhere fails with a message saying what differs and how to fix it:

    <name>.engine.json  {"format_version", "engine_sha256", "tensorrt_version", "gpu_name",
                         "compute_capability", "precision", "profile", "model", "preset",
                         "config_digest", "dims", "onnx_sha256", "mimic_edge_version"}

Standard library only (no torch, no numpy): the runtime imports this module on a Jetson.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from mimic_edge import __version__
from mimic_edge.errors import ArtifactError
from mimic_edge.io import atomic_write_json
from mimic_edge.tensorrt_probe import current_environment

FORMAT_VERSION = 1
REQUIRED_KEYS = ("format_version", "engine_sha256", "tensorrt_version", "gpu_name", "compute_capability",
                 "precision", "profile", "model", "config_digest", "dims")
REBUILD = "rebuild it on this machine: mimic-edge export --engine ..."


def sidecar_path(engine_path: str | Path) -> Path:
    engine_path = Path(engine_path)
    return engine_path.with_name(engine_path.name + ".json")


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_sidecar(engine_path: str | Path, *, tensorrt_version: str, gpu_name: str, compute_capability: str,
                  precision: str, profile: dict, model: str, preset: str, config_digest: str,
                  dims: dict[str, int], onnx_sha256: str) -> Path:
    """Record what the (already written) engine at `engine_path` was built with and for."""
    record = {
        "format_version": FORMAT_VERSION,
        "engine_sha256": file_sha256(engine_path),
        "tensorrt_version": tensorrt_version,
        "gpu_name": gpu_name,
        "compute_capability": compute_capability,
        "precision": precision,
        "profile": profile,
        "model": model,
        "preset": preset,
        "config_digest": config_digest,
        "dims": dict(dims),
        "onnx_sha256": onnx_sha256,
        "mimic_edge_version": __version__,
    }
    return atomic_write_json(sidecar_path(engine_path), record)


def read_sidecar(engine_path: str | Path) -> dict:
    return read_json_record(engine_path, "engine", REQUIRED_KEYS, FORMAT_VERSION, "mimic-edge export --engine")


def read_json_record(artifact: str | Path, noun: str, required: tuple[str, ...], version: int,
                     written_by: str, kind: str | None = None) -> dict:
    """The JSON sidecar of `artifact` (an engine, a package), checked for its `kind` (when given,
    first: another artifact's sidecar is named as such), keys and format version: one clear
    ArtifactError for a missing, unreadable, foreign or incomplete one."""
    path = sidecar_path(artifact)
    if not path.is_file():
        raise ArtifactError(f"{artifact}: no JSON sidecar: expected {path} beside the {noun} "
                            f"({written_by} writes both)")
    try:
        record = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ArtifactError(f"{path}: expected the {noun}'s JSON sidecar, found unreadable text ({e})") from None
    if not isinstance(record, dict):
        raise ArtifactError(f"{path}: expected a JSON object, found {type(record).__name__}")
    if kind is not None and record.get("kind") != kind:
        raise ArtifactError(f"{path}: expected a sidecar of kind {kind!r}, found {record.get('kind')!r}")
    missing = [k for k in required if k not in record]
    if missing:
        raise ArtifactError(f"{path}: sidecar lacks {missing}: expected keys {list(required)}")
    if record["format_version"] != version:
        raise ArtifactError(f"{path}: expected sidecar format_version {version}, "
                            f"found {record['format_version']!r}")
    return record


def check_sidecar(engine_path: str | Path, environment: dict | None = None,
                  config_digest: str | None = None) -> dict:
    """Read the sidecar and check it against the engine file and this machine; return it.

    `environment`: {"tensorrt_version", "gpu_name", "compute_capability"} of the machine that
    will run the engine; by default `current_environment()` asks TensorRT and CUDA.
    `config_digest`: when given, the model config the caller expects.
    """
    record = read_sidecar(engine_path)
    found = file_sha256(engine_path)
    if found != record["engine_sha256"]:
        raise ArtifactError(f"{engine_path}: engine bytes (sha256 {found[:12]}…) do not match its sidecar "
                            f"({record['engine_sha256'][:12]}…): the engine is corrupt or was replaced; {REBUILD}")
    env = environment if environment is not None else current_environment()
    mismatches = [
        f"{label} {record[key]!r} but this machine has {env[key]!r}"
        for key, label in (("tensorrt_version", "TensorRT"), ("compute_capability", "compute capability"),
                           ("gpu_name", "GPU"))
        if str(record[key]) != str(env[key])
    ]
    if mismatches:
        raise ArtifactError(f"{engine_path}: built for " + "; ".join(mismatches) +
                            f": TensorRT engines run only where they were built; {REBUILD}")
    if config_digest is not None and record["config_digest"] != config_digest:
        raise ArtifactError(f"{engine_path}: built for model config {record['config_digest']}, "
                            f"expected {config_digest}")
    return record
