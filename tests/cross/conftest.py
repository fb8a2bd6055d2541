"""The CPUs an artifact made here must run on, emulated with qemu-user: x86 without VNNI
(`qemu-x86_64 -cpu Haswell`: AVX2, no AVX-512, so ONNX Runtime picks its saturating AVX2 integer
kernels) and aarch64 (a Debian arm64 root, the torch-free runtime, onnxruntime 1.19.2). Only
inference runs emulated (about 45× slower); models are trained and exported natively.

Needs Debian's qemu-user and debootstrap, and root for debootstrap: `.ci/run` installs them;
elsewhere these tests skip with the reason. The arm64 root is made once, in .cache/cross/."""
from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("MIMIC_EDGE_CROSS_CACHE", REPO / ".cache" / "cross"))
JUDGE = Path(__file__).with_name("judge_artifact.py")
EMULATED_TIMEOUT_S = 900  # one artifact judged under emulation: ≤ 97 s measured (MISA's Q/DQ graph, busy), 9× that


@dataclass
class EmulatedCpu:
    name: str
    command: list[str]  # the emulated interpreter
    env: dict[str, str]

    def run(self, *args: str) -> subprocess.CompletedProcess:
        """This CPU's Python with `args`, from / (`-c` puts the working folder first on sys.path: the
        repo's source mimic_edge/ would shadow the staged package); asserts it exits 0."""
        done = subprocess.run([*self.command, *args], capture_output=True, text=True, env=self.env,
                              timeout=EMULATED_TIMEOUT_S, cwd="/")
        assert done.returncode == 0, f"{self.name}: {done.stderr[-3000:]}"
        return done

    def judge(self, artifact: Path, reference: Path, precision: str) -> dict:
        """The report of judge_artifact.py run on this CPU."""
        done = subprocess.run([*self.command, str(JUDGE), str(artifact), str(reference), precision],
                              capture_output=True, text=True, env=self.env, timeout=EMULATED_TIMEOUT_S)
        assert done.returncode == 0, f"{self.name}: {done.stderr[-3000:]}"
        return json.loads(done.stdout)


def _require(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (Debian: qemu-user, debootstrap; .ci/run installs them)")


@pytest.fixture(scope="session")
def haswell() -> EmulatedCpu:
    """This venv's Python on an emulated Haswell: AVX2, FMA, no AVX-512, no VNNI."""
    if platform.machine() != "x86_64":
        pytest.skip(f"emulating an x86 CPU with qemu-x86_64 needs an x86_64 host, found {platform.machine()}")
    _require("qemu-x86_64")
    return EmulatedCpu("x86_64 Haswell (qemu)", ["qemu-x86_64", "-cpu", "Haswell", sys.executable], dict(os.environ))


@pytest.fixture(scope="session")
def aarch64(tmp_path_factory, stage_package) -> EmulatedCpu:
    """Debian's arm64 Python 3.11 with numpy and onnxruntime 1.19.2, and this checkout's package."""
    _require("qemu-aarch64", "debootstrap", "dpkg-deb")
    root = CACHE / "aarch64"
    if not root.is_dir():
        if os.geteuid() != 0:
            pytest.skip("debootstrap needs root to make the arm64 root")
        subprocess.run([str(Path(__file__).with_name("make_aarch64_root.sh")), str(root), sys.executable],
                       check=True, timeout=900)
    package = tmp_path_factory.mktemp("aarch64-site")
    stage_package(package)
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": f"{package}:{root / 'site'}", "LC_ALL": "C.UTF-8"}
    python = root / "root" / "usr" / "bin" / "python3.11"
    return EmulatedCpu("aarch64 (qemu)", ["qemu-aarch64", "-L", str(root / "root"), str(python)], env)
