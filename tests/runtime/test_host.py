"""mimic_edge.runtime.host: which integer kernels ONNX Runtime uses on this CPU, from cpuid
(numpy's), not from /proc/cpuinfo where the two disagree (user-mode emulation)."""
import pytest

from mimic_edge.runtime import host

X86 = {"AVX2": True, "AVX512F": False, "AVX512BW": False, "AVX512VNNI": False}


@pytest.fixture
def cpu(monkeypatch):
    """Stand in for the CPU: cpuid features, /proc/cpuinfo flags, aarch64 hwcaps."""
    def fake(machine, features, flags=(), hwcap=0, hwcap2=0):
        host.int8_isa.cache_clear()
        monkeypatch.setattr(host.platform, "machine", lambda: machine)
        monkeypatch.setattr(host, "_cpuid_features", lambda: dict(features))
        monkeypatch.setattr(host, "_proc_cpuinfo_flags", lambda: set(flags))
        monkeypatch.setattr(host, "_auxv", lambda kind: {host.AT_HWCAP: hwcap, host.AT_HWCAP2: hwcap2}[kind])
        return host.int8_isa()
    yield fake
    host.int8_isa.cache_clear()


@pytest.mark.parametrize("features, flags, isa", [
    (X86, {"avx2"}, "avx2"),
    ({**X86, "AVX512F": True, "AVX512BW": True}, {"avx2", "avx512f"}, "avx512"),
    ({**X86, "AVX512F": True, "AVX512BW": True, "AVX512VNNI": True}, {"avx2", "avx512f"}, "avx512_vnni"),
    ({**X86, "AVX512F": True, "AVX512BW": True, "AVX512VNNI": True}, {"avx2", "avx512f", "amx_int8"}, "amx"),
    (X86, {"avx2", "avx_vnni"}, "avx_vnni"),  # e.g. Alder Lake: VEX-encoded VNNI, no AVX-512
    ({"AVX2": False}, set(), "sse4.1"),
    # qemu-x86_64 -cpu Haswell on a Zen 5 host: cpuid says AVX2 only, /proc/cpuinfo is the host's
    (X86, {"avx2", "avx512f", "avx_vnni", "amx_int8"}, "avx2"),
])
def test_x86(cpu, features, flags, isa):
    assert cpu("x86_64", features, flags) == isa
    assert host.u8s8_saturates() is (isa in ("avx512", "avx2", "sse4.1"))


@pytest.mark.parametrize("hwcap, hwcap2, isa", [
    (0, 0, "neon"), (host.HWCAP_ASIMDDP, 0, "dotprod"), (host.HWCAP_ASIMDDP, host.HWCAP2_I8MM, "i8mm")])
def test_aarch64(cpu, hwcap, hwcap2, isa):
    assert cpu("aarch64", {}, hwcap=hwcap, hwcap2=hwcap2) == isa
    assert not host.u8s8_saturates()


def test_this_cpu_has_a_name_and_an_isa():
    host.int8_isa.cache_clear()
    assert host.int8_isa() and host.cpu_name()
