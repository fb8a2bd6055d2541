"""The README's tour runs as written, in order, from an empty folder: its shell block, then the
Python blocks that follow it (what a newcomer does first)."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def blocks(language: str, after: str) -> list[str]:
    """The README's ```language blocks after the heading or line `after`."""
    text = (ROOT / "README.md").read_text()
    return re.findall(rf"```{language}\n(.*?)```", text[text.index(after):], flags=re.S)


@pytest.mark.slow  # trains MIMIC on the synthetic set: about a minute on 2 cores
def test_the_tour_and_the_python_blocks_run_in_order(tmp_path):
    (tmp_path / "examples").symlink_to(ROOT / "examples")  # the tour runs examples/python/...
    tour = blocks("bash", "A tour with no download")[0]
    assert "mimic-edge train" in tour and "mimic-edge predict" in tour
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    script = "set -euo pipefail\n" + tour.replace("source .venv/bin/activate", "")  # the venv is this one
    shell = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=900)
    assert shell.returncode == 0, shell.stderr[-3000:]
    scores = shell.stdout.strip().splitlines()[-4:]  # `predict` prints one line per sample of 4
    assert len(scores) == 4 and all(re.fullmatch(r"-?[\d.e+-]+", line) for line in scores), shell.stdout[-2000:]

    python = "\n".join(blocks("python", "## Python"))
    run = subprocess.run([sys.executable, "-c", python], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
