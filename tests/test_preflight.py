"""Pre-flight expectations on faked CPU feature sets."""

import pytest

from edgekit.targets.preflight import outlook


def _verdicts(arch, features, engines=("onnxruntime", "openvino")):
    return {(o.engine, o.precision): o.verdict for o in outlook(arch, features, list(engines))}


def test_avx2_without_vnni_warns_about_openvino_int8():
    verdicts = _verdicts("x86_64", ["avx", "avx2", "fma"])
    assert verdicts[("onnxruntime", "int8")] == "faster"
    assert verdicts[("openvino", "int8")] == "slower"
    reason = next(o.reason for o in outlook("x86_64", ["avx2"], ["openvino"]) if o.precision == "int8")
    assert "VNNI" in reason


@pytest.mark.parametrize("vnni", ["avx512_vnni", "avx_vnni", "amx_int8"])
def test_vnni_makes_int8_pay_on_both_engines(vnni):
    verdicts = _verdicts("x86_64", ["avx2", vnni])
    assert verdicts[("onnxruntime", "int8")] == verdicts[("openvino", "int8")] == "faster"


def test_arm_dotprod_versus_plain_neon():
    assert _verdicts("aarch64", ["neon", "dotprod"], ["onnxruntime"])[("onnxruntime", "int8")] == "faster"
    plain = outlook("aarch64", ["neon"], ["onnxruntime"])
    int8 = next(o for o in plain if o.precision == "int8")
    assert int8.verdict == "unknown" and int8.is_warning


def test_fp16_on_cpu_and_only_requested_engines():
    verdicts = _verdicts("x86_64", ["avx2"], ["onnxruntime"])
    assert verdicts[("onnxruntime", "fp16")] == "slower"
    assert not any(engine == "openvino" for engine, _ in verdicts)
    assert _verdicts("riscv64", [], ["onnxruntime"])[("onnxruntime", "int8")] == "unknown"
