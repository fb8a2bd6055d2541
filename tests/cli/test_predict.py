"""`mimic-edge predict`: the runtime's scores for the samples in a file, as text or JSON."""
import json
import re
import subprocess
import sys

import numpy as np
import pytest

from mimic_edge.cli import main
from mimic_edge.data import synthetic
from mimic_edge.runtime import load


@pytest.fixture(scope="module")
def samples_npz(tmp_path_factory):
    test = synthetic("mosi", n=(1, 1, 7), seed=4)["test"]
    path = tmp_path_factory.mktemp("predict") / "samples.npz"
    np.savez(path, **test)  # also carries labels and ids: extra arrays are ignored
    return path


def expected_scores(model, npz):
    x = np.load(npz)
    return load(model).predict(x["text"], x["audio"], x["vision"])


@pytest.mark.parametrize("kind", ["int8", "checkpoint"])
def test_prints_one_line_per_sample(artifacts, samples_npz, capsys, kind):
    model = artifacts.checkpoint if kind == "checkpoint" else artifacts.onnx(kind)
    assert main(["predict", "--model", str(model), "--input", str(samples_npz)]) == 0
    printed = np.array([[float(v) for v in line.split()] for line in capsys.readouterr().out.splitlines()], np.float32)
    np.testing.assert_array_equal(printed, expected_scores(model, samples_npz))


def test_json(artifacts, samples_npz, capsys):
    model = artifacts.onnx("int8")
    assert main(["predict", "--model", str(model), "--input", str(samples_npz), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"] == str(model) and report["backend"] == "onnxruntime"
    np.testing.assert_array_equal(np.array(report["scores"], np.float32), expected_scores(model, samples_npz))


@pytest.mark.parametrize("case, message", [
    ("model", "error: .*garbage.onnx: expected an ONNX model, found a corrupt or foreign file"),
    ("input", r"error: .*missing array\(s\) \['vision'\]"),
    ("dims", "error: text: expected feature dim 300, found 768"),
])
def test_errors_are_one_line_without_traceback(artifacts, tmp_path, case, message):
    model, npz = artifacts.onnx("int8"), tmp_path / "in.npz"
    dims = {"text": 768 if case == "dims" else 300, "audio": 74, "vision": 47}
    arrays = {m: np.zeros((2, 5, d), np.float32) for m, d in dims.items()}
    np.savez(npz, **{m: a for m, a in arrays.items() if case != "input" or m != "vision"})
    if case == "model":
        model = tmp_path / "garbage.onnx"
        model.write_bytes(b"\x08\x07garbage")
    result = subprocess.run([sys.executable, "-m", "mimic_edge.cli", "predict", "--model", str(model),
                             "--input", str(npz)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr
    assert re.search(rf"^mimic-edge predict: {message}", result.stderr), result.stderr


def test_a_foreign_graph_runs_only_with_allow_foreign(artifacts, samples_npz, tmp_path, capsys):
    import onnx

    model = onnx.load(artifacts.onnx("fp32"))
    model.producer_name = "someone-else"  # same graph, not stamped by mimic-edge's export
    del model.metadata_props[:]
    foreign = tmp_path / "foreign.onnx"
    onnx.save(model, foreign)
    assert main(["predict", "--model", str(foreign), "--input", str(samples_npz)]) == 1
    err = capsys.readouterr().err
    assert "expected an ONNX model exported by mimic-edge" in err and "--allow-foreign" in err and err.count("\n") == 1
    assert main(["predict", "--model", str(foreign), "--input", str(samples_npz), "--allow-foreign"]) == 0
    lines = capsys.readouterr().out.splitlines()
    expected = expected_scores(artifacts.onnx("fp32"), samples_npz)
    np.testing.assert_allclose([float(line) for line in lines], expected[:, 0], rtol=0, atol=1e-6)


def test_warnings_are_one_line(artifacts, tmp_path, capsys):
    from mimic_edge.data import save_npz, synthetic as make

    dataset = make("mosi", n=(40, 20, 10), seed=0)
    for split in dataset.values():
        split["regression_labels"] = split["regression_labels"] * 10  # far outside MOSI's [-3, 3]
    path = tmp_path / "loud.npz"
    save_npz(path, dataset)
    assert main(["eval", "--checkpoint", str(artifacts.checkpoint), "--data", str(path)]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err and all(line.startswith("mimic-edge eval: warning: ") for line in err), err


def test_help_names_every_artifact_kind(capsys):
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    out = capsys.readouterr().out
    assert all(kind in out for kind in (".onnx", ".engine", ".pt2", ".safetensors"))
