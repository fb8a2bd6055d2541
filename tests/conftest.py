import os
import shutil
import tomllib
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]

# Without a GPU, Triton kernels run only through its interpreter, which must be enabled before
# any @triton.jit function is defined, so before mimic_edge.kernels is imported anywhere.
# On a GPU machine the real kernels run (TRITON_INTERPRET=1 forces the interpreter there too).
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def random_inputs(config, batch, seq_lens=(50, 50, 50), seed=0):
    """Random (text, audio, vision) for `config`; seq_lens per modality in MODALITIES order."""
    from mimic_edge.config import MODALITIES

    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, L, config.dims[m], generator=gen) for m, L in zip(MODALITIES, seq_lens)]


@pytest.fixture(scope="session")
def make_inputs():
    return random_inputs


ENGINE_BATCH, ENGINE_SEQ = "1:4:8", "10:50:60"  # the session's engines: see Artifacts.engine


class Artifacts:
    """A MIMIC checkpoint (preset mosi, seeded random weights) and its validated ONNX exports, each
    made on first use and kept for the whole test session: exports are the slow part of many tests."""

    def __init__(self, folder):
        from mimic_edge import build_model, save_checkpoint

        torch.manual_seed(0)
        self.folder = folder
        self.model = build_model("mimic").eval()
        self.checkpoint = save_checkpoint(self.model, folder / "mimic")  # mimic.safetensors + mimic.json
        self._onnx = {}

    def onnx(self, precision: str = "fp32"):
        """Path of the artifact of `precision`, a key of the export registry ("fp32", "fp16",
        "int8", "int8-cpu", ...): `mimic-edge export` output."""
        from mimic_edge.export import PRECISIONS, ExportConfig, export

        if precision not in self._onnx:
            entry = PRECISIONS[precision]
            config = ExportConfig(checkpoint=str(self.checkpoint), precision=entry.name, target=entry.target,
                                  out=str(self.folder), valid_samples=64)  # validation is most of an export's time
            self._onnx[precision] = export(config, log=lambda message: None).onnx_path
        return self._onnx[precision]

    def engine(self, precision: str):
        """The ExportResult of the TensorRT engine at `precision` ("fp32", "fp16", "int8"), profile
        ENGINE_BATCH, ENGINE_SEQ: built once per session and shared by every engine test (a build
        of the 3-BiLSTM graph takes 15-45 s; the GPU check's time for these tests assumes three).
        Skips where no engine can be built."""
        from mimic_edge.export import ExportConfig, export
        from mimic_edge.export.tensorrt import unavailable_reason

        if reason := unavailable_reason():  # not importorskip: TensorRT's type stubs alone import as `tensorrt`
            pytest.skip(reason)
        key = f"engine {precision}"
        if key not in self._onnx:
            config = ExportConfig(checkpoint=str(self.checkpoint), precision=precision, engine=True, batch=ENGINE_BATCH,
                                  seq=ENGINE_SEQ, calib_samples=64, valid_samples=64, out=str(self.folder / "engines"))
            self._onnx[key] = export(config, log=lambda message: None)
        return self._onnx[key]

    def pt2(self):
        """Path of the CPU AOTInductor package (`mimic-edge export --format pt2`, default ranges:
        batch 1:1:64, sequence 1:50:100): compiled once per session, the slowest export (about
        a minute on 2 cores), shared by every test that runs a package."""
        from mimic_edge.export import ExportConfig, export

        if "pt2" not in self._onnx:
            config = ExportConfig(checkpoint=str(self.checkpoint), format="pt2", out=str(self.folder), valid_samples=64)
            self._onnx["pt2"] = export(config, log=lambda message: None).pt2_path
        return self._onnx["pt2"]


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory):
    return Artifacts(tmp_path_factory.mktemp("artifacts"))


@pytest.fixture(scope="session")
def stage_package():
    """`stage_package(dest, link=False)`: see _stage_package."""
    return _stage_package


def _stage_package(dest: Path, link: bool = False) -> Path:
    """mimic_edge laid out in `dest` as pyproject.toml installs it (its package-dir entries, e.g.
    kernels/ and export/, inside it), sources only: copies, or with `link` symlinks (mypy cannot
    follow the editable install's import hook; a copy travels to an emulated CPU)."""
    package_dirs = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    inside = {name.removeprefix("mimic_edge."): REPO / source for name, source in package_dirs.items()}
    package = dest / "mimic_edge"
    package.mkdir(parents=True)
    for entry in [*(REPO / "mimic_edge").iterdir(), *inside.values()]:
        target = package / next((n for n, s in inside.items() if s == entry), entry.name)
        if entry.name == "__pycache__":
            continue
        if link:
            target.symlink_to(entry)
        elif entry.is_dir():
            shutil.copytree(entry, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(entry, target)
    return dest


@pytest.fixture(scope="session")
def project_wheel(tmp_path_factory) -> Path:
    """The project's wheel, built once per session from a copy of the sources (setuptools builds
    in the source folder: a copy keeps the checkout clean), with no index and no build isolation."""
    import subprocess
    import sys

    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "mimic_edge", "export", "kernels"):
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(REPO / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                    "--quiet", "-w", str(root / "dist"), str(source)], check=True, capture_output=True)
    (wheel,) = (root / "dist").glob("mimic_edge-*.whl")
    return wheel
