"""Write example inputs for the Python and C++ examples: samples of the synthetic test split.

    python examples/python/make_inputs.py DIR [--preset mosi] [--n 4] [--seed 0]

Writes DIR/text.npy, DIR/audio.npy, DIR/vision.npy: float32, (n, seq_len, dim) with the
preset's feature dims. Real features go the same way: mimic_edge.runtime.write_inputs(DIR, arrays).
"""
import argparse

from mimic_edge.data import synthetic
from mimic_edge.runtime import write_inputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder")
    parser.add_argument("--preset", default="mosi")
    parser.add_argument("--n", type=int, default=4, help="samples (default: 4)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    test = synthetic(args.preset, n=(1, 1, args.n), seed=args.seed)["test"]
    write_inputs(args.folder, test)
    print(f"wrote {args.n} samples of preset {args.preset} to {args.folder}/{{text,audio,vision}}.npy")


if __name__ == "__main__":
    main()
