"""`mimic-edge predict`: scores for the samples in a file, from any artifact.

The model is an ONNX artifact, a TensorRT engine, an AOTInductor package or a checkpoint
(mimic_edge.runtime.load);
the input is an .npz with arrays text, audio, vision of shape (batch, seq_len, dim), or a folder
with text.npy, audio.npy, vision.npy; a padded batch adds text_lengths, audio_lengths,
vision_lengths (batch,) integers, for a checkpoint or an artifact exported with --lengths. Prints
one line of scores per sample, or JSON.
"""
from __future__ import annotations

import json

from mimic_edge.cli._common import EXAMPLES_HELP

EXAMPLES = """examples:
  mimic-edge predict --model mimic.int8.onnx --input samples.npz
  mimic-edge predict --model mimic.fp16.engine --input samples/ --json
  mimic-edge predict --model artifacts/mimic-best.cpu.pt2 --input samples.npz    # with its JSON sidecar
  mimic-edge predict --model runs/mimic.safetensors --input samples.npz   # the PyTorch reference
"""


def add_parser(sub) -> None:
    p = sub.add_parser("predict", help="scores for the samples in a file, from any artifact",
                       description=__doc__, epilog=EXAMPLES, formatter_class=EXAMPLES_HELP)
    p.add_argument("--model", required=True, metavar="ARTIFACT",
                   help="model.onnx, model.engine/.plan or model.pt2 (each of the last two with its JSON sidecar), "
                        "or checkpoint.safetensors")
    p.add_argument("--input", required=True, metavar="FILE",
                   help="FILE.npz with arrays text, audio, vision, or a folder with text.npy, audio.npy, vision.npy")
    p.add_argument("--allow-foreign", action="store_true",
                   help="also run an ONNX graph that `mimic-edge export` did not write (same inputs and output; "
                        "refused by default: its signature alone proves nothing)")
    p.add_argument("--json", action="store_true",
                   help='print {"model", "backend", "scores": [[...], ...]} instead of one line per sample')
    p.set_defaults(run=run)


def run(args) -> int:
    from mimic_edge.runtime import load, read_inputs

    from mimic_edge.config import LENGTHS_INPUTS

    predictor = load(args.model, allow_foreign=args.allow_foreign)
    inputs = read_inputs(args.input)
    lengths = {m: inputs[name] for m, name in LENGTHS_INPUTS.items() if name in inputs}  # a padded batch
    scores = predictor.predict(inputs["text"], inputs["audio"], inputs["vision"], **({"lengths": lengths} if lengths else {}))
    if args.json:
        print(json.dumps({"model": str(args.model), "backend": predictor.backend, "scores": scores.tolist()}))
    else:
        for row in scores:
            print(" ".join(f"{v:.9g}" for v in row))  # float32 round-trips
    return 0
