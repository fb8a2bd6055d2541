"""Artifacts with per-sample lengths (`--lengths`): a batch padded to one length is scored as each
sample alone, in every precision, through the predictor users run and the predict command; the
validation judges exactly that; padding values change nothing."""
from __future__ import annotations

import json

import numpy as np
import pytest

from mimic_edge.cli import main
from mimic_edge.config import LENGTHS_INPUTS, MODALITIES
from mimic_edge.data import synthetic
from mimic_edge.errors import ConfigError, InputError
from mimic_edge.export import PRECISIONS, ExportConfig, export
from mimic_edge.runtime import load

SMALL = dict(calib_samples=64, valid_samples=64)
BATCH_INDEPENDENT = {key: entry for key, entry in PRECISIONS.items() if entry.batch_independent}


@pytest.fixture(scope="module")
def checkpoint(exports, tmp_path_factory):
    from mimic_edge import save_checkpoint

    return str(save_checkpoint(exports.model("mimic"), tmp_path_factory.mktemp("ckpt") / "mimic").with_suffix(""))


@pytest.fixture(scope="module")
def with_lengths(checkpoint, tmp_path_factory):
    """key → the artifact exported with --lengths (its validation passed)."""
    out = tmp_path_factory.mktemp("lengths")
    made = {}
    for key, entry in BATCH_INDEPENDENT.items():
        result = export(ExportConfig(checkpoint=checkpoint, precision=entry.name, target=entry.target, lengths=True,
                                     out=str(out), **SMALL), log=lambda _: None)
        made[key] = result
    return made


def padded_batch(seed=0):
    """Four samples padded to 50 steps with real data past their lengths, lengths per modality."""
    valid = synthetic("mosi", n=(1, 4, 1), seed=seed)["valid"]
    lengths = {m: np.array(ns, np.int64) for m, ns in zip(MODALITIES, ([50, 9, 30, 1], [3, 50, 22, 17], [40, 6, 50, 2]))}
    return {m: valid[m] for m in MODALITIES}, lengths


@pytest.mark.parametrize("key", list(BATCH_INDEPENDENT))
def test_a_padded_batch_scores_each_sample_as_alone(with_lengths, key):
    """Padded and alone run the same graph on the same values but for the padding, in other batch
    shapes: they differ by float rounding (a GEMM's sums in another order), not by the padding.
    Bound: the precision's own max_abs gate, which the artifact met against PyTorch on both."""
    result = with_lengths[key]
    predictor = load(result.onnx_path)
    assert predictor.takes_lengths and "padded" in json.dumps(result.report["checks"])
    x, lengths = padded_batch()
    padded = predictor.predict(*(x[m] for m in MODALITIES), lengths=lengths)
    alone = np.concatenate([predictor.predict(*(x[m][i:i + 1, :lengths[m][i]] for m in MODALITIES))
                            for i in range(4)])
    np.testing.assert_allclose(padded, alone, rtol=0, atol=PRECISIONS[key].thresholds.max_abs)
    scrambled = {m: x[m].copy() for m in MODALITIES}
    for m in MODALITIES:
        for i, n in enumerate(lengths[m]):
            scrambled[m][i, n:] = 1e3  # other padding values: the same scores, exactly
    np.testing.assert_array_equal(predictor.predict(*(scrambled[m] for m in MODALITIES), lengths=lengths), padded)


def test_fp32_padded_equals_pytorch_alone_within_the_fp32_bound(exports, with_lengths):
    import torch

    x, lengths = padded_batch(seed=1)
    model = exports.model("mimic")
    with torch.no_grad():
        alone = np.concatenate([model(*(torch.from_numpy(x[m][i:i + 1, :lengths[m][i]]) for m in MODALITIES)).numpy()
                                for i in range(4)])
    got = load(with_lengths["fp32"].onnx_path).predict(*(x[m] for m in MODALITIES), lengths=lengths)
    np.testing.assert_allclose(got, alone, rtol=0, atol=PRECISIONS["fp32"].thresholds.max_abs)


def test_without_lengths_every_step_counts_and_lengths_are_checked(with_lengths, checkpoint):
    predictor = load(with_lengths["fp32"].onnx_path)
    x, lengths = padded_batch()
    full = {m: np.full(4, 50, np.int64) for m in MODALITIES}
    np.testing.assert_array_equal(predictor.predict(*(x[m] for m in MODALITIES)),
                                  predictor.predict(*(x[m] for m in MODALITIES), lengths=full))
    for bad, message in [({"text": np.array([0, 1, 1, 1])}, r"lengths\[text\]: expected values in \[1, 50\]"),
                         ({"text": np.array([1.5, 1, 1, 1])}, r"lengths\[text\]: expected integers, found dtype float64"),
                         ({"text": np.array([1, 1])}, r"lengths\[text\]: expected shape \(4,\), found \(2,\)"),
                         ([1, 2, 3, 4], r"lengths: expected a dict")]:
        with pytest.raises(InputError, match=message):
            predictor.predict(*(x[m] for m in MODALITIES), lengths=bad)
    plain = export(ExportConfig(checkpoint=checkpoint, out=str(with_lengths["fp32"].onnx_path.parent / "plain"),
                                **SMALL), log=lambda _: None)
    with pytest.raises(InputError, match="this artifact has no lengths inputs"):
        load(plain.onnx_path).predict(*(x[m] for m in MODALITIES), lengths=lengths)


def test_predict_reads_the_lengths_beside_the_inputs(with_lengths, tmp_path, capsys):
    x, lengths = padded_batch()
    np.savez(tmp_path / "padded.npz", **x, **{LENGTHS_INPUTS[m]: n for m, n in lengths.items()})
    assert main(["predict", "--model", str(with_lengths["fp32"].onnx_path), "--input", str(tmp_path / "padded.npz"),
                 "--json"]) == 0
    scores = np.array(json.loads(capsys.readouterr().out)["scores"], np.float32)
    expected = load(with_lengths["fp32"].onnx_path).predict(*(x[m] for m in MODALITIES), lengths=lengths)
    np.testing.assert_array_equal(scores, expected)


def test_the_reference_with_a_padded_case_survives_save_and_load(exports, tmp_path):
    from mimic_edge.export.judge import Reference
    from mimic_edge.export.validate import reference

    ref = reference(exports.model("mimic"), {k: v[:16] for k, v in exports.data()["valid"].items()}, padded=True)
    loaded = Reference.load(ref.save(tmp_path / "ref.npz"))
    (case,) = [c for c in loaded.parity if "padded" in c.name]
    assert set(case.inputs) == {*MODALITIES, *LENGTHS_INPUTS.values()} and case.inputs["text_lengths"].dtype == np.int64


@pytest.mark.parametrize("options, message", [
    (dict(precision="int8", target="cpu"), "int8-cpu quantizes activations with scales computed over the whole batch"),
])
def test_lengths_only_where_they_hold(tmp_path, options, message):
    with pytest.raises(ConfigError, match=message):
        export(ExportConfig(lengths=True, out=str(tmp_path), **options), log=lambda _: None)


def test_dynamic_int8_scores_depend_on_the_batch(exports, tmp_path):
    """Why int8-cpu refuses --lengths: its activation scales come from the whole batch, so another
    sample in the batch (or padding) moves a sample's score; static-scale precisions do not."""
    x, _ = padded_batch()
    loud = {m: np.concatenate([x[m][:1], 1e3 * np.ones_like(x[m][:1])]) for m in MODALITIES}  # + a loud sample
    scores = {}
    for key in ("int8", "int8-cpu"):
        entry = PRECISIONS[key]
        path = export(ExportConfig(precision=entry.name, target=entry.target, out=str(tmp_path), **SMALL),
                      log=lambda _: None).onnx_path
        predictor = load(path)
        scores[key] = (predictor.predict(*(x[m][:1] for m in MODALITIES))[0, 0],
                       predictor.predict(*(loud[m] for m in MODALITIES))[0, 0])
    assert scores["int8"][0] == pytest.approx(scores["int8"][1], abs=1e-6)
    assert abs(scores["int8-cpu"][0] - scores["int8-cpu"][1]) > 1e-5  # measured 3e-4: 300x the static one's bound


def test_misa_takes_lengths_too(exports, tmp_path):
    result = export(ExportConfig(model="misa", lengths=True, out=str(tmp_path), **SMALL), log=lambda _: None)
    x, lengths = padded_batch()
    predictor = load(result.onnx_path)
    padded = predictor.predict(*(x[m] for m in MODALITIES), lengths=lengths)
    alone = np.concatenate([predictor.predict(*(x[m][i:i + 1, :lengths[m][i]] for m in MODALITIES)) for i in range(4)])
    np.testing.assert_allclose(padded, alone, rtol=0, atol=PRECISIONS["fp32"].thresholds.max_abs)


def test_an_engine_of_a_lengths_graph_has_them_in_its_profile_and_is_judged_padded(checkpoint, tmp_path, monkeypatch):
    """No TensorRT here: a stand-in builder records the profile it is given, and the ONNX artifact
    plays the engine, so the engine's validation (with its padded case) runs for real."""
    from pathlib import Path

    from mimic_edge.export import pipeline
    from mimic_edge.export.tensorrt import BuiltEngine

    shapes = {}

    def build(onnx_bytes, engine_path, entry, profile, dims, timing_cache, lengths=False):
        shapes.update(profile.shapes(dims, lengths))
        engine_path.write_bytes(b"plan:" + onnx_bytes[:64])
        return BuiltEngine(engine_path, "10.3.0", "Stand-in GPU", "8.7")

    class StandIn:
        backend, takes_lengths = "tensorrt", True

        def __init__(self, path):
            self.inner = load(next(Path(path).parent.parent.glob("*.onnx")))

        def predict(self, text, audio, vision, lengths=None):
            return self.inner.predict(text, audio, vision, lengths=lengths)

    monkeypatch.setattr(pipeline, "unavailable_reason", lambda: None)
    monkeypatch.setattr(pipeline, "build_engine", build)
    monkeypatch.setattr(pipeline, "load", StandIn)
    result = export(ExportConfig(checkpoint=checkpoint, lengths=True, engine=True, batch="1:4:8", out=str(tmp_path),
                                 **SMALL), log=lambda _: None)
    assert {LENGTHS_INPUTS[m]: shapes[LENGTHS_INPUTS[m]] for m in MODALITIES} == {
        LENGTHS_INPUTS[m]: ((1,), (4,), (8,)) for m in MODALITIES}
    report = json.loads((tmp_path / "mimic.fp32.engine.validation.json").read_text())
    assert report["passed"] and report["lengths"] is True and result.engine_path.is_file()
    assert any("padded" in c["check"] for c in report["checks"])


@pytest.mark.slow  # one package compile: ~20 s on 2 cores
def test_a_package_with_lengths_scores_a_padded_batch_as_each_alone(checkpoint, tmp_path):
    result = export(ExportConfig(checkpoint=checkpoint, format="pt2", lengths=True, out=str(tmp_path), **SMALL),
                    log=lambda _: None)
    assert result.report["passed"] and any("padded" in c["check"] for c in result.report["checks"])
    predictor = load(result.pt2_path)
    assert predictor.takes_lengths and predictor.sidecar["lengths"] is True
    x, lengths = padded_batch()
    padded = predictor.predict(*(x[m] for m in MODALITIES), lengths=lengths)
    alone = np.concatenate([predictor.predict(*(x[m][i:i + 1, :lengths[m][i]] for m in MODALITIES))
                            for i in range(4)])
    np.testing.assert_allclose(padded, alone, rtol=0, atol=PRECISIONS["fp32"].thresholds.max_abs)
    full = predictor.predict(*(x[m] for m in MODALITIES))  # no lengths: every step counts
    assert not np.allclose(full, padded, atol=1e-3)
