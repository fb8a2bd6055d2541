"""Run a mimic-edge artifact from Python: load it, predict, print one line of scores per sample.

    python examples/python/predict.py MODEL INPUTS [--bench N]

MODEL: an ONNX artifact (`.onnx`), a TensorRT engine (`.engine`/`.plan`, with its JSON sidecar)
or a checkpoint (`.safetensors` + `.json`). INPUTS: an `.npz` with arrays text, audio, vision,
or a folder with text.npy, audio.npy, vision.npy (float32, (batch, seq_len, dim)), the form
the C++ examples read. With --bench N it also times N batch-1 runs on the first sample and
prints the latency to stderr. Running an ONNX artifact or an engine does not import torch.
"""
import argparse
import sys
import time

import numpy as np

from mimic_edge.errors import MimicEdgeError
from mimic_edge.runtime import load, read_inputs

WARMUP = 20  # untimed runs before --bench timing, as in the C++ examples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("inputs")
    parser.add_argument("--bench", type=int, metavar="N", help="time N batch-1 runs")
    args = parser.parse_args()
    try:
        predictor = load(args.model)
        x = read_inputs(args.inputs)
        scores = predictor.predict(x["text"], x["audio"], x["vision"])  # (B, out)
    except MimicEdgeError as e:
        print(f"predict.py: error: {e}", file=sys.stderr)
        return 1
    for row in scores:
        print(" ".join(f"{v:.9g}" for v in row))

    if args.bench:
        first = [x[m][:1] for m in ("text", "audio", "vision")]  # batch 1
        for _ in range(WARMUP):
            predictor.predict(*first)
        ms = []
        for _ in range(args.bench):
            start = time.perf_counter()
            predictor.predict(*first)
            ms.append((time.perf_counter() - start) * 1e3)
        p50, p99 = np.percentile(ms, [50, 99])
        print(f"batch-1 latency ({predictor.backend}, Python): p50 {p50:.3f} ms, p99 {p99:.3f} ms over {len(ms)} runs",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
