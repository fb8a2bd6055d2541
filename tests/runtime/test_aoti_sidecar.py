"""The `.pt2` loader's sidecar checks, fast: on a stand-in package file (no compile), the checks
that run before torch opens a package: its bytes, its torch release, its machine and the
direction of the CPU-ISA check (a package needs its ISA; a CPU with more is fine)."""
import json

import pytest
import torch

from mimic_edge.errors import ArtifactError
from mimic_edge.export.aoti import write_package_sidecar
from mimic_edge.runtime import aoti_predictor
from mimic_edge.runtime.aoti_predictor import check_package_sidecar
from mimic_edge.sidecar import sidecar_path

SEQ = {m: [1, 50, 100] for m in ("text", "audio", "vision")}


@pytest.fixture
def package(tmp_path, monkeypatch):
    """A stand-in package compiled (so its sidecar says) for AVX2 on x86_64, on this CPU with AVX2 and AVX-512."""
    monkeypatch.setattr(aoti_predictor.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(aoti_predictor, "_cpu_isa_here", lambda: {"avx2", "avx512"})
    path = tmp_path / "mimic.cpu.pt2"
    path.write_bytes(b"a package's bytes")
    write_package_sidecar(path, {"torch_version": torch.__version__, "device": "cpu", "machine": "x86_64",
                                 "cpu_isa": "avx2", "cuda_arch": None, "gpu_name": None, "batch": [1, 1, 64],
                                 "seq": SEQ, "model": "mimic", "preset": "mosi", "config_digest": "0" * 16,
                                 "dims": {"text": 300, "audio": 74, "vision": 47}, "out_dim": 1})
    return path


def edit(path, **changes):
    record = json.loads(sidecar_path(path).read_text())
    sidecar_path(path).write_text(json.dumps({**record, **changes}))


def test_a_package_for_this_machine_passes(package):
    assert check_package_sidecar(package)["cpu_isa"] == "avx2"


def test_changed_bytes_are_refused(package):
    package.write_bytes(b"another package's bytes")
    with pytest.raises(ArtifactError, match=r"package bytes \(sha256 .*\) do not match its sidecar"):
        check_package_sidecar(package)


def test_a_package_needing_an_isa_this_cpu_lacks_is_refused(package):
    edit(package, cpu_isa="avx512 amx_tile")
    with pytest.raises(ArtifactError, match=r"CPU instruction set 'avx512 amx_tile' but this CPU lacks amx_tile"):
        check_package_sidecar(package)


@pytest.mark.parametrize("changes, message", [
    ({"torch_version": "2.12.0"}, r"torch 2.12.0 but this is torch"),
    ({"machine": "aarch64"}, r"a aarch64 CPU but this machine is x86_64"),
    ({"device": "tpu"}, r"device 'tpu', which is neither cpu nor cuda"),
])
def test_a_package_for_another_torch_machine_or_device_is_refused(package, changes, message):
    edit(package, **changes)
    with pytest.raises(ArtifactError, match=message):
        check_package_sidecar(package)
