"""AOTInductor packages (`.pt2`) through mimic_edge.runtime.load: the sidecar is checked before
torch opens the package (bytes, torch release, device kind, CPU instruction set), inputs are
checked against the compiled ranges, predictions equal PyTorch's, threads are safe. Every
test runs the session's package (compiled once: tests/conftest.py, `artifacts.pt2()`)."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from mimic_edge.config import MODALITIES
from mimic_edge.data import synthetic
from mimic_edge.errors import ArtifactError, ConfigError, InputError
from mimic_edge.export.precisions import PRECISIONS
from mimic_edge.runtime import Predictor, load
from mimic_edge.runtime.aoti_predictor import AotiPredictor
from mimic_edge.sidecar import file_sha256, sidecar_path

pytestmark = pytest.mark.slow  # the session's package takes a minute to compile, once


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """As tests/export/conftest.py: on 2 shared, busy cores two OpenMP threads per call ran a
    batch of 12 in 92 ms, one thread in 3 ms. Results do not depend on it."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def predictor(artifacts):
    return load(artifacts.pt2())


@pytest.fixture(scope="module")
def samples():
    """12 synthetic samples with unaligned lengths: text 50 steps, audio 37, vision 23."""
    test = synthetic("mosi", n=(1, 1, 12), seed=3)["test"]
    return {"text": test["text"], "audio": test["audio"][:, :37], "vision": test["vision"][:, 27:]}


def copy_package(artifacts, folder):
    """The session's package and sidecar, copied to `folder` (for tests that change them)."""
    path = folder / "mimic.cpu.pt2"
    shutil.copyfile(artifacts.pt2(), path)
    shutil.copyfile(sidecar_path(artifacts.pt2()), sidecar_path(path))
    return path


def edit_sidecar(path, **changes):
    record = json.loads(sidecar_path(path).read_text())
    record.update(changes)
    sidecar_path(path).write_text(json.dumps(record))


def test_load_gives_the_aoti_predictor(predictor, artifacts):
    assert isinstance(predictor, AotiPredictor) and isinstance(predictor, Predictor)
    assert predictor.backend == "aoti" and predictor.device == torch.device("cpu")
    assert predictor.dims == artifacts.model.config.dims and predictor.out_dim == 1
    assert predictor.batch_range == (1, 64) and predictor.seq_range == {m: (1, 100) for m in MODALITIES}
    assert repr(predictor) == f"AotiPredictor({str(artifacts.pt2())!r}, device='cpu')"


def test_predictions_equal_pytorch_and_torch_inputs_equal_numpy(predictor, artifacts, samples):
    with torch.no_grad():
        expected = artifacts.model(*(torch.from_numpy(samples[m]) for m in MODALITIES)).numpy()
    found = predictor.predict(*(samples[m] for m in MODALITIES))
    assert found.dtype == np.float32 and found.shape == (12, 1)
    diff = np.abs(found - expected)
    bound = PRECISIONS["fp32"].thresholds.max_abs  # fp32 in another summation order: export/precisions.py
    assert diff.max() <= bound, f"max abs error {diff.max():.3g} at sample {diff.argmax()}"
    as_torch = predictor.predict(*(torch.from_numpy(samples[m]).double() for m in MODALITIES))
    np.testing.assert_array_equal(as_torch, found)


def test_threads_give_serial_results(predictor, samples, threads_match_serial):
    jobs = [[samples[m][i:i + 1 + i % 3] for m in MODALITIES] for i in range(9)]
    threads_match_serial(predictor, jobs)


def _long_audio(x):
    x["audio"] = np.zeros((2, 101, 74), np.float32)


def _big_batch(x):
    x.update({m: np.repeat(x[m][:1], 65, axis=0) for m in MODALITIES})


def _narrow_vision(x):
    x["vision"] = x["vision"][..., :46]


def _nan(x):
    x["text"] = x["text"].copy()
    x["text"][1, 4, 5] = np.nan


def _rank(x):
    x["audio"] = x["audio"][0]


def _ints(x):
    x["text"] = x["text"].astype(np.int32)


@pytest.mark.parametrize("change, message", [
    (_long_audio, r"audio: seq_len 101 is outside the supported range \[1, 100\]"),
    (_big_batch, r"batch size 65 is outside the supported range \[1, 64\]"),
    (_narrow_vision, r"vision: expected feature dim 47, found 46"),
    (_nan, r"text: found NaN or Inf values"),
    (_rank, r"audio: expected rank 3 \(batch, seq_len, 74\), found shape \(37, 74\)"),
    (_ints, r"text: expected a floating dtype \(float32\), found int32"),
])
def test_bad_inputs_name_what_was_expected(predictor, samples, change, message):
    x = {m: samples[m][:2] for m in MODALITIES}
    change(x)
    with pytest.raises(InputError, match=message):
        predictor.predict(*(x[m] for m in MODALITIES))


def test_missing_package(tmp_path):
    with pytest.raises(ArtifactError, match=r"AOTInductor package not found: expected a file at .*missing.pt2"):
        load(tmp_path / "missing.pt2")


def test_package_without_its_sidecar(artifacts, tmp_path):
    path = copy_package(artifacts, tmp_path)
    sidecar_path(path).unlink()
    with pytest.raises(ArtifactError, match=r"mimic.cpu.pt2: no JSON sidecar: expected .*mimic.cpu.pt2.json"):
        load(path)


@pytest.mark.parametrize("text, message", [
    ("{not json", r"expected the package's JSON sidecar, found unreadable text"),
    ('{"engine_sha256": "0"}', r"expected a sidecar of kind 'aoti-package', found None"),
    ('{"kind": "aoti-package", "format_version": 1}', r"sidecar lacks \['package_sha256'"),
])
def test_unreadable_or_foreign_sidecars(artifacts, tmp_path, text, message):
    path = copy_package(artifacts, tmp_path)
    sidecar_path(path).write_text(text)
    with pytest.raises(ArtifactError, match=message):
        load(path)


@pytest.mark.parametrize("changes, message", [
    ({"dims": None}, r"dims: one integer ≥ 1 per modality \(text, audio, vision\), found None"),
    ({"dims": [300, 74, 47]}, r"dims: one integer ≥ 1 per modality"),
    ({"batch": []}, r"batch: \[min, opt, max\]: integers, 1 ≤ min ≤ opt ≤ max, found \[\]"),
    ({"batch": "1:1:64"}, r"batch: \[min, opt, max\].*found '1:1:64'"),
    ({"batch": [1, 8, 4]}, r"batch: \[min, opt, max\].*found \[1, 8, 4\]"),
    ({"batch": [True, 1, 1]}, r"batch: \[min, opt, max\]"),
    ({"seq": {"text": [1, 50, 100]}}, r"seq: one \[min, opt, max\] per modality"),
    ({"cpu_isa": 5}, r"cpu_isa: a string or null, found 5"),
    ({"torch_version": None}, r"torch_version: a string, found None"),
    ({"out_dim": "x"}, r"out_dim: an integer from 1 to 2147483647, found 'x'"),
    ({"out_dim": 10**40}, r"out_dim: an integer from 1 to 2147483647, found 1000000000"),
    ({"format_version": True}, r"expected sidecar format_version 1, found True"),
])
def test_ill_typed_sidecar_values_are_one_artifact_error(artifacts, tmp_path, changes, message):
    """A sidecar is read like a checkpoint's config: every value the loader uses has its type and
    range checked before use (a hand-edited or hostile file is not a TypeError deep inside)."""
    path = copy_package(artifacts, tmp_path)
    edit_sidecar(path, **changes)
    with pytest.raises(ArtifactError, match=message):
        load(path)


@pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000, '{"out_dim": ' + "9" * 5000 + "}"])
def test_pathological_json_is_one_artifact_error(artifacts, tmp_path, text):
    path = copy_package(artifacts, tmp_path)
    sidecar_path(path).write_text(text)
    with pytest.raises(ArtifactError, match="expected the package's JSON sidecar, found unreadable text"):
        load(path)


def test_an_unknown_device_is_a_config_error(predictor, artifacts):
    with pytest.raises(ConfigError, match="unknown device 'bogus': expected 'cpu'"):
        load(artifacts.pt2(), device="bogus")


def test_changed_bytes_are_refused_before_torch_opens_the_package(artifacts, tmp_path):
    path = copy_package(artifacts, tmp_path)
    path.write_bytes(path.read_bytes()[:50_000])
    with pytest.raises(ArtifactError, match=r"package bytes \(sha256 .*\) do not match its sidecar"):
        load(path)


def test_a_corrupt_package_with_a_matching_sidecar_is_an_artifact_error(artifacts, tmp_path):
    path = copy_package(artifacts, tmp_path)
    path.write_bytes(b"PK\x03\x04 not a zip archive")
    edit_sidecar(path, package_sha256=file_sha256(path))
    with pytest.raises(ArtifactError, match=r"cpu.pt2: expected an AOTInductor package, found one torch cannot load"):
        load(path)


@pytest.mark.parametrize("changes, message", [
    (dict(torch_version="2.12.1+cpu"), re.escape(f"for torch 2.12.1+cpu but this is torch {torch.__version__}")),
    (dict(machine="aarch64"), "compiled for a aarch64 CPU but this machine is"),
    (dict(device="cuda", cuda_arch="8.7", gpu_name="Orin"), "compiled for a CUDA GPU but torch sees none here"),
    (dict(cpu_isa="avx512 avx10_2"), "compiled for CPU instruction set 'avx512 avx10_2' but this CPU lacks avx10_2"),
    (dict(device="tpu"), "device 'tpu', which is neither cpu nor cuda"),
])
def test_a_package_for_another_torch_or_device_is_refused(artifacts, tmp_path, changes, message):
    if changes.get("device") == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    path = copy_package(artifacts, tmp_path)
    edit_sidecar(path, **changes)
    with pytest.raises(ArtifactError, match=message + ".*runs only on the torch release and the device it was"):
        load(path)


def test_the_build_variant_of_a_release_does_not_matter(artifacts, tmp_path):
    path = copy_package(artifacts, tmp_path)
    edit_sidecar(path, torch_version=torch.__version__.split("+")[0] + "+cu128")
    zeros = [np.zeros((1, 3, d), np.float32) for d in artifacts.model.config.dims.values()]
    assert load(path).predict(*zeros).shape == (1, 1)


def test_a_cpu_package_cannot_be_asked_to_run_on_cuda(artifacts):
    with pytest.raises(ConfigError, match=r"compiled for cpu, asked to run on cuda: expected device 'cpu'"):
        load(artifacts.pt2(), device="cuda")


def test_running_a_package_imports_no_triton_and_no_export(artifacts, tmp_path):
    """The runtime layer: torch and its package loader, nothing of the export or of Triton."""
    code = (f"import sys, numpy as np; from mimic_edge.runtime import load; p = load({str(artifacts.pt2())!r}); "
            "p.predict(*(np.zeros((1, 4, d), np.float32) for d in p.dims.values())); "
            "print(sorted(m for m in sys.modules if m == 'triton' or m.startswith('mimic_edge.export') "
            "or m.startswith('mimic_edge.kernels.fused') or m == 'onnxruntime'))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
