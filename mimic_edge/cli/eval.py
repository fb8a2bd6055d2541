"""`mimic-edge eval`: MMSA metrics of a checkpoint on a split, as a markdown table.

Rows: all modalities, then one per --drop-modality (its input replaced by zeros, paper
Table 1), then the predict-the-training-mean baseline when the data has a train split.
--similarity adds the mean cosine similarity between the modality-individual representations
per modality pair, × 100 (paper Table 2: MIMIC's i_m, MISA's private vectors).
"""
from __future__ import annotations


from mimic_edge.cli._common import EXAMPLES_HELP
from mimic_edge.cli._data import add_data_args, load_data
from mimic_edge.config import MODALITIES

EXAMPLES = """examples:
  mimic-edge eval --checkpoint runs/mimic/best --data synthetic
  mimic-edge eval --checkpoint runs/mimic/best --data synthetic --drop-modality all --similarity
  mimic-edge eval --checkpoint runs/misa/best --data aligned_50.pkl --split valid --json misa.json
"""


def add_parser(sub) -> None:
    p = sub.add_parser("eval", help="metrics, modality removal and representation similarity of a checkpoint",
                       description=__doc__, epilog=EXAMPLES, formatter_class=EXAMPLES_HELP)
    p.add_argument("--checkpoint", required=True, metavar="PATH", help="checkpoint (with or without .safetensors)")
    add_data_args(p)
    p.add_argument("--split", choices=("train", "valid", "test"), default="test", help="(default: test)")
    p.add_argument("--drop-modality", action="append", default=[], choices=(*MODALITIES, "all"),
                   help="add a row with this modality's input zeroed; repeatable; 'all' = each in turn")
    p.add_argument("--similarity", action="store_true", help="add the representation-similarity table")
    p.add_argument("--batch-size", type=int, default=64, help="(default: 64)")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    p.set_defaults(run=run)


def run(args) -> int:
    from mimic_edge.checkpoint import load_checkpoint, read_checkpoint_meta
    from mimic_edge.errors import ConfigError, DataError
    from mimic_edge.evaluate import (json_safe, mean_baseline_row, metrics_markdown, modality_rows,
                                     similarity, similarity_markdown)
    from mimic_edge.io import atomic_write_json, check_writable_file

    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.json:
        check_writable_file(args.json, "--json")
    model = load_checkpoint(args.checkpoint)
    name, preset = read_checkpoint_meta(args.checkpoint)["model"], model.config.preset
    dataset, data_name = load_data(args, preset)
    if args.split not in dataset:
        raise DataError(f"{data_name}: no {args.split!r} split: found {sorted(dataset)}")
    split = dataset[args.split]
    drops = [m for m in MODALITIES if m in args.drop_modality or "all" in args.drop_modality]
    rows = modality_rows(model, split, drops, args.batch_size)
    if "train" in dataset:
        rows.append(mean_baseline_row(dataset["train"]["regression_labels"], split))
    print(f"{name} ({model.num_params():,} params, preset {preset}) from {args.checkpoint}")
    print(f"data: {data_name}, {args.split} split, {len(split['id'])} samples\n")
    print(metrics_markdown(rows))
    report = {"checkpoint": str(args.checkpoint), "model": name, "preset": preset, "data": data_name,
              "split": args.split, "samples": len(split["id"]), "rows": rows}
    if args.similarity:
        sims = similarity(model, split, args.batch_size)
        print("\nmean cosine similarity between modality-individual representations (× 100):\n")
        print(similarity_markdown(name, sims))
        report["similarity"] = sims
    if args.json:
        atomic_write_json(args.json, json_safe(report))
    return 0
