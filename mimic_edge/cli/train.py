"""`mimic-edge train`: train MIMIC or MISA with early stopping; keeps the best checkpoint.

Adam (lr 1e-4), batch 64, early stopping on the validation MSE with patience 10 (paper §4.1).
Writes OUT/best.safetensors + OUT/best.json, OUT/log.jsonl (one line per epoch) and
OUT/summary.json. Ctrl-C stops and keeps the best checkpoint so far. An --out that holds a
previous run is refused unless --force.
"""
from __future__ import annotations

from mimic_edge.cli._common import EXAMPLES_HELP
from mimic_edge.cli._data import add_data_args, load_data
from mimic_edge.config import DEFAULT_MODEL, DEFAULT_PRESET, MODEL_NAMES, PRESETS

EXAMPLES = """examples:
  mimic-edge train --model mimic --data synthetic --out runs/mimic
  mimic-edge train --model misa --data synthetic --out runs/misa --seed 1
  mimic-edge train --model mimic --preset mmsa-mosi --data aligned_50.pkl --out runs/mosi
  mimic-edge train --model mimic --data synthetic --synthetic-size 200 --max-epochs 5 --out /tmp/quick
"""


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train MIMIC or MISA (early stopping, best checkpoint)",
                       description=__doc__, epilog=EXAMPLES, formatter_class=EXAMPLES_HELP)
    p.add_argument("--model", choices=MODEL_NAMES, default=DEFAULT_MODEL, help=f"(default: {DEFAULT_MODEL})")
    p.add_argument("--preset", choices=list(PRESETS), default=DEFAULT_PRESET,
                   help=f"feature dims; a data file must match (default: {DEFAULT_PRESET})")
    add_data_args(p)
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (new or empty, or --force)")
    p.add_argument("--force", action="store_true", help="replace the previous run in --out (its best checkpoint too)")
    g = p.add_argument_group("training")
    g.add_argument("--seed", type=int, default=0, help="model initialisation and batch order (default: 0)")
    g.add_argument("--max-epochs", type=int, default=200, help="(default: 200)")
    g.add_argument("--patience", type=int, default=10, help="epochs without improvement before stopping (default: 10)")
    g.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate (default: 1e-4)")
    g.add_argument("--batch-size", type=int, default=64, help="(default: 64)")
    g.add_argument("--threads", type=int, default=None,
                   help="torch intra-op threads (default: torch's; 1 is steadier on a busy machine)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def run(args) -> int:
    import torch

    from mimic_edge.errors import ConfigError
    from mimic_edge.train import TrainConfig, train

    for name in ("max_epochs", "patience", "batch_size", "threads"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if not args.lr > 0:
        raise ConfigError(f"--lr must be > 0, got {args.lr}")
    if args.threads:
        torch.set_num_threads(args.threads)
    dataset, data_name = load_data(args, args.preset)
    config = TrainConfig(model=args.model, preset=args.preset, lr=args.lr, batch_size=args.batch_size,
                         patience=args.patience, max_epochs=args.max_epochs, seed=args.seed)
    result = train(dataset, config, args.out, data_name=data_name, progress=not args.no_progress, force=args.force)
    print(f"{args.model} ({result.params:,} params) on {data_name}: {result.stopped} after {result.epochs} "
          f"epoch(s), {result.seconds:.0f} s")
    if result.best_epoch == 0:
        print("no epoch finished: no checkpoint written")
        return 130 if result.stopped == "interrupted" else 1
    best = result.history[result.best_epoch - 1]
    print(f"convergence epoch {result.best_epoch}: validation MSE {result.best_valid_loss:.4f}, "
          f"MAE {best['valid']['MAE']:.4f}, Has0_acc_2 {best['valid']['Has0_acc_2']:.4f}")
    print(f"checkpoint: {result.checkpoint}.safetensors (+ .json); log: {args.out}/log.jsonl")
    return 130 if result.stopped == "interrupted" else 0
