"""The dataset options `train` and `eval` share: --data synthetic|PATH and the synthetic set's size and seed."""
from __future__ import annotations

from mimic_edge.cli._common import int_list


def add_data_args(p, required: bool = True) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--data", required=required, metavar="synthetic|PATH",
                   help="'synthetic' (generated, no download) or an MMSA .pkl / .npz file")
    g.add_argument("--synthetic-size", type=int_list, default=None, metavar="N|TRAIN,VALID,TEST",
                   help="samples of the synthetic set: a total split like MOSI, or three sizes "
                        "(default: 1284,229,686, MOSI's split)")
    g.add_argument("--data-seed", type=int, default=0, help="seed of the synthetic set (default: 0)")


def load_data(args, preset: str) -> tuple[dict, str]:
    """(dataset, its name for logs) from the parsed --data options."""
    from mimic_edge.data import MOSI_SIZES, load_dataset

    size = args.synthetic_size or MOSI_SIZES
    size = size[0] if len(size) == 1 else size
    dataset = load_dataset(args.data, preset, size, args.data_seed)
    if args.data != "synthetic":
        return dataset, args.data
    sizes = "/".join(str(len(s["id"])) for s in dataset.values())
    return dataset, f"synthetic (seed {args.data_seed}, {sizes})"
