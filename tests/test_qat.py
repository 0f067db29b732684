"""Quantization-aware fine-tuning before ORT static INT8 (edgekit.quantize.qat): batch norms folded and
every layer found in the ONNX graph, INT8 simulated as ORT computes it, a lower INT8 error on inputs the
fine-tuning never saw, the written graph checked, and clear refusals. Tiny random CNNs built here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
SIDE = 16


def _tiny_cnn(seed: int = 0):
    """tiny_mobilenet with batch-norm statistics far from identity, so folding them matters, and logits of
    a trained model's size (RMS ~4; a random head gives ~0.1, where INT8 error is lost in the noise)."""
    from edgekit.demo.cnn import tiny_mobilenet

    torch.manual_seed(seed)
    model = tiny_mobilenet(num_classes=5, in_channels=3, width=8)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    with torch.no_grad():
        model.classifier[1].weight.mul_(30.0)
    return model.eval()


def _export(model, path: Path) -> Path:
    torch.onnx.export(model, (torch.zeros(1, 3, SIDE, SIDE),), str(path), input_names=["pixel_values"],
                      output_names=["logits"], dynamic_axes={"pixel_values": {0: "batch"}}, opset_version=17,
                      dynamo=False)  # fmt: skip
    return path


def _feeds(count: int, seed: int) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [{"pixel_values": rng.uniform(-2, 2, (1, 3, SIDE, SIDE)).astype(np.float32)} for _ in range(count)]


def _logits(path: Path, feeds: list) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.concatenate([session.run(None, feed)[0] for feed in feeds])


def _int8(source: Path, target: Path, feeds: list) -> Path:
    from edgekit.quantize.ort import quantize_static_int8
    from edgekit.tasks.image_classification import STATIC_OP_TYPES

    quantize_static_int8(source, target, feeds, "minmax", list(STATIC_OP_TYPES), True, False, False)
    return target


@pytest.fixture(scope="module")
def fine_tuned(tmp_path_factory):
    from edgekit.quantize.ort import prepare_for_quantization
    from edgekit.quantize.qat import QatSettings, quantization_aware_finetune
    from edgekit.quantize.qdq_simulation import QuantScheme

    work = tmp_path_factory.mktemp("qat")
    model = _tiny_cnn()
    reference = _export(model, work / "fp32.onnx")
    prepared = work / "prepared.onnx"
    prepare_for_quantization(reference, prepared)
    calibration = _feeds(32, seed=1)
    settings = QatSettings(epochs=30, learning_rate=2e-4, batch_size=8)  # 2e-3 over-fits: worse unseen
    scheme = QuantScheme(per_channel=True, reduce_range=False, signed_activations=False, symmetric_activations=False)
    record = quantization_aware_finetune(model, prepared, work / "qat.onnx", calibration, set(), scheme, settings)
    return {"work": work, "model": model, "reference": reference, "calibration": calibration, "record": record}


def test_every_layer_is_found_folded_simulated_and_trained(fine_tuned):
    record = fine_tuned["record"]
    layers = sum(isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)) for m in fine_tuned["model"].modules())
    assert record["layers_fine_tuned"] == layers == record["layers_simulated_int8"]
    assert record["rows"] == 64  # 32 inputs and their mirrors
    error = record["simulated_int8_rms_error"]
    assert error["after"] < 0.7 * error["before"], record


def test_the_fine_tuned_int8_model_is_closer_to_fp32_on_unseen_inputs(fine_tuned):
    """The property that matters: ORT's real INT8 of the fine-tuned graph, calibrated the same way, errs less
    against the untouched FP32 model on inputs neither the fine-tuning nor the calibration saw."""
    work, calibration = fine_tuned["work"], fine_tuned["calibration"]
    unseen = _feeds(48, seed=2)
    truth = _logits(fine_tuned["reference"], unseen)
    plain = _logits(_int8(fine_tuned["reference"], work / "plain-int8.onnx", calibration), unseen)
    qat = _logits(_int8(work / "qat.onnx", work / "qat-int8.onnx", calibration), unseen)
    plain_error, qat_error = (float(np.sqrt(((x - truth) ** 2).mean())) for x in (plain, qat))
    assert qat_error < 0.8 * plain_error, (qat_error, plain_error)


def test_the_simulation_rounds_as_ort_does():
    from edgekit.quantize.qdq_simulation import QuantScheme

    unsigned = QuantScheme(True, False, signed_activations=False, symmetric_activations=False)
    assert unsigned.activation_qparams(0.5, 6.0) == pytest.approx((6.0 / 255, 0, 0, 255))  # zero kept in range
    scale, zero, _, _ = unsigned.activation_qparams(-1.0, 3.0)
    assert scale == pytest.approx(4.0 / 255) and zero == 64
    symmetric = QuantScheme(True, False, signed_activations=False, symmetric_activations=True)
    assert symmetric.activation_qparams(-1.0, 3.0)[1] == 128
    assert QuantScheme(True, True, False, False).weight_qmax == 64
    assert QuantScheme(True, False, True, False).activation_qparams(-1.0, 1.0)[2:] == (-128, 127)


def test_a_graph_from_another_model_is_refused(tmp_path):
    from edgekit.errors import ExportError
    from edgekit.quantize.ort import prepare_for_quantization
    from edgekit.quantize.qat import QatSettings, quantization_aware_finetune
    from edgekit.quantize.qdq_simulation import QuantScheme

    prepared = tmp_path / "prepared.onnx"
    prepare_for_quantization(_export(_tiny_cnn(seed=1), tmp_path / "other.onnx"), prepared)
    scheme = QuantScheme(True, False, False, False)
    with pytest.raises(ExportError, match="none of the model's convolutions"):
        quantization_aware_finetune(_tiny_cnn(seed=0), prepared, tmp_path / "qat.onnx", _feeds(4, 0), set(), scheme,
                                    QatSettings(epochs=1))  # fmt: skip
    with pytest.raises(ExportError, match="calibration set is empty"):
        quantization_aware_finetune(_tiny_cnn(), prepared, tmp_path / "qat.onnx", [], set(), scheme, QatSettings())
    assert not (tmp_path / "qat.onnx").exists()


def test_an_untraceable_module_gets_an_actionable_error():
    from edgekit.errors import RecipeError
    from edgekit.quantize.qat import _folded_copy

    class DataDependent(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3)

        def forward(self, x):
            return self.conv(x) if x.sum() > 0 else -self.conv(x)

    with pytest.raises(RecipeError, match="torch.fx.*Drop the variant's `qat` option"):
        _folded_copy(DataDependent())


def test_qat_needs_the_pytorch_model_of_an_image_classifier(tmp_path, fine_tuned):
    from edgekit.convert.variants import get_variant
    from edgekit.convert.variants.registry import BuildContext
    from edgekit.errors import RecipeError
    from edgekit.targets.profiles import load_target

    kind = get_variant("ort-int8-static")
    options = kind.Options(qat={"epochs": 1}, op_types=["Conv"])
    context = BuildContext(fine_tuned["reference"].parent, load_target("host"), [], task="image-classification")
    with pytest.raises(RecipeError, match="not an ONNX file"):
        kind.build(context, tmp_path, options)
    assert list(tmp_path.iterdir()) == []


def test_convert_builds_a_qat_variant_and_records_it(tmp_path):
    """Through the pipeline: a factory module, the option from the recipe, the record in the manifest, the
    gate run against the untouched FP32 reference."""
    import json

    from image_helpers import tiny_cnn_recipe, two_class_images

    from edgekit.convert.pipeline import convert
    from edgekit.convert.recipe import build_recipe

    variants = ["onnx-fp32", {"name": "ort-int8-static", "qat": {"epochs": 2, "batch_size": 4}}]
    recipe = tiny_cnn_recipe(tmp_path / "out", two_class_images(tmp_path / "data"), variants)
    summary = convert(build_recipe(recipe)).summary
    manifest = json.loads((tmp_path / "out" / summary.locations["ort-int8-static"] / "manifest.json").read_text())
    qat = manifest["metrics"]["build"]["qat"]
    assert qat["layers_fine_tuned"] == 8 and qat["rows"] == 12 and qat["epochs"] == 2
    assert "agreement" in json.dumps(manifest["metrics"]["gate"])
    assert not list((tmp_path / "out").rglob("qat-fp32.onnx")), "the fine-tuned FP32 graph is scratch, not shipped"


@pytest.mark.parametrize(
    "qat", [{"epochs": 0}, {"learning_rate": -1.0}, {"max_samples": 100_000}, {"epoch": 1}, {"batch_size": 0}]
)
def test_bad_qat_options_are_refused_by_the_recipe(tmp_path, qat):
    """Out-of-range or unknown keys: a RecipeError naming the field, before any work and nothing written."""
    from image_helpers import tiny_cnn_recipe

    from edgekit.convert.recipe import build_recipe
    from edgekit.errors import RecipeError

    fields = tiny_cnn_recipe(tmp_path / "out", tmp_path, ["onnx-fp32", {"name": "ort-int8-static", "qat": qat}])
    with pytest.raises(RecipeError, match="qat"):
        build_recipe(fields)
    assert not (tmp_path / "out").exists()
