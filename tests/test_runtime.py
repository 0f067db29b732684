"""The slim runtime: the API a device app uses, its safety checks, and its import footprint."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import TINY_LABELS

from edgekit.errors import ArtifactError, InputError
from edgekit.runtime import EdgeModel, Prediction


@pytest.fixture(scope="module")
def model(tiny_artifact):
    return EdgeModel.load(tiny_artifact, threads=2)


def test_predict_returns_label_id_and_scores(model):
    prediction = model.predict("turn off the lights")
    assert isinstance(prediction, Prediction)
    assert prediction.label in TINY_LABELS
    assert prediction.label == model.labels[prediction.label_id]
    assert len(prediction.scores) == len(TINY_LABELS)
    assert sum(prediction.scores) == pytest.approx(1.0)
    assert prediction.confidence == max(prediction.scores)


def test_batch_matches_single_predictions(model):
    texts = ["ok", "this film was great fun", "what is the weather today and tomorrow, please tell me"]
    batch = model.predict_batch(texts)
    for text, from_batch in zip(texts, batch, strict=True):
        single = model.predict(text)
        assert single.label_id == from_batch.label_id
        np.testing.assert_allclose(single.scores, from_batch.scores, atol=1e-5)


def test_tokenization_matches_transformers(model, tiny_model_dir):
    import transformers

    reference = transformers.AutoTokenizer.from_pretrained(tiny_model_dir)
    texts = ["Turn OFF the lights!", "what's the weather, today?", "ünïcode and 123 numbers"]
    ours = model._preprocess(texts)
    theirs = reference(texts, padding=True, truncation=True, max_length=64, return_tensors="np")
    for name in ("input_ids", "attention_mask", "token_type_ids"):
        np.testing.assert_array_equal(ours[name], theirs[name])


def test_long_input_is_truncated_not_crashing(model):
    long_text = " ".join(["weather"] * 500)
    assert model._preprocess([long_text])["input_ids"].shape == (1, 64)
    assert model.predict(long_text).label in TINY_LABELS


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m: m.predict(""), "empty"),
        (lambda m: m.predict("   "), "empty"),
        (lambda m: m.predict(42), "int, not a str"),
        (lambda m: m.predict_batch([]), "empty list"),
        (lambda m: m.predict_batch("a string"), "list of texts"),
        (lambda m: m.predict_batch(["ok", None]), "Input 1 is a NoneType"),
    ],
)
def test_bad_inputs_get_clear_errors(model, call, message):
    with pytest.raises(InputError, match=message):
        call(model)


def test_tampered_model_is_refused(tmp_path, tiny_artifact):
    copy = shutil.copytree(tiny_artifact, tmp_path / "copy")
    with (copy / "model.onnx").open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ArtifactError, match="integrity check"):
        EdgeModel.load(copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["engine"] = "tensorrt-llm"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="Unknown engine 'tensorrt-llm'"):
        EdgeModel.load(copy, verify=False)


HEAVY = ("torch", "transformers", "optimum", "onnx", "pydantic", "yaml", "typer", "rich", "accelerate")


def test_runtime_imports_no_torch_or_transformers(tiny_artifact):
    """In a fresh interpreter: load and predict, then list what got imported."""
    script = (
        "import sys, json\n"
        "from edgekit.runtime import EdgeModel\n"
        f"m = EdgeModel.load({str(tiny_artifact)!r}, threads=1)\n"
        f"EdgeModel.load({str(tiny_artifact)!r}, target='host')  # what the bench worker does\n"
        f"EdgeModel.load({str(tiny_artifact)!r}, target={{'threads': 1, 'engines': {{}}}})  # ...on a device\n"
        "m.predict('turn off the lights')\n"
        "print(json.dumps(sorted({name.split('.')[0] for name in sys.modules})))\n"
    )
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    loaded = set(json.loads(output))
    assert {"numpy", "tokenizers", "onnxruntime"} <= loaded
    assert not loaded & set(HEAVY), f"runtime pulled in {sorted(loaded & set(HEAVY))}"


@pytest.mark.parametrize("engine_variant", ["onnx-fp32", "ov-fp32"])
def test_one_model_shared_by_eight_threads_matches_serial_use(engine_variant, tiny_artifact, tmp_path):
    """Thousands of predictions from 8 threads on one loaded model give the serial results."""
    from concurrent.futures import ThreadPoolExecutor

    folder = tiny_artifact
    if engine_variant == "ov-fp32":
        pytest.importorskip("openvino")
        from edgekit.convert.packaging import package_variant
        from edgekit.convert.variants import get_variant
        from edgekit.export.openvino import onnx_to_openvino

        folder = tmp_path / "ov"
        folder.mkdir()
        onnx_to_openvino(tiny_artifact / "model.onnx", folder / "model.xml", compress_to_fp16=False)
        package_variant(tiny_artifact, folder, get_variant("ov-fp32"), "model.xml")
    model = EdgeModel.load(folder, threads=1)
    words = "the film was good bad great awful weather today turn off lights music very really".split()
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(words, size=rng.integers(1, 30))) for _ in range(2400)]
    serial = [model.predict(t) for t in texts]
    with ThreadPoolExecutor(max_workers=8) as pool:
        parallel = list(pool.map(model.predict, texts))
    assert [p.label_id for p in parallel] == [p.label_id for p in serial]
    np.testing.assert_allclose([p.scores for p in parallel], [p.scores for p in serial], atol=1e-6)
