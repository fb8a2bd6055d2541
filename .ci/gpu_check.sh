#!/usr/bin/env bash
# The GPU check: everything GPU-side of mimic-edge in one run on a single-GPU Linux machine, with
# or without network, under 9 minutes on an H100/H200. The steps, their limits and what each
# measures are in .ci/gpu_check.py (which this runs); results, logs and summary.json go to
# OUT_DIR: copy it to benchmarks/results/<device>-<date>/ with the device's name.
#
# usage: bash .ci/gpu_check.sh OUT_DIR
# Python: $PYTHON when set; else .venv/bin/python when its torch sees a GPU; else python3 (e.g. an
# image with torch and triton), into which nothing is installed: mimic_edge goes to a temp folder.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-}
if [ -z "$py" ]; then
  py=python3
  if [ -x "$repo/.venv/bin/python" ] &&
     (cd / && "$repo/.venv/bin/python" -c 'import torch, sys; sys.exit(not torch.cuda.is_available())') 2>/dev/null; then
    py=$repo/.venv/bin/python
  fi
fi
exec "$py" "$repo/.ci/gpu_check.py" "$@"
