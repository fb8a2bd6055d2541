#!/usr/bin/env bash
# The GPU check: one script for a single-GPU Linux machine, about 6 minutes.
#   1. the kernel tests with real Triton kernels (no interpreter),
#   2. the fused-head benchmark (benchmarks/fusion_head.py),
#   3. `mimic-edge bench` on CUDA for MIMIC and MISA, every backend (missing ones skipped).
# Everything measured goes to JSON (and logs) in OUT_DIR; copy it to
# benchmarks/results/<device>-<date>/ with the device's name.
#
# usage: bash benchmarks/gpu_check.sh OUT_DIR
# Uses .venv when it has a CUDA torch, else `python3` (e.g. an image with torch + triton),
# installing this package into a temp folder without touching the network.
set -uo pipefail
out=$(realpath -m "${1:?usage: bash benchmarks/gpu_check.sh OUT_DIR}")
mkdir -p "$out"
cd "$(dirname "$0")/.."

py=${PYTHON:-python3}
if [ -x .venv/bin/python ] && .venv/bin/python -c 'import torch, sys; sys.exit(not torch.cuda.is_available())' 2>/dev/null; then
  py=.venv/bin/python
fi
if ! "$py" -c 'import mimic_edge.kernels' 2>/dev/null; then
  site=$(mktemp -d)
  "$py" -m pip install -q --no-deps --no-build-isolation --no-index --target "$site" . || exit 1
  export PYTHONPATH="$site"
fi
export PYTHONUNBUFFERED=1 TRITON_INTERPRET=0
status=0
step() {  # step NAME TIMEOUT_S COMMAND...: run, log to OUT_DIR/NAME.log, remember failures
  local name=$1 limit=$2; shift 2
  echo "== $name"
  timeout "$limit" "$@" 2>&1 | tee "$out/$name.log"
  local rc=${PIPESTATUS[0]}
  [ "$rc" -eq 0 ] || { echo "!! $name exited $rc"; status=1; }
}

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$out/gpu.csv" 2>&1
"$py" - > "$out/versions.json" <<'PY'
import json, platform, torch
info = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None}
for name in ("triton", "onnxruntime", "tensorrt", "torch_tensorrt"):
    try:
        info[name] = __import__(name).__version__
    except ImportError:
        info[name] = None
print(json.dumps(info, indent=2))
PY
cat "$out/versions.json"

step kernel_tests 150 "$py" -m pytest -q -p no:cacheprovider tests/kernels tests/models --junitxml "$out/kernel_tests.xml"
step fusion_head_bench 120 "$py" benchmarks/fusion_head.py --out "$out/fusion_head.json"
step bench_cuda 240 "$py" -m mimic_edge.cli bench --device cuda --presets mosi,mosi-bert \
  --batch-sizes 1,8,64,1024 --iters 100 --json "$out/bench_cuda.json" --cache-dir "$out/cache"
exit $status
