"""Phone variants on the tiny BERT, through the real `convert` pipeline: ONNX Runtime Mobile `.ort`
(FP32, dynamic INT8) loaded and gated here on the CPU EP, and Core ML `.mlpackage`, built and sealed
but not runnable on Linux (never gated, recommended or counted as passed)."""

from __future__ import annotations

import importlib.util
import json
import platform
import shutil

import numpy as np
import pytest

from edgekit.artifact import load_manifest
from edgekit.convert.pipeline import convert
from edgekit.convert.recipe import build_recipe
from edgekit.convert.summary import markdown
from edgekit.data import read_text_dataset
from edgekit.errors import ArtifactError
from edgekit.runtime import EdgeModel

ORT_MOBILE = ["ort-mobile-fp32", "ort-mobile-int8"]
HAS_COREML = importlib.util.find_spec("coremltools") is not None
NOT_DARWIN = platform.system() != "Darwin"


def _recipe(model, out, data, variants, target):
    return build_recipe({"model": str(model), "out": str(out), "data": {"path": str(data)}, "target": target,
                         "variants": variants, "bench": {"enabled": False}})  # fmt: skip


@pytest.fixture(scope="module")
def android(tmp_path_factory, trained_tiny_dir, sentiment_eval):
    """The Snapdragon phone profile: NNAPI in its providers (Runtime optimisation style by default)."""
    out = tmp_path_factory.mktemp("mobile") / "android"
    return convert(_recipe(trained_tiny_dir, out, sentiment_eval, ["onnx-fp32", *ORT_MOBILE],
                           "snapdragon-8-gen3-phone"))  # fmt: skip


@pytest.fixture(scope="module")
def iphone(tmp_path_factory, trained_tiny_dir, sentiment_eval):
    if not HAS_COREML:
        pytest.skip("coremltools is not installed (pip install 'edgekit[coreml]')")
    out = tmp_path_factory.mktemp("mobile") / "iphone"
    return convert(_recipe(trained_tiny_dir, out, sentiment_eval, ["onnx-fp32", "ort-mobile-fp32", "coreml"],
                           "iphone-15-pro"))  # fmt: skip


def test_ort_mobile_artifacts_hold_the_ort_graph_and_its_operator_config(android):
    for name in ORT_MOBILE:
        folder = android.out / android.summary.locations[name]
        manifest = load_manifest(folder)
        assert manifest.model_file == "model.ort" and manifest.engine == "onnxruntime"
        assert set(manifest.files) == {"model.ort", "required_operators.config", "tokenizer.json"}
        assert not list(folder.rglob("*.onnx")), "no ONNX intermediate is left in the artifact"
        config = (folder / "required_operators.config").read_text()
        assert "ai.onnx;" in config and "MatMul" in config, config  # ORT's reduced-build config format
        assert "/" not in config and "tmp" not in config, "no build-machine path in the artifact"
        assert (folder / "model.ort").read_bytes()[4:8] == b"ORTM"  # the ORT format's flatbuffer identifier
        mobile = manifest.mobile
        assert mobile["format"] == "ort" and mobile["required_operators"] == "required_operators.config"
        # The profile lists QNN, NNAPI, CPU: only NNAPI is an ORT Mobile EP, with fp16 relaxation off.
        assert [p["name"] for p in mobile["execution_providers"]] == ["NNAPI"]
        assert "NNAPI_FLAG_USE_FP16" not in mobile["execution_providers"][0]["options"]["flags"]
        assert mobile["optimization_style"] == "runtime", "NNAPI is a compiling EP: ORT advises Runtime style"
        assert "--include_ops_by_config" in mobile["reduced_build"] and "--android" in mobile["reduced_build"]
        assert any("no NNAPI/XNNPACK provider" in note for note in manifest.notes)
        assert manifest.metrics["build"]["format"] == "ort"
    assert load_manifest(android.out / "ort-mobile-int8").batch_invariant is False
    assert load_manifest(android.out / "ort-mobile-int8").metrics["build"]["quantization"] == "dynamic"


def test_ort_mobile_runs_here_on_the_cpu_provider_and_agrees_with_the_reference(android, sentiment_eval):
    texts = read_text_dataset(sentiment_eval).texts
    reference = EdgeModel.load(android.out / "onnx-fp32").logits(texts)
    for name in ORT_MOBILE:
        model = EdgeModel.load(android.out / android.summary.locations[name])
        assert model.providers == ["CPUExecutionProvider"], "NNAPI/QNN are absent from the desktop wheel"
        assert "NnapiExecutionProvider" in model.settings.providers, "the manifest still asks for NNAPI"
        logits = model.logits(texts)
        agreement = np.mean(logits.argmax(-1) == reference.argmax(-1))
        if name == "ort-mobile-fp32":  # the same graph, optimised offline: float rounding only
            assert np.abs(logits - reference).max() < 1e-4
        assert agreement > 0.9, (name, agreement)
        batch = model.predict_batch(texts[:40])
        assert [p.label for p in batch] == [model.predict(t).label for t in texts[:40]]
        gate = load_manifest(model.root).metrics["gate"]
        assert gate["rows"] == 120 and gate["batch_consistency"]["label_flips"] == 0


def test_fixed_style_for_a_target_without_compiling_providers(tmp_path, trained_tiny_dir, sentiment_eval):
    out = tmp_path / "rpi"
    result = convert(_recipe(trained_tiny_dir, out, sentiment_eval, ["onnx-fp32", "ort-mobile-fp32"],
                             "raspberry-pi-5"))  # fmt: skip
    manifest = load_manifest(out / result.summary.locations["ort-mobile-fp32"])
    assert manifest.mobile["optimization_style"] == "fixed" and manifest.mobile["execution_providers"] == []
    assert manifest.metrics["build"]["target_platform"] == "arm"
    assert "session_options" not in manifest.mobile


def test_a_tampered_or_unlisted_ort_file_is_refused(android, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(android.out / "ort-mobile-fp32", copy)
    (copy / "model.ort").write_bytes((copy / "model.ort").read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(ArtifactError, match="integrity check"):
        EdgeModel.load(copy)
    shutil.copytree(android.out / "ort-mobile-fp32", tmp_path / "unlisted")
    manifest = json.loads((tmp_path / "unlisted" / "manifest.json").read_text())
    del manifest["files"]["model.ort"]
    (tmp_path / "unlisted" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="does not list it in `files`"):
        EdgeModel.load(tmp_path / "unlisted")


def test_coreml_is_built_sealed_and_never_recommended(iphone):
    summary = iphone.summary
    assert "coreml" in summary.built and summary.locations["coreml"] == "coreml", "its own folder, not rejected/"
    folder = iphone.out / "coreml"
    manifest = load_manifest(folder)  # every file hashed and verified
    assert manifest.model_file == "model.mlpackage" and manifest.engine == "coreml"
    package = {rel for rel in manifest.files if rel.startswith("model.mlpackage/")}
    on_disk = {p.relative_to(folder).as_posix() for p in (folder / "model.mlpackage").rglob("*") if p.is_file()}
    assert package == on_disk and "model.mlpackage/Manifest.json" in package
    assert any(rel.endswith("weight.bin") for rel in package)
    assert manifest.metrics["build"]["minimum_deployment_target"] == "iOS16"
    assert manifest.metrics["build"]["input_dtype"] == "int32"
    assert manifest.mobile == {"format": "mlpackage", "minimum_deployment_target": "iOS16", "input_dtype": "int32",
                               "batch": 1, "sequence": [2, 64]}  # fmt: skip
    if NOT_DARWIN:
        assert manifest.metrics["gate"]["skipped"].startswith("not runnable here")
        assert "parity" not in manifest.metrics and manifest.parity is None, "parity is never claimed"
        row = summary.variant("coreml")
        assert row["passed"] is False and row["not_runnable"] and summary.not_runnable["coreml"]
        assert "coreml" not in summary.rejected and summary.recommended != "coreml"
        assert "not runnable here: Core ML runs only on Apple platforms" in markdown(summary)
        iphone_ort = load_manifest(iphone.out / "ort-mobile-fp32")
        assert [p["name"] for p in iphone_ort.mobile["execution_providers"]] == ["CoreML"]
        assert "--ios" in iphone_ort.mobile["reduced_build"]


@pytest.mark.skipif(not NOT_DARWIN, reason="Core ML runs on macOS; the refusal is for other systems")
def test_loading_coreml_here_is_refused_with_the_reason(iphone):
    with pytest.raises(ArtifactError, match="Core ML runs only on Apple platforms.*this machine is Linux"):
        EdgeModel.load(iphone.out / "coreml")


def test_a_tampered_or_added_package_file_is_refused(iphone, tmp_path):
    copy = tmp_path / "coreml"
    shutil.copytree(iphone.out / "coreml", copy)
    weights = next((copy / "model.mlpackage").rglob("weight.bin"))
    weights.write_bytes(weights.read_bytes()[:-4] + b"\xff\xff\xff\xff")
    with pytest.raises(ArtifactError, match="integrity check"):
        EdgeModel.load(copy)
    added = tmp_path / "added"
    shutil.copytree(iphone.out / "coreml", added)
    (added / "model.mlpackage" / "Data" / "extra.bin").write_bytes(b"unhashed")
    with pytest.raises(ArtifactError, match="not listed in manifest.json `files`"):
        EdgeModel.load(added)
    linked = tmp_path / "linked"
    shutil.copytree(iphone.out / "coreml", linked)
    (linked / "model.mlpackage" / "Data" / "link").symlink_to("/etc/passwd")
    with pytest.raises(ArtifactError, match="symbolic link"):
        EdgeModel.load(linked)
    swapped = tmp_path / "swapped"  # the package folder itself a link to a look-alike elsewhere
    shutil.copytree(iphone.out / "coreml", swapped)
    shutil.move(swapped / "model.mlpackage", tmp_path / "elsewhere.mlpackage")
    (swapped / "model.mlpackage").symlink_to(tmp_path / "elsewhere.mlpackage")
    with pytest.raises(ArtifactError, match="symbolic link"):
        EdgeModel.load(swapped)


def test_xnnpack_gets_the_target_threads_and_a_quiet_session_pool():
    from edgekit.convert.variants.ort_mobile import mobile_providers
    from edgekit.targets.profiles import EngineChoice, load_target

    profile = load_target("raspberry-pi-5")
    choice = EngineChoice(engine="onnxruntime", providers=["XnnpackExecutionProvider", "CPUExecutionProvider"])
    [xnnpack] = mobile_providers(profile.model_copy(update={"engines": [choice]}))
    assert xnnpack["name"] == "XNNPACK" and xnnpack["options"] == {"intra_op_num_threads": str(profile.threads)}
    assert xnnpack["session_options"] == {"intra_op_num_threads": 1, "session.intra_op.allow_spinning": "0"}


def test_coreml_int8_weights_are_smaller_than_fp16(tiny_model_dir, tmp_path):
    if not HAS_COREML:
        pytest.skip("coremltools is not installed (pip install 'edgekit[coreml]')")
    import transformers

    from edgekit.export.coreml import CoremlPlan, export_coreml

    model = transformers.AutoModelForSequenceClassification.from_pretrained(tiny_model_dir).eval()
    names = ["input_ids", "attention_mask", "token_type_ids"]
    sizes = {}
    for precision in ("fp16", "int8"):
        settings = export_coreml(model, CoremlPlan(names, 64, precision), tmp_path / f"{precision}.mlpackage")
        assert settings["weights"].startswith(precision) and settings["sequence"] == [2, 64]
        sizes[precision] = next((tmp_path / f"{precision}.mlpackage").rglob("weight.bin")).stat().st_size
    assert sizes["int8"] < sizes["fp16"], sizes
