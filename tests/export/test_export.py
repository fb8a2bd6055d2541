"""`export(ExportConfig)` and `mimic-edge export`: files written (and not written), byte-identical
artifacts, bad checkpoints and options, interrupted writes, --engine without TensorRT."""
from __future__ import annotations

import json
import pathlib

import numpy as np
import onnx
import pytest
import torch

from mimic_edge import build_model, save_checkpoint
from mimic_edge.cli import main
from mimic_edge.errors import ArtifactValidationError, CheckpointError, ConfigError, DataError
from mimic_edge.export import PRECISIONS, ExportConfig, export
from mimic_edge.export.checker import check_tensorrt
from mimic_edge.export.onnx import metadata

SMALL = dict(calib_samples=64)  # fast: tests check the pipeline, not the statistics


@pytest.fixture(scope="module")
def checkpoint(exports, tmp_path_factory):
    from mimic_edge import save_checkpoint

    folder = tmp_path_factory.mktemp("ckpt")
    save_checkpoint(exports.model("mimic"), folder / "mimic")
    return str(folder / "mimic")


def quiet(_line: str) -> None:
    pass


@pytest.mark.parametrize("key", list(PRECISIONS))
def test_export_writes_a_validated_artifact_and_its_report(checkpoint, tmp_path, key):
    entry = PRECISIONS[key]
    result = export(ExportConfig(precision=entry.name, target=entry.target, checkpoint=checkpoint,
                                 out=str(tmp_path), **SMALL), log=quiet)
    assert result.onnx_path == tmp_path / f"mimic.{key}.onnx" and result.onnx_path.is_file()
    assert result.report_path == tmp_path / f"mimic.{key}.validation.json"
    report = json.loads(result.report_path.read_text())
    assert report["passed"] and report["precision"] == key and report["artifact"] == result.onnx_path.name
    assert report["target"] == entry.target and report["artifact_bytes"] == result.onnx_path.stat().st_size
    assert report["weights"].startswith("sha256:") and not result.fresh_weights
    model = onnx.load(result.onnx_path)
    if entry.tensorrt:  # the CPU target uses ONNX Runtime's own operators, outside TensorRT's rules
        assert check_tensorrt(model) == []
    meta = metadata(model)
    assert (meta["precision"], meta["model"], meta["preset"]) == (key, "mimic", "mosi")
    assert json.loads(meta["config"])["text_dim"] == 300
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([result.onnx_path.name, result.report_path.name])


@pytest.mark.parametrize("key", list(PRECISIONS))
def test_same_checkpoint_and_options_give_identical_bytes(checkpoint, tmp_path, key):
    entry = PRECISIONS[key]
    a, b = (export(ExportConfig(precision=entry.name, target=entry.target, checkpoint=checkpoint,
                                out=str(tmp_path / side), **SMALL), log=quiet) for side in "ab")
    assert a.onnx_path.read_bytes() == b.onnx_path.read_bytes()


@pytest.mark.parametrize("key", ["fp32", "int8"])
def test_a_model_in_memory_exports_the_bytes_of_its_checkpoint(exports, checkpoint, tmp_path, key):
    """The bench exports the model it holds; its artifact must be the one a user gets from the
    checkpoint of those weights (weights identified by the checkpoint file's digest)."""
    from_file = export(ExportConfig(precision=key, checkpoint=checkpoint, out=str(tmp_path / "file"), **SMALL),
                       log=quiet)
    in_memory = export(ExportConfig(precision=key, out=str(tmp_path / "memory"), **SMALL), log=quiet,
                       model=exports.model("mimic"))
    assert in_memory.onnx_path.name == f"mimic-mosi.{key}.onnx" and not in_memory.fresh_weights
    assert in_memory.onnx_path.read_bytes() == from_file.onnx_path.read_bytes()
    assert in_memory.report["weights"] == from_file.report["weights"]


def test_a_model_in_memory_is_checked_like_a_checkpoint(exports, checkpoint, tmp_path):
    model = exports.model("mimic")
    with pytest.raises(ConfigError, match="was given a model and checkpoint"):
        export(ExportConfig(checkpoint=checkpoint, out=str(tmp_path)), log=quiet, model=model)
    with pytest.raises(ConfigError, match="--model misa but the model given is mimic"):
        export(ExportConfig(model="misa", out=str(tmp_path)), log=quiet, model=model)
    with pytest.raises(ConfigError, match="--preset mosei but the model given was trained on preset 'mosi'"):
        export(ExportConfig(preset="mosei", out=str(tmp_path)), log=quiet, model=model)
    assert not tmp_path.exists() or list(tmp_path.iterdir()) == []


def test_int8_for_cpus_runs_onnxruntimes_integer_kernels(checkpoint, tmp_path):
    result = export(ExportConfig(precision="int8", target="cpu", checkpoint=checkpoint, out=str(tmp_path)), log=quiet)
    ops = {n.op_type for n in onnx.load(result.onnx_path).graph.node}
    assert {"DynamicQuantizeLSTM", "MatMulInteger", "DynamicQuantizeLinear"} <= ops
    assert "LSTM" not in ops and "QuantizeLinear" not in ops  # every LSTM integer; no static Q/DQ pairs
    assert result.report["calibration"] is None  # dynamic: activations are quantized per run
    assert result.report["judged_by"]["arithmetic"].startswith("ONNX Runtime's CPU integer kernels on this host")


def test_int8_for_cpus_has_7_bit_weights_that_no_cpu_saturates(checkpoint, tmp_path):
    """x86 u8s8 kernels without VNNI add pairs of u8×s8 products in int16: 2·255·64 = 32640 fits,
    2·255·127 does not. Every int8 weight must lie in [-64, 64], and some reach its ends."""
    from onnx import TensorProto, numpy_helper

    result = export(ExportConfig(precision="int8", target="cpu", checkpoint=checkpoint, out=str(tmp_path)), log=quiet)
    weights = [numpy_helper.to_array(t) for t in onnx.load(result.onnx_path).graph.initializer
               if t.data_type == TensorProto.INT8 and t.dims and max(t.dims) > 1]
    assert len(weights) >= 9  # 3 LSTMs × (W, R) and the linear layers
    assert max(int(np.abs(w.astype(np.int32)).max()) for w in weights) == 64  # the whole 7-bit range, no more


def test_reports_say_what_judged_the_artifact(checkpoint, tmp_path):
    from mimic_edge.runtime.host import int8_isa, u8s8_saturates

    report = export(ExportConfig(precision="int8", checkpoint=checkpoint, out=str(tmp_path), **SMALL),
                    log=quiet).report
    assert report["judged_by"]["arithmetic"].startswith("int8 Q/DQ computed in float")
    assert report["judged_by"]["host"]["int8_isa"] == int8_isa()
    info = report["host_integer_kernels"]  # this host's integer kernels: information beside the gates
    assert info["int8_isa"] == int8_isa() and isinstance(info["sqnr_db"], float)
    assert info["u8s8_saturates"] is u8s8_saturates()  # the reader's key to a low value there
    fp32 = export(ExportConfig(checkpoint=checkpoint, out=str(tmp_path), **SMALL), log=quiet).report
    assert fp32["judged_by"]["arithmetic"] == "ONNX Runtime's CPU float kernels" and "host_integer_kernels" not in fp32


@pytest.mark.parametrize("options, message", [
    (dict(precision="fp16", target="cpu"), "precision fp16 has no artifact for target cpu: expected target tensorrt.*"
                                           "no fast fp16 path"),
    (dict(precision="fp32", target="cpu"), "leave --target out"),
    (dict(precision="int8", target="tpu"), "unknown target 'tpu': expected one of tensorrt, cpu"),
    (dict(precision="int8", target="cpu", engine=True), "--engine builds TensorRT engines, but int8-cpu artifacts"),
])
def test_targets_a_precision_lacks_are_refused_before_any_work(tmp_path, options, message):
    with pytest.raises(ConfigError, match=message):
        export(ExportConfig(out=str(tmp_path), **options), log=quiet)
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_fp16_export_says_it_is_for_gpus(checkpoint, tmp_path):
    lines = []
    export(ExportConfig(precision="fp16", checkpoint=checkpoint, out=str(tmp_path), **SMALL), log=lines.append)
    assert any(line.startswith("note: fp16 artifacts are for GPUs") and "int8 --target cpu" in line for line in lines)


def test_fresh_weights_are_announced(tmp_path):
    lines = []
    result = export(ExportConfig(model="misa", preset="mosi-bert", out=str(tmp_path), **SMALL), log=lines.append)
    assert result.fresh_weights and result.onnx_path.name == "misa-mosi-bert.fp32.onnx"
    assert "freshly initialised misa weights" in lines[0]
    assert json.loads(result.report_path.read_text())["weights"] == "fresh (seed 0)"


def test_failed_validation_writes_the_report_but_no_artifact(checkpoint, tmp_path, monkeypatch):
    import dataclasses

    from mimic_edge.export import precisions

    stale = tmp_path / "mimic.fp32.onnx"
    stale.write_bytes(b"an artifact from an earlier run")
    impossible = precisions.Thresholds(max_abs=-1.0, sqnr_db=80.0, mae_delta=1e-5, acc2_delta=0.005)
    monkeypatch.setitem(precisions.PRECISIONS, "fp32", dataclasses.replace(precisions.PRECISIONS["fp32"], thresholds=impossible))
    with pytest.raises(ArtifactValidationError, match=r"failed 6 of 13 validation checks") as info:
        # force: the stale file has no report saying what it holds
        export(ExportConfig(checkpoint=checkpoint, out=str(tmp_path), force=True, **SMALL), log=quiet)
    report = json.loads((tmp_path / "mimic.fp32.validation.json").read_text())
    assert not report["passed"] and info.value.report["passed"] is False
    assert not stale.exists()


def test_interrupted_write_leaves_nothing_under_the_final_name(checkpoint, tmp_path, monkeypatch):
    real_write_bytes = pathlib.Path.write_bytes

    def write_half_then_die(self, data):
        real_write_bytes(self, data[: len(data) // 2])
        raise KeyboardInterrupt

    monkeypatch.setattr(pathlib.Path, "write_bytes", write_half_then_die)
    with pytest.raises(KeyboardInterrupt):
        export(ExportConfig(checkpoint=checkpoint, out=str(tmp_path), **SMALL), log=quiet)
    assert list(tmp_path.iterdir()) == []  # no artifact, no temp file, and no report (it goes last)


def test_engine_without_tensorrt_still_writes_the_onnx(checkpoint, tmp_path, monkeypatch):
    from mimic_edge.export import pipeline

    monkeypatch.setattr(pipeline, "unavailable_reason", lambda: "the tensorrt package is not installed")
    result = export(ExportConfig(checkpoint=checkpoint, engine=True, out=str(tmp_path), **SMALL), log=quiet)
    assert result.engine_skipped == "the tensorrt package is not installed"
    assert result.engine_path is None and result.onnx_path.is_file() and result.report["passed"]


def test_model_must_match_the_checkpoint(checkpoint, tmp_path):
    with pytest.raises(ConfigError, match="--model misa but .* holds a mimic checkpoint"):
        export(ExportConfig(model="misa", checkpoint=checkpoint, out=str(tmp_path)), log=quiet)


def test_preset_must_match_the_checkpoint(checkpoint, tmp_path):
    with pytest.raises(ConfigError, match="--preset mosi-bert but .* was trained on preset 'mosi'"):
        export(ExportConfig(preset="mosi-bert", checkpoint=checkpoint, out=str(tmp_path)), log=quiet)


def test_missing_and_corrupt_checkpoints(checkpoint, tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint config not found"):
        export(ExportConfig(checkpoint=str(tmp_path / "nothing"), out=str(tmp_path)), log=quiet)
    corrupt = tmp_path / "corrupt"
    corrupt.with_suffix(".json").write_text(pathlib.Path(checkpoint + ".json").read_text())  # valid config
    corrupt.with_suffix(".safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match="expected a safetensors file"):
        export(ExportConfig(checkpoint=str(corrupt), out=str(tmp_path)), log=quiet)
    assert not list(tmp_path.glob("*.onnx"))


@pytest.mark.parametrize("options, message", [
    (dict(precision="int4"), "unknown precision 'int4'"),
    (dict(model="bert"), "unknown model 'bert'"),
    (dict(calib_samples=0), "calib_samples must be a positive integer, found 0"),
    (dict(opset=21), r"opset 21 is outside \[17, 20\]"),
    (dict(batch="8:4:64"), "--batch: expected min ≤ opt, found min 8 > opt 4"),
    (dict(seq="1:50:20"), "--seq: expected opt ≤ max, found opt 50 > max 20"),
    (dict(preset="mosi-xl"), "unknown preset 'mosi-xl'"),
])
def test_bad_options_fail_before_any_work(tmp_path, options, message):
    with pytest.raises(ConfigError, match=message):
        export(ExportConfig(out=str(tmp_path), **options), log=quiet)
    assert not tmp_path.exists() or not list(tmp_path.iterdir())


def test_calibration_from_a_dataset_file(exports, checkpoint, tmp_path):
    from mimic_edge.data import save_npz

    data = tmp_path / "mosi.npz"
    save_npz(data, exports.data("mosi"))
    result = export(ExportConfig(precision="int8", checkpoint=checkpoint, calib_data=str(data),
                                 out=str(tmp_path / "out"), **SMALL), log=quiet)
    assert result.report["calibration"] == {"data": str(data), "samples": 64}
    only_test = tmp_path / "test-only.npz"
    save_npz(only_test, {"test": exports.data("mosi")["valid"]})
    with pytest.raises(DataError, match="expected a 'valid' split for validation"):
        export(ExportConfig(checkpoint=checkpoint, calib_data=str(only_test), out=str(tmp_path / "out")), log=quiet)


def test_cli_exports_and_reports(checkpoint, tmp_path, capsys):
    assert main(["export", "--checkpoint", checkpoint, "--precision", "fp16", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "✓ validation set sqnr_db" in out and "wrote" in out and "✗" not in out
    assert (tmp_path / "mimic.fp16.onnx").is_file()


def test_cli_errors_are_one_line_and_exit_1(checkpoint, tmp_path, capsys, monkeypatch):
    assert main(["export", "--batch", "8:4:64", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("mimic-edge export: error: --batch: expected min ≤ opt") and err.count("\n") == 1
    from mimic_edge.export import pipeline

    monkeypatch.setattr(pipeline, "unavailable_reason", lambda: "no CUDA GPU is visible")
    assert main(["export", "--checkpoint", checkpoint, "--engine", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "--engine: no CUDA GPU is visible" in err and "was written and validated" in err
    assert (tmp_path / "mimic.fp32.onnx").is_file()


def test_cli_help_has_examples(capsys):
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    out = capsys.readouterr().out
    assert "examples:" in out and "--calib-samples" in out and "MIN:OPT:MAX" in out


class StandInEngine:
    """Plays a TensorRT engine where there is none: runs the ONNX artifact in ONNX Runtime and,
    like the real runtime, refuses inputs outside the profile."""

    def __init__(self, onnx_path, profile, offset=0.0):
        import onnxruntime as ort

        self.session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        self.profile, self.offset = profile, offset

    def predict(self, text, audio, vision):
        (b_min, _, b_max), (s_min, _, s_max) = self.profile["batch"], self.profile["seq"]["text"]
        assert b_min <= len(text) <= b_max, f"batch {len(text)} outside the profile"
        assert all(s_min <= x.shape[1] <= s_max for x in (text, audio, vision)), "length outside the profile"
        return self.session.run(None, {"text": text, "audio": audio, "vision": vision})[0] + self.offset


@pytest.fixture
def stand_in_tensorrt(monkeypatch):
    """No TensorRT here: the builder writes placeholder bytes and `load` returns a StandInEngine,
    so that staging, sidecar, validation within the profile and the final move run for real."""
    from mimic_edge.export import pipeline
    from mimic_edge.export.tensorrt import BuiltEngine
    from mimic_edge.sidecar import read_sidecar

    state = {"offset": 0.0}

    def build(onnx_bytes, engine_path, precision, profile, dims, timing_cache, lengths=False):
        engine_path.write_bytes(b"engine:" + onnx_bytes[:64])
        timing_cache.write_bytes(b"cache")
        return BuiltEngine(engine_path, "10.3.0", "Stand-in GPU", "8.7")

    def load(path):
        onnx_path = next(pathlib.Path(path).parent.parent.glob("*.onnx"))
        return StandInEngine(onnx_path, read_sidecar(path)["profile"], state["offset"])

    monkeypatch.setattr(pipeline, "unavailable_reason", lambda: None)
    monkeypatch.setattr(pipeline, "build_engine", build)
    monkeypatch.setattr(pipeline, "load", load)
    return state


def test_engine_is_validated_within_its_profile_then_written(checkpoint, tmp_path, stand_in_tensorrt):
    from mimic_edge.sidecar import check_sidecar

    lines = []
    result = export(ExportConfig(checkpoint=checkpoint, engine=True, batch="1:1:4", seq="1:20:50",
                                 out=str(tmp_path), **SMALL), log=lines.append)
    assert result.engine_path == tmp_path / "mimic.fp32.engine" and result.engine_path.is_file()
    record = check_sidecar(result.engine_path, {"tensorrt_version": "10.3.0", "gpu_name": "Stand-in GPU",
                                                "compute_capability": "8.7"})
    assert record["profile"]["batch"] == [1, 1, 4] and record["onnx_sha256"] == result.report["artifact_sha256"]
    report = json.loads((tmp_path / "mimic.fp32.engine.validation.json").read_text())
    assert report["passed"] and report["not_run"] == ["b=7 L=(50, 50, 50)", "b=7 L=(50, 20, 35)", "b=7 L=(10, 5, 12)"]
    assert report["judged_by"]["runtime"] == "TensorRT 10.3.0 on Stand-in GPU"
    assert any("not run, outside the profile" in line for line in lines)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([
        "mimic.fp32.onnx", "mimic.fp32.validation.json", "mimic.fp32.engine", "mimic.fp32.engine.json",
        "mimic.fp32.engine.validation.json", "mimic.fp32.timing-cache"])  # the staging folder is gone


def test_engine_that_drifts_is_not_written(checkpoint, tmp_path, stand_in_tensorrt):
    stand_in_tensorrt["offset"] = 0.5  # every score off by 0.5
    with pytest.raises(ArtifactValidationError, match="mimic.fp32.engine failed"):
        export(ExportConfig(checkpoint=checkpoint, engine=True, out=str(tmp_path), **SMALL), log=quiet)
    assert not (tmp_path / "mimic.fp32.engine").exists() and not (tmp_path / "mimic.fp32.engine.json").exists()
    assert (tmp_path / "mimic.fp32.onnx").is_file()  # the ONNX artifact itself passed
    assert not json.loads((tmp_path / "mimic.fp32.engine.validation.json").read_text())["passed"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("fmt, engine", [("onnx", True), ("pt2", False)])
@pytest.mark.parametrize("ranges, message", [
    (dict(seq="60:60:80"), "--seq min 60 exceeds the validation data's length 50"),
    (dict(batch="51:60:100"), "--batch min 51: expected 1, so that the .* can be validated before it is written"),
])
def test_ranges_must_admit_the_validation_before_any_build(checkpoint, tmp_path, monkeypatch, fmt, engine, ranges,
                                                          message):
    """Refused in a second, not after minutes of compiling (and not blaming 'batch size 1' then)."""
    from mimic_edge.export import aoti, pipeline

    monkeypatch.setattr(pipeline, "unavailable_reason", lambda: None)  # as if TensorRT were here
    monkeypatch.setattr(pipeline, "build_engine", lambda *a, **k: pytest.fail("built before the check"))
    monkeypatch.setattr(aoti, "build_package", lambda *a, **k: pytest.fail("compiled before the check"))
    with pytest.raises(ConfigError, match=message):
        export(ExportConfig(checkpoint=checkpoint, engine=engine, format=fmt, out=str(tmp_path), **ranges, **SMALL),
               log=quiet)


def test_two_models_checkpoints_of_one_name_get_two_artifacts(exports, tmp_path):
    for name in ("mimic", "misa"):
        save_checkpoint(exports.model(name, "mosi-bert"), tmp_path / "runs" / name / "best")
    # no --model: the model, like the preset, is the checkpoint's
    paths = [export(ExportConfig(checkpoint=str(tmp_path / "runs" / name / "best"), out=str(tmp_path / "a"),
                                 **SMALL), log=quiet).onnx_path.name for name in ("mimic", "misa")]
    assert paths == ["mimic-best.fp32.onnx", "misa-best.fp32.onnx"]


def test_an_artifact_of_another_model_is_replaced_only_with_force(exports, checkpoint, tmp_path):
    other = tmp_path / "other" / "mimic"
    torch.manual_seed(1)
    save_checkpoint(build_model("mimic"), other)  # same name, other weights
    first = export(ExportConfig(checkpoint=checkpoint, out=str(tmp_path / "a"), **SMALL), log=quiet)
    again = export(ExportConfig(checkpoint=checkpoint, out=str(tmp_path / "a"), **SMALL), log=quiet)  # same: fine
    assert again.onnx_path == first.onnx_path
    with pytest.raises(ConfigError, match=r"mimic.fp32.onnx exists and holds another model: .*use --force"):
        export(ExportConfig(checkpoint=str(other), out=str(tmp_path / "a"), **SMALL), log=quiet)
    assert first.onnx_path.read_bytes() == again.onnx_path.read_bytes()  # untouched
    forced = export(ExportConfig(checkpoint=str(other), out=str(tmp_path / "a"), force=True, **SMALL), log=quiet)
    assert forced.report["weights"] != first.report["weights"]


def test_a_crash_before_the_report_leaves_no_report_of_another_artifact(checkpoint, tmp_path, monkeypatch):
    from mimic_edge.export import pipeline

    first = export(ExportConfig(checkpoint=checkpoint, out=str(tmp_path), **SMALL), log=quiet)
    real = pipeline.atomic_write_json

    def crash_on_the_report(path, obj):
        if str(path).endswith(".validation.json"):
            raise KeyboardInterrupt
        return real(path, obj)

    monkeypatch.setattr(pipeline, "atomic_write_json", crash_on_the_report)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(KeyboardInterrupt):  # a re-export that dies writing its report
        export(ExportConfig(checkpoint=checkpoint, out=str(tmp_path), valid_samples=50, **SMALL), log=quiet)
    # the report is written beside the staged artifact before anything under a final name changes
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before and first.report_path.is_file()


@pytest.mark.parametrize("full_at", [".onnx", ".validation.json"])
def test_a_full_disk_is_one_line_and_leaves_the_previous_artifact_and_report(checkpoint, tmp_path, monkeypatch,
                                                                            capsys, full_at):
    import errno

    export(ExportConfig(checkpoint=checkpoint, precision="int8", out=str(tmp_path), **SMALL), log=quiet)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    write_bytes, write_text = pathlib.Path.write_bytes, pathlib.Path.write_text

    def full(write):
        def write_or_fail(self, data, *args, **kwargs):
            if self.name.startswith(f".mimic.int8{full_at}."):  # the temp file of the artifact or its report
                raise OSError(errno.ENOSPC, "No space left on device")
            return write(self, data, *args, **kwargs)
        return write_or_fail

    monkeypatch.setattr(pathlib.Path, "write_bytes", full(write_bytes))
    monkeypatch.setattr(pathlib.Path, "write_text", full(write_text))
    assert main(["export", "--checkpoint", checkpoint, "--precision", "int8", "--out", str(tmp_path),
                 "--calib-samples", "32"]) == 1  # another calibration: another artifact and report
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"mimic-edge export: error: could not write {tmp_path}") and "No space left on device" in err
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # no temp file left either


def test_unwritable_out_fails_before_the_work(checkpoint, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the folder should be")
    with pytest.raises(ConfigError, match=r"--out .*file: expected a folder this process can write to"):
        export(ExportConfig(checkpoint=checkpoint, out=str(blocker)), log=quiet)


def test_every_format_writes_its_report_last(checkpoint, tmp_path, stand_in_tensorrt, monkeypatch):
    """One commit for every format: the artifact, then its sidecar, then the report that names the
    artifact's hash (the engine wrote its report first)."""
    import os

    order = []  # what appears under its final name, in --out itself (not in a staging folder)

    def seen(path):
        if pathlib.Path(path).parent == tmp_path:
            order.append(pathlib.Path(path).name)

    replace = os.replace  # every file lands by a rename: the artifacts from staging, the reports from a temp file
    monkeypatch.setattr(os, "replace", lambda src, dst: (seen(dst), replace(src, dst)))
    export(ExportConfig(checkpoint=checkpoint, engine=True, batch="1:1:8", out=str(tmp_path), **SMALL), log=quiet)
    assert order == ["mimic.fp32.onnx", "mimic.fp32.validation.json",
                     "mimic.fp32.engine", "mimic.fp32.engine.json", "mimic.fp32.engine.validation.json"]


def test_exports_into_one_folder_take_turns(checkpoint, exports, tmp_path):
    """Two exports into one --out: the second waits for the first, then finds its artifact and,
    being another model's, refuses to replace it (without --force) instead of silently winning."""
    import shutil
    import threading

    from mimic_edge.io import exclusive

    other = tmp_path / "other" / "mimic"
    torch.manual_seed(1)
    save_checkpoint(build_model("mimic"), other)  # same artifact name, other weights
    out = tmp_path / "out"
    waiting, errors = threading.Event(), []

    def second():
        try:
            export(ExportConfig(checkpoint=str(other), out=str(out), **SMALL),
                   log=lambda line: waiting.set() if line.startswith("waiting for another") else None)
        except ConfigError as e:
            errors.append(str(e))

    first = export(ExportConfig(checkpoint=checkpoint, out=str(tmp_path / "first"), **SMALL), log=quiet)
    with exclusive(out):  # the first export, between its check and its write
        thread = threading.Thread(target=second)
        thread.start()
        assert waiting.wait(timeout=60), "the second export did not wait for the lock"
        assert thread.is_alive() and not (out / "mimic.fp32.onnx").exists()
        for path in (first.onnx_path, first.report_path):  # the first export's write
            shutil.copy(path, out / path.name)
    thread.join(timeout=120)
    assert len(errors) == 1 and "exists and holds another model" in errors[0]
    assert sorted(p.name for p in out.iterdir()) == ["mimic.fp32.onnx", "mimic.fp32.validation.json"]


def test_a_disk_that_fills_during_a_package_compile_is_a_write_error(checkpoint, tmp_path, monkeypatch):
    """torch writes the package itself: its ENOSPC is one WriteError too, and nothing is left."""
    import errno

    from mimic_edge.errors import WriteError
    from mimic_edge.export import aoti

    def compile_until_full(model, profile, device, staged, lengths=False):
        staged.write_bytes(b"half a package")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(aoti, "build_package", compile_until_full)
    with pytest.raises(WriteError, match=r"could not write .*mimic.cpu.pt2: No space left on device"):
        export(ExportConfig(checkpoint=checkpoint, format="pt2", out=str(tmp_path), **SMALL), log=quiet)
    assert list(tmp_path.iterdir()) == []
