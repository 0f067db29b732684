"""NNCF post-training INT8 for OpenVINO IR, plain or under an accuracy budget."""

from __future__ import annotations

from pathlib import Path

from edgekit.errors import ExportError
from edgekit.quantize.calibration import Feed


def nncf_int8(
    source_xml: Path,
    target_xml: Path,
    feeds: list[Feed],
    validation: tuple[list[Feed], list[int]] | None = None,
    max_drop: float = 0.01,
    model_type: str | None = "TRANSFORMER",
    preset: str | None = None,
    fast_bias_correction: bool = True,
    ignored: dict[str, list[str]] | None = None,
) -> None:
    """Quantize with ``model_type=TRANSFORMER`` (keeps sensitive ops such as softmax in FP) for
    transformers; ``model_type=None`` is NNCF's default scheme, the one for CNNs.

    With ``validation`` (feeds and label ids), runs ``quantize_with_accuracy_control``:
    layers are reverted to FP32 until the accuracy drop is at most ``max_drop`` (absolute,
    0.01 = one point). ``preset`` ("performance" or "mixed") and ``fast_bias_correction`` are
    passed to NNCF as they are (None: NNCF's default preset for the model type). ``ignored``: NNCF's
    ``IgnoredScope`` fields (``names``, ``patterns``, ``types``): those operations stay in FP32; a name or
    pattern that matches nothing in the graph is an error (``validate=True``), not a silent no-op.
    """
    try:
        import nncf
        import openvino as ov
    except ImportError:
        raise ExportError("ov-int8 needs NNCF and OpenVINO: pip install 'edgekit[convert,openvino]'.") from None

    model = ov.Core().read_model(str(source_xml))
    calibration = nncf.Dataset(feeds)
    kind: dict = {} if model_type is None else {"model_type": getattr(nncf.ModelType, model_type)}
    if preset is not None:  # PERFORMANCE: symmetric activations; MIXED: asymmetric ones (after ReLU6, skewed)
        kind["preset"] = getattr(nncf.QuantizationPreset, preset.upper())
    kind["fast_bias_correction"] = fast_bias_correction
    if ignored and any(ignored.values()):  # mixed precision: NNCF's own scope of operations left in FP32
        kind["ignored_scope"] = nncf.IgnoredScope(**ignored, validate=True)
    try:
        if validation is None:
            quantized = nncf.quantize(model, calibration, subset_size=len(feeds), **kind)
        else:
            val_feeds, labels = validation
            quantized = nncf.quantize_with_accuracy_control(
                model,
                calibration_dataset=calibration,
                validation_dataset=nncf.Dataset(list(zip(val_feeds, labels, strict=True))),
                validation_fn=_accuracy_of,
                max_drop=max_drop,
                drop_type=nncf.DropType.ABSOLUTE,
                subset_size=len(feeds),
                **kind,
            )
    except Exception as exc:  # nncf raises many kinds of errors from deep inside
        raise ExportError(f"NNCF quantization failed: {exc}") from exc
    ov.save_model(quantized, str(target_xml), compress_to_fp16=False)


def _accuracy_of(compiled_model, validation_items) -> float:
    output = compiled_model.outputs[0]
    hits = total = 0
    for feed, label in validation_items:
        logits = compiled_model(feed)[output]
        hits += int(logits.argmax(-1)[0] == label)
        total += 1
    return hits / max(total, 1)
