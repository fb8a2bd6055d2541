"""Artifact validation: the measures, every check reported with ✓/✗, one typed error on failure."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mimic_edge.errors import ArtifactValidationError
from mimic_edge.export.precisions import PRECISIONS
from mimic_edge.export.onnx import to_bytes, to_onnx
from mimic_edge.export.judge import Check, parity_cases, raise_if_failed, sqnr_db
from mimic_edge.export.validate import validate


def test_sqnr_db_against_hand_computed_values():
    x = np.array([3.0, -4.0])  # ‖x‖ = 5
    assert sqnr_db(x, x) == math.inf
    assert sqnr_db(x, x + np.array([0.05, 0.0])) == pytest.approx(40.0)  # 20·log10(5 / 0.05)
    assert sqnr_db(x, -x) == pytest.approx(20 * math.log10(0.5))
    assert sqnr_db(np.zeros(2), np.ones(2)) == -math.inf


@pytest.mark.parametrize("check, passed, mark", [
    (Check("a max_abs", 0.01, 0.02, higher_is_better=False), True, "✓"),
    (Check("a max_abs", 0.03, 0.02, higher_is_better=False), False, "✗"),
    (Check("a sqnr_db", 45.0, 40.0, higher_is_better=True), True, "✓"),
    (Check("a sqnr_db", math.nan, 40.0, higher_is_better=True), False, "✗"),
    (Check("a max_abs", math.nan, 1.0, higher_is_better=False), False, "✗"),
])
def test_check_verdict_and_line(check, passed, mark):
    assert check.passed is passed
    line = check.line()
    assert line.startswith(mark) and check.name in line and f"{check.threshold:g}" in line
    assert check.to_dict()["passed"] is passed


def test_parity_cases_cover_batch_sizes_and_unequal_lengths():
    cases = parity_cases(50)
    assert {b for b, _ in cases} == {1, 7}
    assert (50, 50, 50) in {ls for _, ls in cases}
    assert any(len(set(ls)) == 3 for _, ls in cases)  # every modality its own length
    assert min(min(ls) for _, ls in cases) < 10  # short sequences too
    assert all(min(ls) >= 1 for _, ls in parity_cases(3))


def test_matching_artifact_passes_every_check(exports):
    lines = []
    report = validate(to_bytes(exports.fp32("mimic")), PRECISIONS["fp32"], exports.model("mimic"), exports.data()["valid"],
                      log=lines.append)
    assert report["passed"]
    names = [c["check"] for c in report["checks"]]
    assert len(names) == 13  # 6 parity max_abs, 3 parity SQNR, validation SQNR, 3 metric deltas
    assert sum("max_abs" in n for n in names) == 6 and sum("sqnr_db" in n for n in names) == 4
    assert len(lines) == len(names) and all(line.strip().startswith("✓") for line in lines)
    assert report["metrics"]["torch"]["MAE"] == pytest.approx(report["metrics"]["artifact"]["MAE"], abs=1e-6)
    assert report["thresholds"]["max_abs"] == PRECISIONS["fp32"].thresholds.max_abs
    assert report["onnxruntime_optimization"] == "ORT_ENABLE_EXTENDED"  # what mimic_edge.runtime uses


def test_wrong_artifact_fails_with_every_failure_listed(exports, tmp_path):
    from mimic_edge.models import build_model

    torch.manual_seed(1)  # other weights: the artifact no longer matches the model
    other = to_bytes(to_onnx(build_model("mimic").eval()))
    lines = []
    report = validate(other, PRECISIONS["fp32"], exports.model("mimic"), exports.data()["valid"], log=lines.append)
    assert not report["passed"]
    failed = [c for c in report["checks"] if not c["passed"]]
    assert len(failed) >= 10  # all parity and SQNR checks; the metrics may survive by chance
    assert sum(line.strip().startswith("✗") for line in lines) == len(failed)
    with pytest.raises(ArtifactValidationError) as info:
        raise_if_failed(report, "mimic.fp32.onnx", tmp_path / "r.json")
    message = str(info.value)
    assert f"failed {len(failed)} of 13" in message and "the artifact was not written" in message
    assert all(c["check"] in message for c in failed)
    assert info.value.report is report


def test_classification_head_skips_task_metrics_only(exports):
    from mimic_edge.models import build_model

    model = build_model("mimic", out_dim=3).eval()
    lines = []
    report = validate(to_bytes(to_onnx(model)), PRECISIONS["fp32"], model, exports.data()["valid"], log=lines.append)
    assert report["passed"] and report["metrics"] == {}
    assert len(report["checks"]) == 10
    assert any("task metrics skipped" in line for line in lines)


@pytest.mark.parametrize("batch, lengths, admitted", [
    (4, (50, 50, 50), True), (5, (50, 50, 50), False), (1, (1, 50, 60), False), (1, (2, 50, 60), True),
])
def test_limits_admit_what_a_profile_admits(batch, lengths, admitted):
    from mimic_edge.export.judge import Limits

    assert Limits(max_batch=4, seq=(2, 60)).admits(batch, lengths) is admitted
    assert Limits().admits(batch, lengths)


def test_validation_runs_the_artifact_through_the_runtime_loader(monkeypatch):
    """What is validated is what ships: a fault in the predictor users load fails validation."""
    from mimic_edge.data import synthetic
    from mimic_edge.models import build_model
    from mimic_edge.runtime.onnx_predictor import OnnxPredictor

    torch.manual_seed(0)
    model = build_model("mimic").eval()
    valid = synthetic("mosi", n=(1, 16, 1), seed=0)["valid"]
    real_predict = OnnxPredictor.predict
    monkeypatch.setattr(OnnxPredictor, "predict", lambda self, *x: real_predict(self, *x) + 0.5)
    report = validate(to_bytes(to_onnx(model)), PRECISIONS["fp32"], model, valid, log=lambda _: None)
    assert not report["passed"]
    assert all(not c["passed"] for c in report["checks"] if "max_abs" in c["check"])


def test_a_saved_reference_judges_like_the_model_itself(exports, tmp_path):
    """The reference scores travel as an .npz: an artifact judged elsewhere (another CPU, no
    torch) gets the report it gets here."""
    from mimic_edge.export.judge import Reference, judge
    from mimic_edge.export.validate import predictor_runner, reference
    from mimic_edge.runtime.onnx_predictor import OnnxPredictor

    model, valid = exports.model("mimic"), exports.data()["valid"]
    artifact = OnnxPredictor.from_bytes(to_bytes(exports.converted("mimic", "int8")), "int8.onnx")
    here = reference(model, valid)
    there = Reference.load(here.save(tmp_path / "reference.npz"))
    thresholds = PRECISIONS["int8"].thresholds
    a, b = (judge(predictor_runner(artifact), ref, thresholds, "int8", log=lambda _: None) for ref in (here, there))
    assert a["checks"] == b["checks"] and a["passed"] and len(a["checks"]) == 13


def test_a_foreign_reference_file_is_one_clear_error(tmp_path):
    from mimic_edge.errors import ArtifactError
    from mimic_edge.export.judge import Reference

    (tmp_path / "x.npz").write_bytes(b"not an npz")
    np.savez(tmp_path / "other.npz", a=np.zeros(2))
    for name in ("x.npz", "other.npz", "missing.npz"):
        with pytest.raises(ArtifactError, match="expected a reference saved by Reference.save"):
            Reference.load(tmp_path / name)


def test_judging_imports_no_torch():
    import subprocess
    import sys

    code = "import sys, mimic_edge.export.judge, mimic_edge.runtime.host; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
