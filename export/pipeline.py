"""The export pipeline: model → ONNX at a precision → TensorRT rules → validation → files, and
on request a TensorRT engine validated the same way (docs/design.md §6).

Files in `out` for model name N (`<model>-<preset>`, or the checkpoint's name) and precision P
(a key of mimic_edge.export.precisions.PRECISIONS):
  N.P.onnx                  the artifact, written only when every validation check passed
  N.P.validation.json       the validation report (written pass or fail)
  N.P.engine, N.P.engine.json (sidecar), N.P.engine.validation.json, N.P.timing-cache
                            with `engine=True` on a machine with TensorRT and a CUDA GPU; the
                            engine is validated like the artifact, within its profile

With `format="pt2"`, for device D (`cpu` | `cuda`), an AOTInductor package instead
(mimic_edge.export.aoti), fp32 only:
  N.D.pt2, N.D.pt2.json (sidecar: torch release, device, CPU ISA or CUDA arch, ranges, config
                            digest), N.D.pt2.validation.json; the package is compiled into a
                            staging folder, validated there through mimic_edge.runtime.load like
                            an engine (within its ranges), then moved under its final name
"""
from __future__ import annotations

import contextlib
import copy
import errno
import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from mimic_edge.checkpoint import checkpoint_paths, load_checkpoint, read_checkpoint_meta, weights_id
from mimic_edge.config import DEFAULT_PRESET, MODALITIES, get_preset, model_name
from mimic_edge.data import check_split, load_dataset
from mimic_edge.errors import ArtifactValidationError, ConfigError, DataError, WriteError
from mimic_edge.export import aoti
from mimic_edge.export.checker import require_tensorrt_compatible
from mimic_edge.export.config import ExportConfig, check_options, model_of
from mimic_edge.export.formats import FORMATS, get_format
from mimic_edge.export.judge import Reference
from mimic_edge.export.onnx import check_opset, stamp, to_bytes, to_onnx
from mimic_edge.export.precision import convert, recipe
from mimic_edge.export.precisions import Precision
from mimic_edge.export.shapes import default_seq, make_profile
from mimic_edge.export.tensorrt import build_engine, unavailable_reason, write_engine_sidecar
from mimic_edge.export.validate import (Limits, host, predictor_runner, raise_if_failed, reference, validate,
                                        validate_runner)
from mimic_edge.io import atomic_write_bytes, atomic_write_json, check_writable, exclusive, write_error
from mimic_edge.models import build_model
from mimic_edge.runtime import load
from mimic_edge.sidecar import file_sha256, sidecar_path


@dataclass
class ExportResult:
    onnx_path: Path | None  # None for a pt2 export
    report_path: Path
    report: dict
    fresh_weights: bool
    engine_path: Path | None = None
    sidecar_path: Path | None = None  # the engine's, or the pt2 package's
    engine_skipped: str | None = None  # why no engine was built although one was asked for
    seconds: float = 0.0
    pt2_path: Path | None = None  # format="pt2": the AOTInductor package
    # The inputs and PyTorch scores the ONNX artifact was judged on: `reference.save(path)` lets it be
    # judged again where it runs (mimic_edge.export.judge), on another CPU, without torch.
    reference: Reference | None = None
    model_dir: Path | None = None  # format="triton": the model's folder in the repository


@dataclass
class Source:
    """The model an export starts from, and what its reports and artifacts call its weights."""

    model: torch.nn.Module
    fresh: bool  # freshly initialised (no checkpoint, no model given)
    weights: str  # "sha256:<checkpoint file's digest>" or "fresh (seed N)"


def export(config: ExportConfig, log: Callable[[str], None] = print, model: torch.nn.Module | None = None
           ) -> ExportResult:
    """Export, check, validate and write the artifact (and the engine); see the module doc.

    `model`: a MIMIC or MISA module in memory to export instead of `config.checkpoint` (which must
    then be None); its weights are identified like the checkpoint `save_checkpoint` would write,
    so its artifacts are byte-identical to those of that checkpoint, under the name <model>-<preset>."""
    start = time.perf_counter()
    entry = check_options(config)
    if model is not None:
        if config.checkpoint is not None:
            raise ConfigError(f"export was given a model and checkpoint {config.checkpoint}: expected one of them")
        config = dataclasses.replace(config, model=config.model or model_name(model.config))
    else:
        config = dataclasses.replace(config, model=model_of(config))
    check_writable(config.out, "--out")
    fmt = get_format(config.format)
    missing = fmt.missing()
    if missing:
        raise ConfigError(f"--format {fmt.name} needs {', '.join(missing)} installed: expected the modules "
                          f"{', '.join(fmt.requires)}, found {', '.join(missing)} missing")
    # Exports into one folder take turns: each checks what is there (another model's artifact is
    # replaced only with --force) and writes, with no other export between its check and its write.
    with exclusive(config.out, log):
        result = _BUILDERS[fmt.name](config, entry, _source(config, model, log), log)
    result.seconds = time.perf_counter() - start
    return result


def _export_onnx(config: ExportConfig, entry: Precision, source: Source, log) -> ExportResult:
    """The ONNX artifact at `entry`'s precision, checked, validated and written; then the engine."""
    check_opset(config.opset)
    if entry.note:
        log(f"note: {entry.note}")
    model = source.model
    preset = model.config.preset
    # The profile is checked before the export, so a bad --batch/--seq fails in a second.
    profile = make_profile(config.batch, config.seq or default_seq(get_preset(preset).seq_len))
    calib, valid = _load_data(config, model.config, entry.calibrated, log)
    if config.engine:
        _check_profile_validatable(profile, valid, "engine")

    onnx_path, report_path = FORMATS["onnx"].paths(config.out, _artifact_name(config, preset), key=entry.key)
    _refuse_to_replace_another_model(onnx_path, report_path, config, source)

    artifact = convert(to_onnx(model, config.opset, lengths=config.lengths), entry, calib)
    stamp(artifact, {"weights": source.weights, "config": json.dumps(model.config.to_dict(), sort_keys=True)})
    if entry.tensorrt:
        require_tensorrt_compatible(artifact, onnx_path.name)
    data = to_bytes(artifact)

    log(f"validating {onnx_path.name} against PyTorch ({len(valid['regression_labels'])} samples):")
    judged_against = reference(model, valid, padded=config.lengths)
    report = validate(data, entry, model, valid, log, name=onnx_path.name, ref=judged_against)
    report.update(artifact=onnx_path.name, artifact_sha256=hashlib.sha256(data).hexdigest(),
                  artifact_bytes=len(data), model=config.model, preset=preset, target=entry.target,
                  config_digest=model.config.digest(), weights=source.weights,
                  recipe=recipe(entry, config.opset), lengths=config.lengths,
                  calibration={"data": config.calib_data, "samples": len(calib[MODALITIES[0]])} if calib else None)
    with _staging(onnx_path) as staging:
        staged = atomic_write_bytes(staging / onnx_path.name, data)
        _commit(report, report_path, staged, onnx_path, FORMATS["onnx"].sidecar)
    log(f"wrote {onnx_path} ({len(data) / 1e6:.2f} MB) and {report_path.name}")

    result = ExportResult(onnx_path, report_path, report, source.fresh, reference=judged_against)
    if config.engine:
        _engine(config, entry, result, data, profile, model, valid, log)
    return result


def _check_profile_validatable(profile, valid, what: str) -> None:
    """Before any build: the ranges must admit what validation runs (batch 1 and up, the data's length)."""
    if profile.batch.min != 1:
        raise ConfigError(f"--batch min {profile.batch.min}: expected 1, so that the {what} can be validated "
                          f"before it is written (its checks run batches from 1 up)")
    data_len = valid[MODALITIES[0]].shape[1]
    if profile.seq[MODALITIES[0]].min > data_len:
        raise ConfigError(f"--seq min {profile.seq[MODALITIES[0]].min} exceeds the validation data's length "
                          f"{data_len}: expected min ≤ {data_len}, so that the {what} can be validated")


def _export_pt2(config: ExportConfig, entry: Precision, source: Source, log) -> ExportResult:
    """The AOTInductor package for `config.device` and its sidecar, compiled in a staging folder
    beside the final name, validated through the loader users call (within the compiled
    ranges), then moved; a failing package is reported like a failing artifact and not written."""
    reason = aoti.unavailable_reason(config.device)
    if reason:
        raise ConfigError(f"--format pt2 --device {config.device}: {reason}")
    model = source.model
    preset = model.config.preset
    profile = make_profile(config.batch, config.seq or default_seq(get_preset(preset).seq_len))
    _, valid = _load_data(config, model.config, False, log)
    _check_profile_validatable(profile, valid, "package")
    path, report_path = FORMATS["pt2"].paths(config.out, _artifact_name(config, preset), device=config.device)
    _refuse_to_replace_another_model(path, report_path, config, source)
    with _staging(path) as staging:
        staged = staging / path.name
        log(f"compiling {path.name} with AOTInductor for {config.device} (torch {torch.__version__}; "
            "a minute or more)")
        built = aoti.build_package(model, profile, config.device, staged, lengths=config.lengths)
        record = {**aoti.build_environment(config.device), "batch": profile.batch.as_list(),
                  "seq": profile.to_dict()["seq"], "model": model_name(model.config), "preset": preset,
                  "config_digest": model.config.digest(), "dims": model.config.dims, "out_dim": model.config.out_dim,
                  "fusion_head": built.fusion_head, "lstm": built.lstm, "weights": source.weights,
                  "lengths": config.lengths}
        aoti.write_package_sidecar(staged, record)
        log(f"validating {path.name} against PyTorch ({len(valid['regression_labels'])} samples, fusion head "
            f"{built.fusion_head}, LSTMs as {built.lstm}):")
        seq = profile.seq[MODALITIES[0]]
        report = validate_runner(predictor_runner(load(staged)), entry, model, valid, log,
                                 Limits(profile.batch.max, (seq.min, seq.max)), padded=config.lengths)
        report.update(artifact=path.name, lengths=config.lengths, artifact_sha256=file_sha256(staged), artifact_bytes=staged.stat().st_size,
                      format="pt2", **{k: record[k] for k in ("model", "preset", "device", "torch_version", "cpu_isa",
                                                               "cuda_arch", "fusion_head", "lstm", "config_digest",
                                                               "weights")},
                      ranges={"batch": record["batch"], "seq": record["seq"]},
                      export_seconds=round(built.export_seconds, 1), compile_seconds=round(built.compile_seconds, 1),
                      judged_by={"runtime": f"AOTInductor package, torch {torch.__version__}, {config.device}",
                                 "arithmetic": FORMATS["pt2"].judged_by, "host": host()})
        _commit(report, report_path, staged, path, FORMATS["pt2"].sidecar)
    log(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB), {sidecar_path(path).name} and {report_path.name}")
    return ExportResult(None, report_path, report, source.fresh, sidecar_path=sidecar_path(path),
                        pt2_path=path)


def _export_triton(config: ExportConfig, entry: Precision, source: Source, log) -> ExportResult:
    """The ONNX artifact, exported and validated in a staging folder inside the model's folder
    (Triton ignores folders whose names are not versions), laid out as a version of a Triton
    model with its config.pbtxt, then moved into place: the version folder last but one, the
    config last. Another model's version is replaced only with --force."""
    from mimic_edge.export.triton import ServingConfig, model_config, precision_mode

    preset = source.model.config.preset
    name = f"{_artifact_name(config, preset)}-{entry.key}"
    onnx_path, report_path = FORMATS["triton"].paths(config.out, _artifact_name(config, preset), key=entry.key,
                                                      version=config.model_version)
    version_dir, model_dir = onnx_path.parent, onnx_path.parent.parent
    _refuse_to_replace_another_model(onnx_path, report_path, config, source)
    serving = ServingConfig(make_profile(config.batch, config.seq or default_seq(get_preset(preset).seq_len)).batch.max,
                            config.device, config.instances, config.max_queue_delay_us, config.accelerator,
                            precision_mode=precision_mode(entry.tensorrt_flags))
    made = not model_dir.exists()
    try:
        with _staging(version_dir) as staging:
            try:
                onnx = _export_onnx(dataclasses.replace(config, out=str(staging / "onnx"), format="onnx", force=True),
                                    entry, source, lambda line: log(line) if not line.startswith("wrote ") else None)
            except ArtifactValidationError as e:  # its report beside the model folder, which Triton ignores
                failed = atomic_write_json(Path(config.out) / f"{name}.validation.json", e.report)
                raise ArtifactValidationError(f"{e}; report: {failed}", e.report) from None
            report = {**onnx.report, "artifact": onnx_path.name, "format": "triton",
                      "triton": {"model": name, "version": config.model_version, "config": "config.pbtxt",
                                 "instances": f"{serving.instances} × {serving.device}", "accelerator": serving.accelerator}}
            dims, out_dim = source.model.config.dims, source.model.config.out_dim
            text = model_config(name, dims, out_dim, serving, config.lengths)
            plan = _plan_files(onnx, name, serving, dims, out_dim, config) if onnx.engine_path else None
            _commit_version(staging, {onnx.onnx_path: onnx_path.name}, report, text, onnx_path, report_path)
            if plan is not None:
                _commit_version(staging, *plan)
    except BaseException:
        if made:  # a model folder without a version would be an error to Triton: leave none behind
            shutil.rmtree(model_dir, ignore_errors=True)
        raise
    log(f"wrote the Triton model {model_dir} (version {config.model_version}: {onnx_path.name}, "
        f"{onnx_path.stat().st_size / 1e6:.2f} MB; config.pbtxt; {report_path.name})")
    if plan is not None:
        log(f"wrote the Triton model {plan[3].parent.parent} (a TensorRT plan: for servers with TensorRT "
            f"{plan[1].get('tensorrt_version')} on a {plan[1].get('gpu_name')})")
    elif config.engine:
        log(f"no TensorRT plan model: {onnx.engine_skipped}")
    return ExportResult(onnx_path, report_path, report, source.fresh, reference=onnx.reference, model_dir=model_dir,
                        engine_path=plan[3] if plan else None, engine_skipped=onnx.engine_skipped)


def _plan_files(onnx: ExportResult, name: str, serving, dims: dict, out_dim: int, config: ExportConfig) -> tuple:
    """`_commit_version`'s arguments for the engine as a tensorrt_plan model `<name>-plan` beside
    the ONNX one: model.plan with its sidecar and validation report, on GPU instances."""
    from mimic_edge.export.triton import model_config

    plan_name = f"{name}-plan"
    plan_path = Path(config.out) / plan_name / str(config.model_version) / "model.plan"
    engine_report = json.loads(FORMATS["engine"].paths(onnx.engine_path.parent,
                                                        onnx.engine_path.name.split(".")[0],
                                                        key=onnx.report["precision"])[1].read_text())
    text = model_config(plan_name, dims, out_dim, dataclasses.replace(serving, accelerator=None), platform="tensorrt_plan")
    files = {onnx.engine_path: plan_path.name, sidecar_path(onnx.engine_path): sidecar_path(plan_path).name}
    return files, {**engine_report, "artifact": plan_path.name, "format": "triton"}, text, plan_path, \
        plan_path.with_name("validation.json")


def _commit_version(staging: Path, files: dict[Path, str], report: dict, config_text: str, final: Path,
                    report_path: Path) -> None:
    """Lay out a model's version folder (`files`: staged file → its name there, the report) and its
    config in `staging`, then rename them into the model folder of `final`: the version (an older
    one under its number moved aside first), then config.pbtxt. Only renames after the writes, so
    a full disk changes nothing in the repository."""
    version_dir, model_dir = final.parent, final.parent.parent
    work = Path(tempfile.mkdtemp(prefix=f"{model_dir.name}.", dir=staging))
    staged = work / version_dir.name
    staged.mkdir()
    for source, file_name in files.items():
        os.replace(source, staged / file_name)
    atomic_write_json(staged / report_path.name, report)
    staged_config = atomic_write_bytes(work / "config.pbtxt", config_text.encode())
    model_dir.mkdir(exist_ok=True)
    if version_dir.exists():  # removed with the staging folder
        os.replace(version_dir, work / "replaced")
    os.replace(staged, version_dir)
    os.replace(staged_config, model_dir / "config.pbtxt")


_BUILDERS = {"onnx": _export_onnx, "pt2": _export_pt2, "triton": _export_triton}  # one per format built from the model


# What a write that runs out of room or fails underneath raises: torch's and TensorRT's own writes
# into a staging folder (a package compile, an engine build) included.
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS}


@contextlib.contextmanager
def _staging(final: Path):
    """A folder beside `final` (same file system: renames from it are atomic), removed afterwards.
    A disk that fills while something is built in it is a WriteError, whoever was writing."""
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    except OSError as e:
        raise WriteError(f"could not make a staging folder beside {final}: {e.strerror or e}") from None
    try:
        yield folder
    except OSError as e:
        if isinstance(e, WriteError) or e.errno not in _WRITE_ERRNOS:
            raise
        raise write_error(final, e) from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _commit(report: dict, report_path: Path, staged: Path, final: Path, with_sidecar: bool) -> None:
    """Publish a validated artifact the same way for every format. Everything is written beside
    the staged artifact first, so a full disk fails before any file under a final name changes;
    then only renames follow. Failed: older files under its names go (they would now be a lie),
    the report is moved in and ArtifactValidationError raised. Passed: the old report goes, the
    artifact and then its sidecar are renamed into place (the sidecar records the artifact's
    hash, so a crash between the two is detected), and the report, which names the artifact's
    hash, comes last: a crash leaves an artifact without a report, never a report of another
    artifact."""
    finals = [final, sidecar_path(final)] if with_sidecar else [final]
    staged_report = atomic_write_json(staged.parent / report_path.name, report)
    if not report["passed"]:
        for path in finals:
            path.unlink(missing_ok=True)
        os.replace(staged_report, report_path)
        raise_if_failed(report, final.name, report_path)
    report_path.unlink(missing_ok=True)
    os.replace(staged, final)
    if with_sidecar:
        os.replace(sidecar_path(staged), sidecar_path(final))
    os.replace(staged_report, report_path)


def _artifact_name(config: ExportConfig, preset: str) -> str:
    """<model>-<preset> for fresh weights; else the checkpoint's name, led by the model's unless it
    already starts with it (runs/mimic/best → mimic-best, runs/mimic.safetensors → mimic), so
    that two models' checkpoints of the same name (runs/mimic/best, runs/misa/best) differ."""
    if config.checkpoint is None:
        return f"{config.model}-{preset}"
    stem = checkpoint_paths(config.checkpoint)[0].stem
    return stem if stem.startswith(config.model) else f"{config.model}-{stem}"


def _refuse_to_replace_another_model(path: Path, report_path: Path, config: ExportConfig, source: Source) -> None:
    """An artifact already under this name is replaced only if its report says it holds these
    weights and this config (re-exporting is fine), or with `force`."""
    if config.force or not path.exists():
        return
    try:
        old = json.loads(report_path.read_text())
        same = (old.get("weights"), old.get("config_digest")) == (source.weights, source.model.config.digest())
        found = f"{old.get('model')} ({old.get('preset')}, weights {old.get('weights')})"
    except (OSError, ValueError, AttributeError):
        same, found = False, f"no readable {report_path.name} to say what it holds"
    if not same:
        raise ConfigError(f"{path} exists and holds another model: expected {config.model} ({source.model.config.preset}, "
                          f"weights {source.weights}), found {found}; use --force to replace it, or --out "
                          f"elsewhere")


def _source(config: ExportConfig, model: torch.nn.Module | None, log) -> Source:
    """The model given, the checkpoint's (their preset must agree with `config.preset`), or seeded
    fresh weights."""
    if model is not None:
        if model_name(model.config) != config.model:
            raise ConfigError(f"--model {config.model} but the model given is {model_name(model.config)}")
        _check_preset(config, model.config.preset, "the model given")
        # A copy on the CPU in eval mode: the caller's module (perhaps on a GPU, perhaps training) is left as it is.
        return Source(copy.deepcopy(model).cpu().eval(), False, weights_id(model))
    if config.checkpoint is None:
        torch.manual_seed(config.seed)
        preset = config.preset or DEFAULT_PRESET
        log(f"no checkpoint: exporting freshly initialised {config.model} weights (seed {config.seed}, preset "
            f"{preset}): fine for trying the pipeline, meaningless as a model")
        return Source(build_model(config.model, preset).eval(), True, f"fresh (seed {config.seed})")
    meta = read_checkpoint_meta(config.checkpoint)
    if meta["model"] != config.model:
        raise ConfigError(f"--model {config.model} but {config.checkpoint} holds a {meta['model']} checkpoint")
    model = load_checkpoint(config.checkpoint)
    _check_preset(config, model.config.preset, config.checkpoint)
    return Source(model, False, f"sha256:{file_sha256(checkpoint_paths(config.checkpoint)[0])}")


def _check_preset(config: ExportConfig, preset: str, holder: str) -> None:
    if config.preset is not None and config.preset != preset:
        raise ConfigError(f"--preset {config.preset} but {holder} was trained on preset {preset!r}: leave "
                          f"--preset out to use its own")


def _load_data(config: ExportConfig, model_config, calibrate: bool, log):
    """(calibration inputs or None, validation split), checked against the model's dims."""
    preset = model_config.preset
    # Same sizes for every precision: the synthetic validation split must not depend on it.
    sizes = (config.calib_samples, config.valid_samples, 1)
    dataset = load_dataset(config.calib_data, preset, n=sizes, seed=config.seed)
    if "valid" not in dataset:
        raise DataError(f"{config.calib_data}: expected a 'valid' split for validation, found {sorted(dataset)}")
    valid = {k: v[:config.valid_samples] for k, v in dataset["valid"].items()}
    check_split(valid, model_config.dims, f"{config.calib_data} valid")
    calib = None
    if calibrate:
        if "train" not in dataset:
            raise DataError(f"{config.calib_data}: expected a 'train' split for calibration, found {sorted(dataset)}")
        calib = {m: dataset["train"][m][:config.calib_samples] for m in MODALITIES}
        check_split({**calib, "regression_labels": dataset["train"]["regression_labels"][:config.calib_samples]},
                    model_config.dims, f"{config.calib_data} train")
        log(f"calibrating on {len(calib[MODALITIES[0]])} samples of {config.calib_data} (train split)")
    return calib, valid


def _engine(config: ExportConfig, entry: Precision, result: ExportResult, data: bytes, profile, model, valid,
            log) -> None:
    """Build the engine and its sidecar in a staging folder beside the artifact, validate the
    engine like the artifact (within the profile's ranges), then move both under their final
    names; a failing engine is reported like a failing artifact and not written."""
    reason = unavailable_reason()
    if reason:
        result.engine_skipped = reason
        log(f"no TensorRT engine: {reason}")
        return
    name = _artifact_name(config, model.config.preset)
    engine_path, report_path = FORMATS["engine"].paths(config.out, name, key=entry.key)
    with _staging(engine_path) as staging:
        staged = staging / engine_path.name
        report = _build_and_validate_engine(entry, result, data, profile, model, valid, staged, log)
        _commit(report, report_path, staged, engine_path, FORMATS["engine"].sidecar)
    result.engine_path, result.sidecar_path = engine_path, sidecar_path(engine_path)
    log(f"wrote {engine_path}, {result.sidecar_path.name} and {report_path.name}")


def _build_and_validate_engine(entry: Precision, result, data, profile, model, valid, staged: Path, log) -> dict:
    stem = result.onnx_path.name.removesuffix(".onnx")
    lengths = result.report.get("lengths", False)
    built = build_engine(data, staged, entry, profile, model.config.dims,
                         result.onnx_path.with_name(f"{stem}.timing-cache"), lengths=lengths)
    write_engine_sidecar(
        staged, tensorrt_version=built.tensorrt_version, gpu_name=built.gpu_name,
        compute_capability=built.compute_capability, precision=entry.key, profile=profile.to_dict(),
        model=model_name(model.config), preset=model.config.preset, config_digest=model.config.digest(),
        dims=model.config.dims, onnx_sha256=result.report["artifact_sha256"])
    log(f"validating {staged.name} (TensorRT {built.tensorrt_version}, {built.gpu_name}) against PyTorch:")
    seq = profile.seq[MODALITIES[0]]
    report = validate_runner(predictor_runner(load(staged)), entry, model, valid, log,
                             Limits(profile.batch.max, (seq.min, seq.max)), padded=lengths)
    report.update(artifact=staged.name, lengths=lengths, tensorrt_version=built.tensorrt_version, gpu_name=built.gpu_name,
                  profile=profile.to_dict(), onnx_sha256=result.report["artifact_sha256"],
                  judged_by={"runtime": f"TensorRT {built.tensorrt_version} on {built.gpu_name}",
                             "arithmetic": FORMATS["engine"].judged_by, "host": host()})
    return report
