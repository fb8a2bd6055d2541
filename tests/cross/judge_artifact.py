"""Judge an artifact on this CPU against a reference saved where it was exported, and print the
report as JSON: the gates of its precision, this CPU's int8 ISA, the onnxruntime that ran it.
Torch-free, so that it runs under qemu-user on an emulated CPU (tests/cross).

    python tests/cross/judge_artifact.py ARTIFACT REFERENCE.npz PRECISION
"""
import json
import platform
import sys

import onnxruntime

from mimic_edge.export.precisions import get_precision
from mimic_edge.export.judge import Reference, judge, predictor_runner
from mimic_edge.runtime import load
from mimic_edge.runtime.host import int8_isa


def main(artifact: str, reference: str, precision: str) -> int:
    report = judge(predictor_runner(load(artifact)), Reference.load(reference), get_precision(precision).thresholds,
                   precision, log=lambda line: print(line, file=sys.stderr))
    report.update(machine=platform.machine(), int8_isa=int8_isa(), onnxruntime=onnxruntime.__version__,
                  torch_loaded="torch" in sys.modules)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
