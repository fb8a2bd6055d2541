"""`mimic-edge train`: files written, summary printed, errors as one line."""
import json

import pytest

from mimic_edge.checkpoint import load_checkpoint
from mimic_edge.cli import main
from mimic_edge.data import save_npz, synthetic


def test_train_writes_checkpoint_log_and_summary(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "--model", "mimic", "--data", "synthetic", "--synthetic-size", "40", "--max-epochs", "2",
                 "--lr", "1e-3", "--threads", "1", "--no-progress", "--out", str(out)])
    stdout = capsys.readouterr().out
    assert code == 0
    assert "mimic (305,569 params) on synthetic (seed 0, 23/4/13): max epochs after 2 epoch(s)" in stdout
    assert "convergence epoch" in stdout
    assert len((out / "log.jsonl").read_text().splitlines()) == 2
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["data"] == "synthetic (seed 0, 23/4/13)" and summary["epochs"] == 2
    assert load_checkpoint(out / "best").config.preset == "mosi"


def test_train_from_a_file(tmp_path, capsys):
    path = save_npz(tmp_path / "d.npz", synthetic("mmsa-mosi", n=(8, 4, 4), seq_len=3))
    code = main(["train", "--model", "misa", "--preset", "mmsa-mosi", "--data", str(path), "--max-epochs", "1",
                 "--no-progress", "--out", str(tmp_path / "run")])
    assert code == 0 and f"on {path}: max epochs after 1 epoch(s)" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--data", "missing.pkl"], "error: dataset not found"),
    (["--data", "synthetic", "--synthetic-size", "1,2"], "at least 1 sample in each of train, valid, test"),
    (["--data", "synthetic", "--max-epochs", "0"], "--max-epochs must be >= 1"),
    (["--data", "synthetic", "--lr", "-1"], "--lr must be > 0"),
])
def test_errors_are_one_line(tmp_path, capsys, args, message):
    assert main(["train", "--out", str(tmp_path / "run"), "--no-progress", *args]) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and err.startswith("mimic-edge train: error:")


def test_wrong_dims_name_the_preset(tmp_path, capsys):
    path = save_npz(tmp_path / "d.npz", synthetic("mmsa-mosi", n=(2, 2, 2), seq_len=2))
    assert main(["train", "--data", str(path), "--out", str(tmp_path / "run")]) == 1
    assert "do not match preset 'mosi'" in capsys.readouterr().err and not (tmp_path / "run").exists()


def test_help_has_examples(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "examples:\n  mimic-edge train --model mimic --data synthetic" in capsys.readouterr().out
