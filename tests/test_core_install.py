"""`pip install mimic-edge` alone, as on a device that only runs artifacts: a fresh venv with the
project's wheel and its core requirements only (numpy, onnxruntime and theirs) runs `mimic-edge
predict` on fp32 and int8 artifacts, never imports torch, and refuses `mimic-edge export` in one
line naming the extra. Nothing is fetched: the wheel is built here without an index, and the
core's distributions are those of this environment, linked into the venv."""
from __future__ import annotations

import email.parser
import importlib.metadata
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from packaging.requirements import Requirement

import mimic_edge
from mimic_edge.data import synthetic
from mimic_edge.runtime import load

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow  # builds a wheel and a venv: ~15 s


def closure(requirements: list[str]) -> set[str]:
    """The distributions these requirements install here, transitively (markers as on this machine)."""
    found, todo = set(), [Requirement(r) for r in requirements]
    while todo:
        requirement = todo.pop()
        if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
            continue
        dist = importlib.metadata.distribution(requirement.name)
        if dist.metadata["Name"].lower() not in found:
            found.add(dist.metadata["Name"].lower())
            todo += [Requirement(r) for r in dist.requires or []]
    return found


def link_distribution(name: str, site: Path) -> None:
    """Every top-level file and folder of distribution `name` (its dist-info too), linked into `site`."""
    dist = importlib.metadata.distribution(name)
    origin = Path(dist.locate_file(""))
    for top in sorted({Path(f).parts[0] for f in dist.files if not str(f).startswith("..")}):
        if not (site / top).exists() and top != "__pycache__":
            (site / top).symlink_to(origin / top)


def core_requirements(wheel: Path) -> list[str]:
    """The wheel's own Requires-Dist, without those of extras."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = email.parser.Parser().parsestr(archive.read(name).decode())
    return [r for r in metadata.get_all("Requires-Dist") if "extra ==" not in r]


@pytest.fixture(scope="module")
def core(tmp_path_factory, project_wheel) -> Path:
    """The venv's bin folder."""
    root = tmp_path_factory.mktemp("core")
    wheel = project_wheel
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / "venv")], check=True)
    python = root / "venv" / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    for name in closure(core_requirements(wheel)):
        link_distribution(name, site)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
                    "--quiet", str(wheel)], check=True, capture_output=True)
    return python.parent


def run(bin_folder: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {"PATH": f"{bin_folder}:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp")}
    return subprocess.run([str(bin_folder / args[0]), *args[1:]], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=300)


def test_the_core_has_no_torch_and_its_requirements_are_met(core, tmp_path):
    done = run(core, "python", "-c", "import importlib.util as u, importlib.metadata as m; "
               "print(u.find_spec('torch'), u.find_spec('onnx'), m.version('mimic-edge'))", cwd=tmp_path)
    assert done.stdout.split() == ["None", "None", mimic_edge.__version__], done.stderr


@pytest.mark.parametrize("precision", ["fp32", "int8-cpu"])
def test_predict_runs_an_artifact_with_the_core_alone(core, artifacts, tmp_path, precision):
    valid = synthetic("mosi", n=(1, 4, 1), seed=1)["valid"]
    np.savez(tmp_path / "x.npz", **{m: valid[m] for m in ("text", "audio", "vision")})
    artifact = artifacts.onnx(precision)
    # the core's predict, with a check that torch was never imported on the way
    done = run(core, "python", "-c", "import sys; from mimic_edge.cli import main; code = main(sys.argv[1:]); "
               "assert 'torch' not in sys.modules, 'torch was imported'; sys.exit(code)",
               "predict", "--model", str(artifact), "--input", str(tmp_path / "x.npz"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    expected = load(artifact).predict(valid["text"], valid["audio"], valid["vision"])
    # the same onnxruntime and artifact: the same scores, as printed (%.9g round-trips float32)
    np.testing.assert_array_equal(np.loadtxt(done.stdout.splitlines(), ndmin=2).astype(np.float32), expected)
    assert run(core, "mimic-edge", "predict", "--model", str(artifact), "--input", str(tmp_path / "x.npz"),
               cwd=tmp_path).stdout == done.stdout  # the console script too


def test_export_without_its_extra_is_refused_in_one_line(core, tmp_path):
    done = run(core, "mimic-edge", "export", "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr == ("mimic-edge export: error: this command needs torch, onnx, onnxslim, safetensors, not "
                           "installed here: pip install 'mimic-edge[export]'\n")
    assert not (tmp_path / "out").exists()
    assert run(core, "mimic-edge", "--help", cwd=tmp_path).returncode == 0
