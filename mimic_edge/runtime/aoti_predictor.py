"""Run an AOTInductor package (`.pt2`, docs/design.md §6) with PyTorch. Imports torch only: the package
loader is libtorch's (torch._C._aoti, what C++ callers use), not torch._inductor, whose import
pulls in triton; a CUDA package carries its Triton kernels compiled.

A package is compiled code for one torch release, one device kind and, for that device, one
instruction set: on a CPU the vector ISA it was compiled with (AVX2, AVX-512, ...), on CUDA the
GPU architecture its kernels were built for. torch checks none of this when it loads a
package (a CPU package compiled with AVX-512 dies of SIGILL on an AVX2 machine). So the export
writes a JSON sidecar beside the package (mimic_edge.sidecar), and the predictor checks it
before torch opens it.

`batch` and `seq` are the compiled ranges, [min, opt, max] (seq per modality); inputs outside
them are refused with an InputError before they reach the compiled code.
"""
from __future__ import annotations

import platform
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mimic_edge.config import MODALITIES
from mimic_edge.errors import ArtifactError, ConfigError
from mimic_edge.runtime.inputs import check_scores, lengths_feeds, prepare_inputs, refuse_lengths
from mimic_edge.sidecar import PACKAGE, check_record, read_record

_THIS_THREAD = threading.local()  # the OpenMP thread count `predict` last set in this thread


def torch_release(version: str) -> str:
    """"2.13.0+cpu" → "2.13.0": the build variant (+cpu, +cu128) does not change the compiled
    code's interface, the release does."""
    return version.split("+", 1)[0]


def read_package_sidecar(package: str | Path) -> dict:
    return read_record(package, PACKAGE)


def check_package_sidecar(package: str | Path) -> dict:
    """The package's sidecar, checked against the package file and this machine: one
    ArtifactError naming every mismatch (bytes, torch release, device kind, machine, CPU ISA or
    GPU architecture)."""
    return check_record(package, PACKAGE, _mismatches)


def _mismatches(record: dict) -> list[str]:
    mismatches = []
    if torch_release(record["torch_version"]) != torch_release(torch.__version__):
        mismatches.append(f"torch {record['torch_version']} but this is torch {torch.__version__}")
    if record["machine"] != platform.machine():
        mismatches.append(f"a {record['machine']} CPU but this machine is {platform.machine()}")
    if record["device"] == "cpu":
        missing = sorted(set((record["cpu_isa"] or "").split()) - _cpu_isa_here())
        if missing and platform.machine() in ("x86_64", "AMD64"):  # elsewhere the machine check stands alone
            mismatches.append(f"CPU instruction set {record['cpu_isa']!r} but this CPU lacks {', '.join(missing)}")
    elif record["device"] == "cuda":
        if not torch.cuda.is_available():
            mismatches.append("a CUDA GPU but torch sees none here")
        else:
            major, minor = torch.cuda.get_device_capability()
            if record["cuda_arch"] != f"{major}.{minor}":
                mismatches.append(f"compute capability {record['cuda_arch']} ({record.get('gpu_name')}) but this "
                                  f"GPU is {major}.{minor} ({torch.cuda.get_device_name()})")
    else:
        mismatches.append(f"device {record['device']!r}, which is neither cpu nor cuda")
    return mismatches


def _cpu_isa_here() -> set[str]:
    """This x86 CPU's vector extensions under AOTInductor's names, from cpuid through torch.cpu:
    torch/_inductor/cpu_vec_isa.py's x86_isa_checker, restated because importing torch._inductor
    imports triton."""
    cpu = torch.cpu
    found = {"avx2": cpu._is_avx2_supported(), "avx512": cpu._is_avx512_supported(),
             "amx_tile": cpu._is_amx_tile_supported()}
    found["avx512_vnni"] = found["avx512"] and cpu._is_vnni_supported()
    return {name for name, present in found.items() if present}


class AotiPredictor:
    """`predict(text, audio, vision) -> (B, out)` on an AOTInductor package.

    Thread-safe: calls take turns (a lock). The package's container holds one model instance
    and makes a second caller wait for it inside `boxed_run`, which keeps the GIL while it
    waits; the first caller, to finish, frees tensors that borrow numpy memory, which needs the
    GIL: without the lock, 8 threads deadlocked within seconds (tests/runtime). Taking turns
    costs no throughput: the one instance runs one call at a time anyway.

    Threads inside a call: the package's C++ kernels run OpenMP regions sized by the calling
    thread's OpenMP setting, which torch.set_num_threads sets for the thread that calls it
    only; `predict` carries torch's intra-op thread count (torch.get_num_threads) over to every
    thread that calls it, once per thread.
    """

    backend = "aoti"

    def __init__(self, path: str | Path, device: str | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise ArtifactError(f"AOTInductor package not found: expected a file at {self.path}")
        self.sidecar = check_package_sidecar(self.path)
        kind = self.sidecar["device"]
        try:
            self.device = torch.device(device or kind)
        except RuntimeError:
            raise ConfigError(f"unknown device {device!r}: expected {kind!r} (what {self.path.name} was compiled "
                              "for), or leave device out") from None
        if self.device.type != kind:
            raise ConfigError(f"{self.path}: compiled for {kind}, asked to run on {self.device}: "
                              f"expected device {kind!r} (or leave device out)")
        self.dims = {m: int(self.sidecar["dims"][m]) for m in MODALITIES}
        self.out_dim = int(self.sidecar["out_dim"])
        self.takes_lengths = self.sidecar.get("lengths") is True  # exported with --lengths
        batch, seq = self.sidecar["batch"], self.sidecar["seq"]
        self.batch_range = (int(batch[0]), int(batch[-1]))
        self.seq_range = {m: (int(seq[m][0]), int(seq[m][-1])) for m in MODALITIES}
        device_index = -1 if self.device.index is None else self.device.index
        try:  # (path, model name, run_single_threaded, runners, device index), as AOTIModelPackageLoader takes them
            loader = torch._C._aoti.AOTIModelPackageLoader(str(self.path), "model", False, 1, device_index)
        except RuntimeError as e:  # corrupt zips and foreign archives alike
            raise ArtifactError(f"{self.path}: expected an AOTInductor package, found one torch cannot load "
                                f"({str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__})") from None
        # boxed_run on the three tensors, not torch._inductor's AOTICompiledModel.__call__, which
        # parses the package's pytree specs from JSON on every call (50–70 µs of a 0.9–1.1 ms
        # batch-1 call on a 2-core CPU, four runs).
        self._run = loader.boxed_run
        self._lock = threading.Lock()

    def predict(self, text: Any, audio: Any, vision: Any, lengths: Any = None) -> np.ndarray:
        if not self.takes_lengths:
            refuse_lengths(lengths, self.path)
        feeds = prepare_inputs(text, audio, vision, self.dims, self.seq_range, self.batch_range, lengths)
        tensors = [torch.from_numpy(feeds[m]).to(self.device) for m in MODALITIES]
        if self.takes_lengths:  # after the three inputs, as the package was exported
            tensors += [torch.from_numpy(n).to(self.device) for n in lengths_feeds(lengths, feeds).values()]
        threads = torch.get_num_threads()
        if getattr(_THIS_THREAD, "threads", None) != threads:  # a new calling thread, or a new setting
            torch.set_num_threads(threads)  # also sets this thread's OpenMP count
            _THIS_THREAD.threads = threads
        with self._lock:
            (scores,) = self._run(tensors)  # (B, out)
        return check_scores(scores.cpu().numpy(), self.path)

    def __repr__(self) -> str:
        return f"AotiPredictor({str(self.path)!r}, device={str(self.device)!r})"
