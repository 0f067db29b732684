"""`edgekit quickstart --lang zh`: the Chinese demo end to end on a tiny Chinese BERT, the default
base model's clear error without network, and the language table's refusals.

The tiny base is the shared tiny BERT (conftest) with every character of the zh demo data added to
its vocabulary, so the runtime's tokenizer sees real Chinese ids; its predictions mean little.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import build_tiny_classifier
from typer.testing import CliRunner

pytest.importorskip("torch")

from edgekit.cli import app  # noqa: E402
from edgekit.data import read_text_dataset  # noqa: E402
from edgekit.errors import SourceError  # noqa: E402
from edgekit.quickstart import DEMOS, demo_data_path, demo_spec, student_layers_for  # noqa: E402
from edgekit.runtime import EdgeModel  # noqa: E402

INTENTS = sorted(["lights_on", "lights_off", "set_temperature", "play_music", "set_alarm", "weather_query",
                  "order_status", "refund_return", "device_fault", "human_agent"])  # fmt: skip


@pytest.fixture(scope="module")
def tiny_zh_base(tmp_path_factory) -> Path:
    spec = DEMOS["zh"]
    texts = [t for name in (spec.train_file, spec.test_file) for t in read_text_dataset(demo_data_path(name)).texts]
    chars = sorted({c for text in texts for c in text if "\u4e00" <= c <= "\u9fff"})
    return build_tiny_classifier(tmp_path_factory.mktemp("zh") / "tiny-zh-bert", vocab_extra="\n".join(chars))


def test_zh_quickstart_end_to_end_on_a_tiny_chinese_bert(tmp_path, tiny_zh_base, monkeypatch):
    import edgekit.quickstart as quickstart

    # Two variants keep this under a minute; every quickstart variant is exercised by the English
    # integration test, and what is specific to Chinese here is the data, the base and the tokenizer.
    every = quickstart.quickstart_variants
    monkeypatch.setattr(quickstart, "quickstart_variants", lambda role="teacher": [
        name for name in every(role) if name in ("onnx-fp32", "ort-int8-dynamic")])  # fmt: skip
    monkeypatch.setitem(quickstart.DEMOS, "zh", replace(DEMOS["zh"], distill_epochs=2))
    out = tmp_path / "qs"
    args = ["quickstart", "--lang", "zh", "--base-model", str(tiny_zh_base), "--out", str(out),
            "--epochs", "1", "--rounds", "1", "--runs", "10", "--threads", "1"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "pytorch-fp32" in result.output and "Recommended for the teacher" in result.output
    assert "把客厅的灯关掉" in result.output, "the Try-it line is Chinese"

    record = json.loads((out / "teacher" / "training.json").read_text())
    assert record["train_rows"] == 600 and record["labels"] == INTENTS, "fine-tuned on the zh train split"
    summary = json.loads((out / "artifacts" / "summary.json").read_text())
    assert summary["gate"]["rows"] == 150, "gated on the zh held-out split"
    assert {"pytorch-fp32", "onnx-fp32", "ort-int8-dynamic"} <= {v["name"] for v in summary["variants"]}
    assert summary["recommended"] in summary["built"]
    assert json.loads((out / "artifacts" / "bench.json").read_text())["schema"] == "edgekit.bench/1"
    student = json.loads((out / "student" / "summary.json").read_text())
    assert student["distillation"]["student_layers"] == 1, "half of the tiny base's 2 layers"
    report = (out / "report.md").read_text(encoding="utf-8")
    assert report.startswith("<!-- written by edgekit quickstart") and "Benchmark details (student)" in report

    model = EdgeModel.load(out / "artifacts")
    assert sorted(model.labels) == INTENTS
    ids = model.tokenize(["把客厅的灯关掉"])["input_ids"][0].tolist()
    unknown = (tiny_zh_base / "vocab.txt").read_text().splitlines().index("[UNK]")
    assert len(ids) == 9 and unknown not in ids, "[CLS], one id per Chinese character (none unknown), [SEP]"
    assert EdgeModel.load(out / "student").predict("明天早上七点叫我起床").label in INTENTS


def test_zh_default_base_without_network_is_a_clear_error(tmp_path):
    assert os.environ.get("HF_HUB_OFFLINE") == "1", "conftest keeps the tests off the hub"
    result = CliRunner().invoke(app, ["quickstart", "--lang", "zh", "--out", str(tmp_path / "qs")])
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit), "an EdgekitError line, not a traceback"
    text = " ".join(result.output.split())
    assert "bert-base-chinese" in text and "--base-model" in text and "download bert-base-chinese" in text
    assert "Traceback" not in result.output
    assert not (tmp_path / "qs").exists(), "nothing written before the base model is found"


def test_unknown_lang_is_refused_with_the_choices(tmp_path):
    result = CliRunner().invoke(app, ["quickstart", "--lang", "fr", "--out", str(tmp_path / "qs")])
    assert result.exit_code != 0 and "unknown language 'fr'" in result.output and "en, zh" in result.output
    with pytest.raises(Exception, match="choose one of: en, zh"):
        demo_spec("fr")
    image = CliRunner().invoke(app, ["quickstart", "--task", "image-classification", "--lang", "zh"])
    assert image.exit_code != 0 and "text-classification only" in image.output


@pytest.mark.parametrize(
    "ref, message",
    [("missing-folder/", "does not exist"), ("./nowhere", "does not exist"), ("a/b/c", "does not exist"),
     ("FILE", "not a Hugging Face checkpoint folder"), ("DIR", "not a Hugging Face checkpoint folder")],
)  # fmt: skip
def test_bad_base_models_are_refused_before_anything_is_written(tmp_path, ref, message):
    (tmp_path / "FILE").write_text("not a model")
    (tmp_path / "DIR").mkdir()
    ref = str(tmp_path / ref) if ref in ("FILE", "DIR") else ref
    result = CliRunner().invoke(app, ["quickstart", "--lang", "zh", "--base-model", ref, "--out", str(tmp_path / "qs")])
    assert result.exit_code != 0 and isinstance(result.exception, SystemExit)
    assert message in " ".join(result.output.split()) and "--base-model" in " ".join(result.output.split())
    assert not (tmp_path / "qs").exists()


def test_the_student_is_at_most_half_the_teacher(tmp_path):
    def base(layers: int) -> Path:
        folder = tmp_path / f"b{layers}"
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps({"num_hidden_layers": layers}))
        return folder

    zh, en = DEMOS["zh"], DEMOS["en"]
    assert student_layers_for(zh, base(12)) == 4, "bert-base-chinese: 4 of 12"
    assert student_layers_for(zh, base(4)) == 2, "m3e-small: 2 of 4"
    assert student_layers_for(zh, base(1)) == 1
    assert student_layers_for(en, base(6)) == 3, "MiniLM-L6: 3 of 6, as before"
    with pytest.raises(SourceError):
        DEMOS["zh"].default_base()


def test_a_hub_base_without_safetensors_is_refused(tmp_path, monkeypatch):
    """A hub snapshot with only pickled weights is never loaded; a hub error becomes one line."""
    import huggingface_hub
    from huggingface_hub.errors import RepositoryNotFoundError

    from edgekit.base_checkpoints import HUB_FILES, base_checkpoint

    snapshot = tmp_path / "snapshot"
    snapshot.mkdir()
    (snapshot / "config.json").write_text("{}")
    (snapshot / "pytorch_model.bin").write_bytes(b"a pickle")
    asked = {}

    def fake_download(repo_id, allow_patterns=None, **kwargs):
        asked["patterns"] = allow_patterns
        return str(snapshot)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_download)
    with pytest.raises(SourceError, match="no config.json or no safetensors weights"):
        base_checkpoint("someone/pickled-bert")
    assert asked["patterns"] == HUB_FILES and not any(p.endswith(".bin") for p in HUB_FILES)

    def missing(repo_id, allow_patterns=None, **kwargs):
        raise RepositoryNotFoundError("404 Client Error: Repository Not Found\nmore detail")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", missing)
    with pytest.raises(SourceError, match=r"Could not download the base model someone/typo: 404 .* --base-model"):
        base_checkpoint("someone/typo")
