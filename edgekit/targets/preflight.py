"""Pre-flight: will INT8 (or FP16) pay off on this target, with each engine?

A prediction from the CPU's instruction set and what was measured on such CPUs, made
before anything is built; ``edgekit convert`` later checks it against its own benchmark
of the variants and says where they disagree. Figures quoted in reasons come from
docs/stack-findings.md (AMD EPYC, AVX2 without VNNI, 2 threads, MiniLM at sequence 32/128).

The advice depends on the model family (``task``): a CNN's INT8 is another kernel story than a
transformer's (ORT fuses QLinearConv chains, dynamic INT8 runs slow ``ConvInteger``). The image
figures come from docs/stack-findings.md section 10 and docs/images.md (EfficientNet-Lite0, a Xeon
with avx512_vnni/avx_vnni/amx_int8, and an AVX2-only EPYC: benchmarks/cnn_int8_host.py); where no CNN
was measured the verdict is "unknown".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

Verdict = Literal["faster", "similar", "slower", "unknown"]
VNNI_FEATURES = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})


@dataclass(frozen=True)
class Outlook:
    engine: str
    precision: str
    verdict: Verdict  # compared with the same engine in fp32
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def is_warning(self) -> bool:
        return self.verdict in ("slower", "unknown")


IMAGE_TASKS = frozenset({"image-classification"})  # convolutional models: the CNN measurements apply


def outlook(
    arch: str, features: list[str] | tuple[str, ...], engines: list[str], task: str = "text-classification"
) -> list[Outlook]:
    """Expected effect of each reduced precision per engine, relative to that engine's FP32."""
    isa = set(features)
    cnn = task in IMAGE_TASKS
    found: list[Outlook] = []
    if "onnxruntime" in engines:
        found += _ort_int8_cnn(arch, isa) if cnn else _ort_int8(arch, isa)
        found.append(
            Outlook(
                "onnxruntime",
                "fp16",
                "slower",
                "ONNX Runtime's CPU provider runs most FP16 ops through casts; FP16 is for GPU/NPU providers",
            )
        )
    if "openvino" in engines:
        found += _openvino_int8_cnn(arch, isa) if cnn else _openvino_int8(arch, isa)
        found.append(
            Outlook(
                "openvino",
                "fp16",
                "similar",
                "FP16 weight compression halves the file; the CPU plugin still computes in FP32",
            )
        )
    return found


def _ort_int8(arch: str, isa: set[str]) -> list[Outlook]:
    if arch == "x86_64":
        if isa & VNNI_FEATURES:
            why = f"{'/'.join(sorted(isa & VNNI_FEATURES))}: INT8 dot products in one instruction"
            return [Outlook("onnxruntime", "int8", "faster", why)]
        if "avx2" in isa:
            why = (
                "AVX2 without VNNI: u8*s8 products via pmaddubsw, measured 1.2-1.4x over ORT FP32 "
                "(dynamic INT8, MiniLM); quantize with reduce_range + per-channel to avoid saturation"
            )
            return [Outlook("onnxruntime", "int8", "faster", why)]
        return [Outlook("onnxruntime", "int8", "unknown", "no AVX2: INT8 kernels fall back to slow paths; measure")]
    if arch == "aarch64":
        if {"dotprod", "i8mm"} & isa:
            why = f"{'/'.join(sorted({'dotprod', 'i8mm'} & isa))}: INT8 dot-product instructions"
            return [Outlook("onnxruntime", "int8", "faster", why)]
        return [
            Outlook("onnxruntime", "int8", "unknown", "NEON without dotprod: INT8 gains are small or none; measure")
        ]
    return [Outlook("onnxruntime", "int8", "unknown", f"no rule for {arch}; measure")]


def _openvino_int8(arch: str, isa: set[str]) -> list[Outlook]:
    if arch == "x86_64":
        if isa & VNNI_FEATURES:
            why = f"{'/'.join(sorted(isa & VNNI_FEATURES))}: the CPU plugin's INT8 kernels use VNNI"
            return [Outlook("openvino", "int8", "faster", why)]
        why = (
            "no VNNI: NNCF INT8 measured slower than OpenVINO FP32 on an AVX2-only EPYC "
            "(13.4 vs 11.5 ms at sequence 32, 38.6 vs 29.0 ms at 128); prefer FP32 or ORT INT8"
        )
        return [Outlook("openvino", "int8", "slower", why)]
    return [Outlook("openvino", "int8", "unknown", f"OpenVINO INT8 on {arch} is not characterised here; measure")]


def _ort_int8_cnn(arch: str, isa: set[str]) -> list[Outlook]:
    if arch == "x86_64" and isa & VNNI_FEATURES:
        why = (
            f"{'/'.join(sorted(isa & VNNI_FEATURES))}: static QDQ over every operator (fused QLinearConv) measured "
            "1.7x over ORT FP32 on EfficientNet-Lite0 at 224 px; dynamic INT8 (ConvInteger) 7.7x slower: use "
            "ort-int8-static, not ort-int8-dynamic"
        )
        return [Outlook("onnxruntime", "int8", "faster", why)]
    if arch == "x86_64" and "avx2" in isa:
        why = (
            "AVX2 without VNNI: static QDQ with reduce_range weights measured 1.25x over ORT FP32 on "
            "EfficientNet-Lite0 at 224 px with decode and pre-processing (10.9 vs 13.6 ms; model alone 1.48-1.59x)"
            "; full-range weights saturate 16-bit sums there (ImageNet top-5 kept 33/45 vs 38/45)"
        )
        return [Outlook("onnxruntime", "int8", "faster", why)]
    if arch in ("x86_64", "aarch64"):
        why = (
            "no CNN measured without VNNI-class or AVX2 INT8 instructions here: static QDQ is the only ORT "
            "INT8 that can pay (dynamic ConvInteger was 7.7x slower even with VNNI); measure"
        )
        return [Outlook("onnxruntime", "int8", "unknown", why)]
    return [Outlook("onnxruntime", "int8", "unknown", f"no rule for {arch}; measure")]


def _openvino_int8_cnn(arch: str, isa: set[str]) -> list[Outlook]:
    if arch == "x86_64" and isa & VNNI_FEATURES:
        why = (
            f"{'/'.join(sorted(isa & VNNI_FEATURES))}: NNCF INT8 measured about 2x OpenVINO FP32 on "
            "EfficientNet-Lite0 at 224 px (default CNN scheme)"
        )
        return [Outlook("openvino", "int8", "faster", why)]
    if arch == "x86_64" and "avx2" in isa:
        why = (
            "AVX2 without VNNI: NNCF INT8 measured 1.26x over OpenVINO FP32 on EfficientNet-Lite0 at 224 px "
            "with decode and pre-processing (11.7 vs 14.7 ms), unlike transformers there (MiniLM INT8 was slower)"
        )
        return [Outlook("openvino", "int8", "faster", why)]
    why = (
        f"NNCF INT8 for CNNs is not characterised on {arch} without VNNI or AVX2 (the MiniLM slow-down on "
        "AVX2 is a transformer result); measure"
    )
    return [Outlook("openvino", "int8", "unknown", why)]


@dataclass(frozen=True)
class FusionChoice:
    """Whether ``ort-int8-dynamic`` fuses the transformer before quantizing (its ``fuse: null`` default)."""

    fuse: bool
    measured: bool  # False: no measurement on this ISA class, today's unfused behaviour kept
    reason: str


def isa_class(arch: str, features: list[str] | tuple[str, ...]) -> str:
    """The CPU classes whose INT8 GEMM kernels differ in ONNX Runtime's MLAS (it picks them from CPUID)."""
    isa = set(features)
    if arch != "x86_64":
        return arch
    if "amx_int8" in isa:
        return "x86-amx"
    if isa & {"avx512_vnni", "avx_vnni"}:
        return "x86-vnni"
    return "x86-avx2" if "avx2" in isa else "x86"


# Measured with benchmarks/int8_profile.py (SST-2 MiniLM-L6 teacher, batch 1, 2 threads, docs/quantization.md);
# classes not listed were not measured and keep the unfused graph until someone measures them there.
_FUSION_MEASURED: dict[str, tuple[bool, str]] = {
    "x86-amx": (True, "fused QAttention INT8 measured 1.21x faster than unfused dynamic INT8 (p50 2.91 vs "
                      "3.52 ms, Xeon with AMX-INT8/AVX512-VNNI), accuracy 0.8911 vs 0.8888"),
    "x86-avx2": (True, "fused QAttention INT8 measured 1.10x faster than unfused dynamic INT8 (p50 4.23 vs "
                       "4.65 ms, AVX2-only EPYC; ORT's kernel time 4.27 vs 8.74 ms per inference), accuracy "
                       "0.8888 with reduce_range vs 0.8888"),
}  # fmt: skip


def fusion_default(arch: str, features: list[str] | tuple[str, ...], task: str = "text-classification") -> FusionChoice:
    if task in IMAGE_TASKS:
        return FusionChoice(False, False, "transformer fusion does not apply to convolutional models")
    cls = isa_class(arch, features)
    if cls in _FUSION_MEASURED:
        fuse, why = _FUSION_MEASURED[cls]
        return FusionChoice(fuse, True, f"{cls}: {why}")
    why = "fusion before INT8 not measured on this ISA class; measure on the device (benchmarks/int8_profile.py)"
    return FusionChoice(False, False, f"{cls}: {why}")
