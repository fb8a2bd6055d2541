"""Outputs that cannot be written fail before the work, in one line (root ignores chmod: the
folder is made read-only with a read-only bind mount in a private mount namespace)."""
import shutil
import subprocess
import sys
import time

import pytest

READ_ONLY = "mount --bind {d} {d} && mount -o remount,bind,ro {d} && "


def _unshare_works(tmp_path) -> str | None:
    if shutil.which("unshare") is None:
        return "unshare is not installed"
    probe = subprocess.run(["unshare", "-m", "sh", "-c", READ_ONLY.format(d=tmp_path) + "true"],
                           capture_output=True, text=True)
    return None if probe.returncode == 0 else f"no private mount namespace here: {probe.stderr.strip()}"


@pytest.fixture
def read_only(tmp_path):
    """A folder and a function running a mimic-edge command with that folder read-only."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if reason := _unshare_works(folder):
        pytest.skip(reason)

    def run(*args):
        cli = f"{sys.executable} -P -m mimic_edge.cli " + " ".join(args)
        start = time.perf_counter()
        result = subprocess.run(["unshare", "-m", "sh", "-c", READ_ONLY.format(d=folder) + cli],
                                capture_output=True, text=True, timeout=300)
        return result, time.perf_counter() - start

    return folder, run


@pytest.mark.parametrize("command, option", [
    ("train --data synthetic --synthetic-size 60 --max-epochs 1 --out {ro}/run", "--out"),
    ("eval --checkpoint {ckpt} --data synthetic --synthetic-size 60 --json {ro}/eval.json", "--json"),
    ("export --checkpoint {ckpt} --out {ro}/artifacts", "--out"),
    ("bench --models mimic --backends eager --batch-sizes 1 --iters 2 --json {ro}/bench.json", "--json"),
    ("bench --models mimic --backends ort-fp32 --batch-sizes 1 --iters 2 --cache-dir {ro}/cache", "--cache-dir"),
])
def test_unwritable_output_fails_first_in_one_line(read_only, artifacts, command, option):
    folder, run = read_only
    result, seconds = run(command.format(ro=folder, ckpt=artifacts.checkpoint))
    assert result.returncode == 1, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert f"error: {option} {folder}" in result.stderr and "read-only file system" in result.stderr
