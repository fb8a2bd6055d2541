"""Training (paper §4.1, docs/design.md §8): Adam lr 1e-4, batch 64, early stopping on the validation
loss with patience 10; the best model is kept as a checkpoint and its epoch is the
"convergence epoch" of paper Table 3.

Files in `out_dir`:
  best.safetensors + best.json   the best checkpoint (training record under "extra")
  log.jsonl                      one JSON object per epoch: losses, validation metrics, time
  summary.json                   how the run ended: best epoch, epochs run, seconds, reason

Ctrl-C stops training and keeps the best checkpoint written so far. A folder that holds another
run's files is refused unless `force` (then they are removed first): a run never replaces another
run's best without being asked. summary.json, when present, always describes the checkpoint
beside it: it is removed before each new best is written and written again after.
"""
from __future__ import annotations

import json
import math
import signal
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from mimic_edge.checkpoint import save_checkpoint
from mimic_edge.config import DEFAULT_PRESET
from mimic_edge.data import batches, check_split
from mimic_edge.errors import ConfigError, DataError
from mimic_edge.evaluate import json_safe, predict
from mimic_edge.io import atomic_write, atomic_write_json, check_writable
from mimic_edge.metrics import mosi_metrics
from mimic_edge.models import build_model


@dataclass(frozen=True)
class TrainConfig:
    model: str = "mimic"  # "mimic" | "misa"
    preset: str = DEFAULT_PRESET
    lr: float = 1e-4  # paper §4.1
    batch_size: int = 64  # paper §4.1
    patience: int = 10  # paper §4.1: epochs without a better validation loss before stopping
    max_epochs: int = 200
    seed: int = 0  # model initialisation and batch order
    overrides: dict = field(default_factory=dict)  # model config fields (ablations, smaller models)


@dataclass
class TrainResult:
    checkpoint: Path
    best_epoch: int  # the convergence epoch (paper Table 3); 0 if no epoch finished
    best_valid_loss: float
    epochs: int  # epochs completed
    stopped: str  # "early stop" | "max epochs" | "interrupted"
    seconds: float
    params: int
    history: list[dict]


RUN_FILES = ("best.safetensors", "best.json", "log.jsonl", "summary.json")


def train(dataset: dict, config: TrainConfig, out_dir: str | Path, data_name: str = "synthetic",
          progress: bool = False, on_epoch: Callable[[dict], None] | None = None, force: bool = False) -> TrainResult:
    """Train `config.model` on dataset["train"], select on dataset["valid"]; see the module doc.
    `force`: replace the files of a previous run in `out_dir` (else a ConfigError)."""
    out_dir = check_writable(out_dir, "--out")
    _claim(out_dir, force)
    for name in ("train", "valid"):
        if name not in dataset:
            raise DataError(f"training needs a {name!r} split: found only {sorted(dataset)}")
    torch.manual_seed(config.seed)
    model = build_model(config.model, config.preset, **config.overrides)
    for name in ("train", "valid"):
        check_split(dataset[name], model.config.dims, name)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    checkpoint = out_dir / "best"
    record = {"config": {**asdict(config), "data": data_name}, "params": model.num_params()}
    history: list[dict] = []
    best_loss, best_epoch, stopped = math.inf, 0, "max epochs"
    start = time.perf_counter()
    from tqdm import tqdm

    bar = tqdm(range(1, config.max_epochs + 1), desc=f"{config.model} {config.preset}", unit="epoch",
               file=sys.stderr, disable=not progress, dynamic_ncols=True)
    try:
        for epoch in bar:
            epoch_start, epoch_cpu = time.perf_counter(), time.process_time()
            train_parts = train_epoch(model, optimizer, dataset["train"], config.batch_size,
                                      shuffle_seed=config.seed * 1_000_003 + epoch)
            valid_pred = predict(model, dataset["valid"])
            # check_split admits (N,) and (N, 1); (N,) - (N, 1) would broadcast to (N, N)
            valid_truth = np.asarray(dataset["valid"]["regression_labels"]).reshape(-1)
            valid_loss = float(np.mean((valid_pred - valid_truth) ** 2))  # task loss (MSE), as MISA's code
            improved = valid_loss < best_loss
            entry = {"epoch": epoch, "train": train_parts, "valid_loss": valid_loss,
                     "valid": mosi_metrics(valid_pred, valid_truth), "best": improved,
                     "seconds": time.perf_counter() - epoch_start, "cpu_seconds": time.process_time() - epoch_cpu,
                     "elapsed": time.perf_counter() - start}
            history.append(entry)
            _write_log(out_dir / "log.jsonl", history)
            if improved:
                best_loss, best_epoch = valid_loss, epoch
                with _interrupt_deferred():  # weights and JSON always from the same epoch
                    (out_dir / "summary.json").unlink(missing_ok=True)  # it would describe the previous best
                    save_checkpoint(model, checkpoint, extra=json_safe({
                        **record, "epoch": epoch, "valid_loss": valid_loss, "valid": entry["valid"]}))
                    _write_summary(out_dir, record, checkpoint, best_epoch, best_loss, len(history), "running",
                                   time.perf_counter() - start)
            bar.set_postfix(train=f"{train_parts['loss']:.3f}", valid=f"{valid_loss:.3f}", best=best_epoch)
            if on_epoch is not None:
                on_epoch(entry)
            if epoch - best_epoch >= config.patience:
                stopped = "early stop"
                break
    except KeyboardInterrupt:
        stopped = "interrupted"
    finally:
        bar.close()
    result = TrainResult(checkpoint, best_epoch, best_loss, len(history), stopped,
                         time.perf_counter() - start, model.num_params(), history)
    _write_summary(out_dir, record, checkpoint, best_epoch, best_loss, result.epochs, stopped, result.seconds)
    return result


def _claim(out_dir: Path, force: bool) -> None:
    """Refuse a folder with another run's files, naming its best; with `force`, remove them."""
    found = [name for name in RUN_FILES if (out_dir / name).exists()]
    if not found:
        return
    if not force:
        try:
            extra = json.loads((out_dir / "best.json").read_text()).get("extra", {})
            best = f"best epoch {extra['epoch']}, validation loss {extra['valid_loss']:.4g}"
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            best = f"{', '.join(found)}"
        raise ConfigError(f"{out_dir} holds a previous run ({best}): expected a new or empty --out; use --force "
                          f"to replace that run")
    for name in RUN_FILES:
        (out_dir / name).unlink(missing_ok=True)


def _write_summary(out_dir: Path, record: dict, checkpoint: Path, best_epoch: int, best_loss: float, epochs: int,
                   stopped: str, seconds: float) -> None:
    """summary.json: how the run stands ("running" until it ends) and the checkpoint on disk."""
    atomic_write_json(out_dir / "summary.json", json_safe({
        **record, "checkpoint": str(checkpoint), "best_epoch": best_epoch, "best_valid_loss": best_loss,
        "epochs": epochs, "stopped": stopped, "seconds": seconds, "seconds_per_epoch": seconds / max(epochs, 1)}))


def train_epoch(model: torch.nn.Module, optimizer: torch.optim.Optimizer, split: dict, batch_size: int,
                shuffle_seed: int) -> dict[str, float]:
    """One pass over `split` in shuffled batches; returns the batch means of the loss parts."""
    model.train()
    sums: dict[str, float] = {}
    count = 0
    for b in batches(split, batch_size, shuffle_seed):
        loss, parts = model.loss(b["text"], b["audio"], b["vision"], b["target"], b["lengths"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + v
        count += 1
    return {k: v / count for k, v in sums.items()}


@contextmanager
def _interrupt_deferred():
    """Hold a Ctrl-C that arrives inside the block until the block is done, then raise it."""
    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield
        return
    caught = []
    previous = signal.signal(signal.SIGINT, lambda *_: caught.append(True))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


def _write_log(path: Path, history: list[dict]) -> None:
    """The whole log, rewritten atomically each epoch (a few hundred lines at most)."""
    text = "".join(json.dumps(json_safe(entry), sort_keys=True) + "\n" for entry in history)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))
