"""Host facts beyond Linux (sysctl on macOS, py-cpuinfo / IsProcessorFeaturePresent on Windows), fed
recorded outputs instead of real machines; and the systemd-run memory scope with its fallback."""

import subprocess

import pytest

from edgekit.bench import harness, memcap
from edgekit.bench.harness import BenchSettings, Variant, run_benchmark
from edgekit.data import TextDataset
from edgekit.targets import host, host_platforms
from edgekit.targets.host_platforms import macos_facts, parse_sysctl, windows_facts

INTEL_MAC = """machdep.cpu.brand_string: Intel(R) Core(TM) i9-9980HK CPU @ 2.40GHz
machdep.cpu.features: FPU VME DE PSE TSC MSR PAE MCE CX8 APIC SEP MTRR SSE SSE2 SSE3 PCLMULQDQ SSSE3 FMA CX16 SSE4.1 SSE4.2 x2APIC MOVBE POPCNT AES XSAVE OSXSAVE AVX1.0 RDRAND F16C
machdep.cpu.leaf7_features: RDWRFSGS TSC_THREAD_OFFSET SGX BMI1 HLE AVX2 SMEP BMI2 ERMS INVPCID RTM FPU_CSDS MPX RDSEED ADX SMAP CLFSOPT IPT MDCLEAR TSXFA IBRS STIBP L1DF SSBD
hw.optional.avx512f: 0
hw.optional.sse4_2: 1
"""  # noqa: E501
APPLE_M2 = """machdep.cpu.brand_string: Apple M2
hw.optional.neon: 1
hw.optional.neon_fp16: 1
hw.optional.arm.FEAT_DotProd: 1
hw.optional.arm.FEAT_I8MM: 1
hw.optional.arm.FEAT_BF16: 1
hw.optional.arm.FEAT_SME: 0
hw.optional.armv8_crc32: 1
"""


def test_sysctl_on_an_intel_mac_and_on_apple_silicon():
    model, features = parse_sysctl(INTEL_MAC)
    assert model.startswith("Intel(R) Core(TM) i9")
    assert features == ("avx", "avx2", "f16c", "fma", "sse4_2")  # no AVX-512: its hw.optional is 0
    model, features = parse_sysctl(APPLE_M2)
    assert model == "Apple M2" and features == ("bf16", "dotprod", "fp16", "i8mm", "neon")
    assert set(features) <= host.detectable_features()  # names the target profiles use


def test_macos_facts_when_sysctl_fails():
    def broken(command):
        raise subprocess.CalledProcessError(1, command)

    assert macos_facts(broken) == ("", ())
    assert macos_facts(lambda command: APPLE_M2)[1] == ("bf16", "dotprod", "fp16", "i8mm", "neon")


def test_windows_py_cpuinfo_then_the_kernel_api():
    info = {"brand_raw": "AMD Ryzen 7 7840U", "flags": ["avx", "avx2", "avx512f", "avx512vnni", "fma", "sse4_2"]}
    model, features, source = windows_facts(cpuinfo=lambda: info)
    assert model == "AMD Ryzen 7 7840U" and source == "py-cpuinfo"
    assert features == ("avx", "avx2", "avx512_vnni", "avx512f", "fma", "sse4_2")

    def no_cpuid():
        raise RuntimeError("CPUID probe failed")

    present = {38, 39, 40}  # SSE4.2, AVX, AVX2; no AVX-512F (41)
    _, features, source = windows_facts(cpuinfo=no_cpuid, present=lambda code: code in present)
    assert source == "IsProcessorFeaturePresent" and features == ("avx", "avx2", "sse4_2")
    _, features, _ = windows_facts(cpuinfo=no_cpuid, present=lambda code: code in {19, 43})  # Windows on Arm
    assert features == ("dotprod", "neon")


def test_detect_host_reads_sysctl_on_macos(monkeypatch):
    monkeypatch.setattr(host.Path, "exists", lambda self: str(self) != "/proc/cpuinfo")
    monkeypatch.setattr(host_platforms, "_run", lambda command: APPLE_M2)
    monkeypatch.setattr(host.platform, "system", lambda: "Darwin")
    facts = host.detect_host()
    assert facts.cpu_model == "Apple M2" and "dotprod" in facts.isa_features and facts.extra["isa_source"] == "sysctl"
    monkeypatch.setattr(host.platform, "system", lambda: "Windows")
    monkeypatch.setattr(host_platforms, "windows_facts", lambda: ("X", ("avx2",), "py-cpuinfo"))
    facts = host.detect_host()
    assert facts.isa_features == ("avx2",) and facts.extra["isa_source"] == "py-cpuinfo"


def test_systemd_scope_command_and_fallback(monkeypatch):
    command = memcap.systemd_scope_command(512, user=True)
    assert command[:4] == ["systemd-run", "--user", "--scope", "--quiet"] and command[-1] == "--"
    assert "MemoryMax=512M" in command and "MemorySwapMax=0" in command
    assert "--user" not in memcap.systemd_scope_command(512, user=False)
    assert memcap.systemd_scope_label(512).startswith("memory capped at 512 MB (systemd-run scope")

    monkeypatch.setattr(memcap, "_scope_probe", {})
    monkeypatch.setattr("shutil.which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(memcap.Path, "exists", lambda self: True)  # a cgroup-v2 host
    asked = []
    assert memcap.systemd_scope_prefix(300, run=lambda cmd: asked.append(cmd) or 0)[-1] == "--"
    assert asked[0][-1] == "true"  # probed once with a no-op command in such a scope
    assert memcap.systemd_scope_prefix(300, run=lambda cmd: 1) is not None  # cached per limit
    assert memcap.systemd_scope_prefix(301, run=lambda cmd: 1) is None  # no manager answered: RLIMIT_AS
    monkeypatch.setattr("shutil.which", lambda name: None)
    assert memcap.systemd_scope_prefix(302, run=lambda cmd: 0) is None  # no systemd-run


def test_this_machine_without_systemd_falls_back():
    """This VM has systemd-run installed but no systemd as init (and cgroup v1): no scope."""
    memcap._scope_probe.clear()
    if memcap.systemd_scope_prefix(256) is not None:
        pytest.skip("this machine runs systemd scopes; the fallback is covered by the monkeypatched test")


def test_worker_started_in_a_scope_is_not_capped_again(monkeypatch, tiny_artifact):
    """The harness prefixes the worker's command and tells it the cap is in place (no RLIMIT_AS)."""
    monkeypatch.setattr(harness, "make_cgroup_cap", lambda limit, name: None)
    monkeypatch.setattr(harness, "systemd_scope_prefix", lambda limit: ["env", "EDGEKIT_TEST_SCOPE=1"])
    settings = BenchSettings(threads=1, runs=10, warmup=1, memory_cap_mb=8192)
    [summary] = run_benchmark([Variant("tiny", "artifact", tiny_artifact)], TextDataset(["a b", "c"], None, "t"),
                              settings)  # fmt: skip
    assert summary["memory_cap"] == memcap.systemd_scope_label(8192)
