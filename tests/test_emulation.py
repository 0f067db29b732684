"""Imitating a target on this host: threads, the oneDNN ISA cap for OpenVINO, and the caveats."""

from edgekit.targets.emulation import onednn_isa_cap, plan_emulation
from edgekit.targets.host import HostInfo
from edgekit.targets.profiles import load_target

AVX2 = ("sse4_2", "avx", "avx2", "fma", "f16c")
VNNI_HOST = HostInfo("x86_64", "EPYC", 2, 2, (*AVX2, "avx512_vnni", "avx512f", "avx_vnni"), 8192, "Linux", "3.11")
AVX2_HOST = HostInfo("x86_64", "old EPYC", 2, 2, AVX2, 8192, "Linux", "3.11")


def test_isa_levels():
    assert onednn_isa_cap(["avx", "avx2", "fma"]) == "AVX2"
    assert onednn_isa_cap(["avx2", "avx_vnni"]) == "AVX2_VNNI"
    assert onednn_isa_cap(["avx2", "avx512f", "avx512_vnni"]) == "AVX512_CORE_VNNI"
    assert onednn_isa_cap(["neon"]) is None


def test_avx2_box_on_a_vnni_host_caps_openvino():
    plan = plan_emulation(load_target("x86-avx2-box"), VNNI_HOST)
    assert plan.engine_env == {"openvino": {"ONEDNN_MAX_CPU_ISA": "AVX2"}}
    assert plan.threads == 2
    assert any("ONNX Runtime" in c for c in plan.caveats), "ORT cannot be capped: say so"
    assert "OpenVINO ISA capped at AVX2" in plan.label


def test_no_cap_when_the_host_is_no_richer_or_the_arch_differs():
    assert plan_emulation(load_target("x86-avx2-box"), AVX2_HOST).engine_env == {}
    arm = plan_emulation(load_target("raspberry-pi-5"), VNNI_HOST)
    assert arm.engine_env == {} and any("aarch64" in c for c in arm.caveats)
    assert arm.threads == 2 and any("4 threads" in c for c in arm.caveats)


def test_every_profile_feature_can_be_detected_on_a_host():
    """A profile feature the host detector cannot report would silently disable emulation."""
    from edgekit.targets.host import detectable_features
    from edgekit.targets.profiles import KNOWN_ISA_FEATURES

    assert detectable_features() >= KNOWN_ISA_FEATURES


def test_on_device_refuses_another_architecture_and_names_differences(monkeypatch):
    import pytest

    from edgekit.errors import TargetError
    from edgekit.targets import emulation

    monkeypatch.setattr("edgekit.targets.host.detect_host", lambda: VNNI_HOST)
    with pytest.raises(TargetError, match="aarch64"):
        emulation.target_run(load_target("raspberry-pi-5"), on_device=True)
    run = emulation.target_run(load_target("x86-avx2-box"), on_device=True)
    assert run.plan is None and run.mode == "measured-on-device"
    assert run.threads == 2, "never more threads than the machine has cores"
    caveats = run.target_info("x86-avx2-box")["caveats"]
    assert any("4 cores" in c for c in caveats) and any("avx512_vnni" in c for c in caveats)
