"""Training: the validation loss falls, the best checkpoint is the best epoch's model, early
stopping, Ctrl-C keeps the best checkpoint, bad data is refused."""
import json

import numpy as np
import pytest

from mimic_edge.checkpoint import load_checkpoint, read_checkpoint_meta
from mimic_edge.data import synthetic
from mimic_edge.errors import ConfigError, DataError
from mimic_edge.evaluate import predict
from mimic_edge.train import TrainConfig, train

# MIMIC on the GloVe preset; MISA on mmsa-mosi (BERT-feature text: no text LSTM) to stay fast.
CASES = {"mimic": "mosi", "misa": "mmsa-mosi"}


@pytest.fixture(scope="module", params=list(CASES))
def trained(request, tmp_path_factory):
    model, preset = request.param, CASES[request.param]
    data = synthetic(preset, n=(192, 64, 32), seed=0, seq_len=6)
    out = tmp_path_factory.mktemp(model)
    # lr 1e-3: a few epochs on 192 samples must show learning; the default 1e-4 needs more
    config = TrainConfig(model=model, preset=preset, lr=1e-3, max_epochs=4, patience=10)
    return data, out, train(data, config, out)


def test_validation_loss_falls(trained):
    data, _, result = trained
    losses = [e["valid_loss"] for e in result.history]
    y = data["valid"]["regression_labels"]
    assert result.epochs == 4 and result.stopped == "max epochs"
    assert min(losses[1:]) < losses[0], losses
    assert result.best_valid_loss < np.mean((y - data["train"]["regression_labels"].mean()) ** 2), losses


def test_checkpoint_is_the_best_epoch(trained):
    data, out, result = trained
    losses = [e["valid_loss"] for e in result.history]
    assert result.best_epoch == 1 + int(np.argmin(losses))
    model = load_checkpoint(out / "best")
    pred = predict(model, data["valid"])
    mse = np.mean((pred - data["valid"]["regression_labels"]) ** 2)
    assert mse == pytest.approx(result.best_valid_loss, rel=1e-5)
    extra = read_checkpoint_meta(out / "best")["extra"]
    assert extra["epoch"] == result.best_epoch and extra["config"]["lr"] == 1e-3
    assert extra["valid"]["MAE"] == pytest.approx(result.history[result.best_epoch - 1]["valid"]["MAE"])


def test_log_and_summary(trained):
    _, out, result = trained
    lines = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in lines] == [1, 2, 3, 4]
    assert {"train", "valid_loss", "valid", "seconds", "cpu_seconds", "best"} <= set(lines[0])
    assert "task" in lines[0]["train"] and "MAE" in lines[0]["valid"]
    assert [e["best"] for e in lines].index(True) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["best_epoch"] == result.best_epoch and summary["stopped"] == "max epochs"
    assert summary["params"] == result.params


@pytest.fixture(scope="module")
def tiny():
    return synthetic("mosi", n=(32, 16, 16), seed=1, seq_len=4)


def test_early_stopping_after_patience(tiny, tmp_path):
    # lr 0: the weights never change, so no epoch after the first improves on it
    result = train(tiny, TrainConfig(lr=0.0, max_epochs=50, patience=3), tmp_path)
    assert (result.best_epoch, result.epochs, result.stopped) == (1, 4, "early stop")


def test_interrupt_keeps_the_best_checkpoint(tiny, tmp_path):
    def interrupt(entry):
        if entry["epoch"] == 2:
            raise KeyboardInterrupt

    result = train(tiny, TrainConfig(lr=1e-3, max_epochs=50), tmp_path, on_epoch=interrupt)
    assert result.stopped == "interrupted" and result.epochs == 2
    assert read_checkpoint_meta(tmp_path / "best")["extra"]["epoch"] == result.best_epoch
    assert json.loads((tmp_path / "summary.json").read_text())["stopped"] == "interrupted"
    load_checkpoint(tmp_path / "best")


def test_missing_split_and_wrong_dims(tiny, tmp_path):
    with pytest.raises(DataError, match=r"needs a 'valid' split: found only \['test', 'train'\]"):
        train({"train": tiny["train"], "test": tiny["test"]}, TrainConfig(), tmp_path)
    with pytest.raises(DataError, match="train split: text: expected feature dim 768, found 300"):
        train(tiny, TrainConfig(preset="mosi-bert"), tmp_path)
    assert not (tmp_path / "best.safetensors").exists()


def test_ctrl_c_during_a_checkpoint_write_waits_for_both_files(tiny, tmp_path, monkeypatch):
    import os
    import signal

    import mimic_edge.train as train_module

    real_save = train_module.save_checkpoint

    def save_interrupted_between_files(model, path, extra):
        real_save(model, path, extra)  # the weights and the JSON, with Ctrl-C arriving in between
        os.kill(os.getpid(), signal.SIGINT)
        real_save(model, path, {**extra, "second": True})

    monkeypatch.setattr(train_module, "save_checkpoint", save_interrupted_between_files)
    result = train(tiny, TrainConfig(lr=1e-3, max_epochs=5), tmp_path)
    assert result.stopped == "interrupted" and result.epochs == 1
    assert read_checkpoint_meta(tmp_path / "best")["extra"]["second"] is True


def test_labels_of_the_wrong_shape_are_refused(tiny, tmp_path):
    """32 samples with labels shaped (16, 2): flattened, they would count right and train on
    scores of the wrong samples."""
    bad = {**tiny, "train": {**tiny["train"], "regression_labels": tiny["train"]["regression_labels"].reshape(16, 2)}}
    with pytest.raises(DataError, match=r"train split: regression_labels: expected shape \(32,\) or \(32, 1\), "
                                        r"one score per sample, found \(16, 2\)"):
        train(bad, TrainConfig(max_epochs=1), tmp_path)
    assert not (tmp_path / "best.safetensors").exists()


def test_column_labels_train_like_flat_ones(tiny, tmp_path):
    """(N, 1) labels (MMSA's layout) give the same run as (N,): no (N,) - (N, 1) broadcast."""
    column = {s: {**split, "regression_labels": split["regression_labels"][:, None]} for s, split in tiny.items()}
    flat = train(tiny, TrainConfig(lr=1e-3, max_epochs=2), tmp_path / "flat")
    col = train(column, TrainConfig(lr=1e-3, max_epochs=2), tmp_path / "column")
    assert [e["valid_loss"] for e in col.history] == [e["valid_loss"] for e in flat.history]



def test_a_previous_run_is_never_replaced_without_force(tiny, tmp_path):
    """A finished run's best survives a second run into the same --out: refused, files untouched;
    with force the folder holds the new run only."""
    first = train(tiny, TrainConfig(lr=1e-3, max_epochs=3), tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(ConfigError, match=rf"holds a previous run \(best epoch {first.best_epoch}, validation loss "
                                          r".*\): expected a new or empty --out; use --force"):
        train(tiny, TrainConfig(lr=0.0, max_epochs=1), tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    second = train(tiny, TrainConfig(lr=0.0, max_epochs=1), tmp_path, force=True)
    assert second.epochs == 1 and len((tmp_path / "log.jsonl").read_text().splitlines()) == 1
    assert read_checkpoint_meta(tmp_path / "best")["extra"]["epoch"] == 1


def test_the_summary_always_describes_the_checkpoint_on_disk(tiny, tmp_path, monkeypatch):
    """Killed while a new best is written, a run leaves no summary of the previous best: the summary
    goes before the checkpoint is replaced and comes back after; while running it says so."""
    import mimic_edge.train as training

    seen = []
    save = training.save_checkpoint

    def save_and_look(model, path, extra):
        seen.append((tmp_path / "summary.json").exists())  # while the new best is written
        return save(model, path, extra)

    monkeypatch.setattr(training, "save_checkpoint", save_and_look)

    def look(entry):
        summary = json.loads((tmp_path / "summary.json").read_text())
        assert summary["stopped"] == "running"
        assert summary["best_epoch"] == read_checkpoint_meta(tmp_path / "best")["extra"]["epoch"]

    result = train(tiny, TrainConfig(lr=1e-3, max_epochs=4), tmp_path, on_epoch=look)
    assert seen and not any(seen)
    assert json.loads((tmp_path / "summary.json").read_text())["best_epoch"] == result.best_epoch


def test_cli_train_into_a_previous_run_is_one_line(tmp_path, capsys):
    from mimic_edge.cli import main

    args = ["train", "--data", "synthetic", "--synthetic-size", "32,16,16", "--max-epochs", "1", "--no-progress",
            "--out", str(tmp_path)]
    assert main(args) == 0
    assert main(args) == 1
    assert capsys.readouterr().err.startswith(f"mimic-edge train: error: {tmp_path} holds a previous run (best epoch 1")
    assert main([*args, "--force"]) == 0


def test_a_full_disk_while_training_is_one_line_and_keeps_the_previous_best(tiny, tmp_path, monkeypatch, capsys):
    import errno
    import pathlib

    from mimic_edge.cli import main

    write_bytes, calls = pathlib.Path.write_bytes, []

    def full_from_the_second_checkpoint(self, data):
        if self.name.startswith(".best.safetensors."):
            calls.append(self)
            if len(calls) > 1:
                raise OSError(errno.ENOSPC, "No space left on device")
        return write_bytes(self, data)

    monkeypatch.setattr(pathlib.Path, "write_bytes", full_from_the_second_checkpoint)
    args = ["train", "--data", "synthetic", "--synthetic-size", "32,16,16", "--max-epochs", "5", "--lr", "1e-3",
            "--no-progress", "--out", str(tmp_path)]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"mimic-edge train: error: could not write {tmp_path / 'best.safetensors'}: No space left")
    assert read_checkpoint_meta(tmp_path / "best")["extra"]["epoch"] == 1  # the first best, whole
    load_checkpoint(tmp_path / "best")
