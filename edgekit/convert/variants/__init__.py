"""Variant kinds ``convert`` can build: the registry (registry.py) and the built-in kinds,
one class each (onnx.py: ONNX Runtime, openvino.py: OpenVINO). See docs/architecture.md,
"How to add a variant"."""

from edgekit.convert.variants.coreml import CoremlVariant
from edgekit.convert.variants.executorch import ExecutorchFp32, ExecutorchInt8
from edgekit.convert.variants.onnx import OnnxFp16, OnnxFp32, OrtInt8Dynamic, OrtInt8Static
from edgekit.convert.variants.openvino import OvFp16, OvFp32, OvInt8
from edgekit.convert.variants.ort_mobile import OrtMobileFp32, OrtMobileInt8
from edgekit.convert.variants.registry import (
    ENTRY_POINT_GROUP,
    REFERENCE,
    BuildContext,
    BuildOutput,
    VariantKind,
    VariantOptions,
    get_variant,
    register_variant,
    resolve_options,
    variant_table,
    variants,
)

for _kind in (OnnxFp32, OrtInt8Dynamic, OrtInt8Static, OnnxFp16, OvFp32, OvFp16, OvInt8):
    register_variant(_kind)
for _kind in (OrtMobileFp32, OrtMobileInt8, CoremlVariant, ExecutorchFp32, ExecutorchInt8):  # phones: docs/mobile.md
    register_variant(_kind)

__all__ = ["ENTRY_POINT_GROUP", "REFERENCE", "BuildContext", "BuildOutput", "VariantKind", "VariantOptions",
           "get_variant", "register_variant", "resolve_options", "variant_table", "variants"]  # fmt: skip
