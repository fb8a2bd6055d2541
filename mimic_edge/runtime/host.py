"""What this CPU offers ONNX Runtime's integer kernels, for validation reports and benchmarks.
numpy only, so that the torch-free runtime can record it wherever it runs.

ONNX Runtime's CPU integer GEMMs (MLAS) multiply uint8 activations by int8 weights (u8s8) with
the best instructions the CPU has. Without VNNI, x86 kernels (AVX2, AVX-512 without VNNI) use
vpmaddubsw, which adds each pair of u8×s8 products into int16 and saturates at ±32767: two
products of 255 × 127 overflow it. VNNI (AVX-512 VNNI, AVX-VNNI), AMX and ARM's kernels (NEON,
dot product, i8mm) accumulate in int32 and do not saturate.

The instruction sets come from cpuid as numpy reads it (`__cpu_features__`), not from
/proc/cpuinfo, which under user-mode emulation (qemu-x86_64 -cpu Haswell) describes the host's
CPU, not the emulated one. numpy does not report AMX or AVX-VNNI: those are taken from
/proc/cpuinfo only where it agrees with cpuid on AVX2 and AVX-512F, so that it describes this CPU.
On ARM, the kernel's hardware capabilities (getauxval), which emulators set for the emulated CPU.
"""
from __future__ import annotations

import functools
import platform
from pathlib import Path

# Linux's aarch64 hardware capabilities (asm/hwcap.h), what ONNX Runtime reads on ARM
AT_HWCAP, AT_HWCAP2 = 16, 26
HWCAP_ASIMDDP, HWCAP2_I8MM = 1 << 20, 1 << 13
SATURATING_U8S8 = ("avx512", "avx2", "sse4.1")  # x86 without VNNI: int16 pair sums (see the module doc)


@functools.cache
def int8_isa() -> str:
    """The instruction set ONNX Runtime's integer kernels use on this CPU: on x86 "amx",
    "avx512_vnni", "avx_vnni", "avx512", "avx2" or "sse4.1"; on ARM "i8mm", "dotprod" or "neon";
    elsewhere the machine's name."""
    features = _cpuid_features()
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64", "i386", "i686"):
        flags = _proc_cpuinfo_flags()
        agrees = all((name in flags) == features.get(name.upper(), False) for name in ("avx2", "avx512f"))
        if agrees and "amx_int8" in flags:
            return "amx"
        if features.get("AVX512VNNI"):
            return "avx512_vnni"
        if agrees and "avx_vnni" in flags:
            return "avx_vnni"
        if features.get("AVX512F") and features.get("AVX512BW"):
            return "avx512"
        return "avx2" if features.get("AVX2") else "sse4.1"
    if machine in ("aarch64", "arm64"):
        hwcap, hwcap2 = _auxv(AT_HWCAP), _auxv(AT_HWCAP2)
        if hwcap2 & HWCAP2_I8MM:
            return "i8mm"
        return "dotprod" if hwcap & HWCAP_ASIMDDP or features.get("ASIMDDP") else "neon"
    return machine


def u8s8_saturates(isa: str | None = None) -> bool:
    """Whether ONNX Runtime's u8s8 kernels on `isa` (default: this CPU) saturate full-range int8 weights."""
    return (isa or int8_isa()) in SATURATING_U8S8


def cpu_name() -> str:
    """The CPU's model name ("AMD EPYC 9B45"), or the machine's where none is readable."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpuid_features() -> dict[str, bool]:
    try:
        from numpy._core._multiarray_umath import __cpu_features__  # numpy 2
    except ImportError:
        from numpy.core._multiarray_umath import __cpu_features__  # numpy 1
    return dict(__cpu_features__)


def _auxv(kind: int) -> int:
    """getauxval(kind) from the C library; 0 where there is none (not glibc, not Linux)."""
    try:
        import ctypes

        getauxval = ctypes.CDLL(None).getauxval
        getauxval.restype, getauxval.argtypes = ctypes.c_ulong, [ctypes.c_ulong]
        return int(getauxval(kind))
    except (OSError, AttributeError):
        return 0


def _proc_cpuinfo_flags() -> set[str]:
    """The kernel's x86 feature flags; empty where unreadable."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return set(value.split())
    return set()
