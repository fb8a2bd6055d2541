"""`mimic-edge eval`: metric table, modality-removal rows, similarity table, JSON; errors."""
import json

import pytest
import torch

from mimic_edge.checkpoint import save_checkpoint
from mimic_edge.cli import main
from mimic_edge.data import save_npz, synthetic
from mimic_edge.models import build_model


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "best"
    save_checkpoint(build_model("misa", "mmsa-mosi"), path)
    return path


def test_full_report(checkpoint, tmp_path, capsys):
    out = tmp_path / "eval.json"
    code = main(["eval", "--checkpoint", str(checkpoint), "--data", "synthetic", "--synthetic-size", "6,2,5",
                 "--drop-modality", "all", "--similarity", "--json", str(out)])
    stdout = capsys.readouterr().out
    assert code == 0
    assert "data: synthetic (seed 0, 6/2/5), test split, 5 samples" in stdout
    for row in ("| all modalities |", "| w/o text |", "| w/o audio |", "| w/o vision |", "| predict the train mean |"):
        assert row in stdout
    assert "| model | audio-text | audio-vision | text-vision |" in stdout and "| misa |" in stdout
    report = json.loads(out.read_text())
    assert [r["setting"] for r in report["rows"]] == ["all modalities", "w/o text", "w/o audio", "w/o vision",
                                                      "predict the train mean"]
    assert report["rows"][-1]["Corr"] is None  # NaN → null: strict JSON
    assert set(report["similarity"]) == {"audio-text", "audio-vision", "text-vision"}


def test_one_drop_and_a_test_only_file(checkpoint, tmp_path, capsys):
    path = save_npz(tmp_path / "test.npz", {"test": synthetic("mmsa-mosi", n=(1, 1, 3), seq_len=2)["test"]})
    assert main(["eval", "--checkpoint", str(checkpoint), "--data", str(path), "--drop-modality", "vision"]) == 0
    stdout = capsys.readouterr().out
    assert "| w/o vision |" in stdout and "w/o text" not in stdout and "train mean" not in stdout


@pytest.mark.parametrize("args, message", [
    (["--checkpoint", "nowhere/best", "--data", "synthetic"], "checkpoint config not found"),
    (["--data", "synthetic", "--synthetic-size", "3"], "at least 1 sample in each of train, valid, test, found (2, 0, 1)"),
])
def test_errors_are_one_line(checkpoint, capsys, args, message):
    if "--checkpoint" not in args:
        args = ["--checkpoint", str(checkpoint), *args]
    assert main(["eval", *args]) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_missing_split(checkpoint, tmp_path, capsys):
    path = save_npz(tmp_path / "v.npz", {"valid": synthetic("mmsa-mosi", n=(1, 1, 1), seq_len=2)["valid"]})
    assert main(["eval", "--checkpoint", str(checkpoint), "--data", str(path)]) == 1
    assert "no 'test' split: found ['valid']" in capsys.readouterr().err


def test_help_has_examples(capsys):
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    assert "--drop-modality all --similarity" in capsys.readouterr().out
