"""Which task a checkpoint is for, read from its config (``architectures``, ``id2label``, ``is_decoder``).

``detect_task`` returns a registered task name, or raises ``SourceError`` saying why none fits:
what the checkpoint is (its architectures), what edgekit converts, and what to do instead.
It reads only the config, never weights, so it is cheap and safe on untrusted folders; the
config may be a ``transformers.PretrainedConfig`` or the parsed ``config.json`` mapping.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from edgekit.errors import SourceError

MAX_CONFIG_BYTES = 4 * 1024 * 1024  # a real config.json is a few KB; refuse to parse a huge one

# Architecture-name suffix -> the task it is the head of (the order matters: longest first).
_HEADS = (
    ("ForSequenceClassification", "text-classification"),
    ("ForImageClassificationWithTeacher", "image-classification"),  # DeiT's distilled head
    ("ForImageClassification", "image-classification"),
)
# Suffixes edgekit recognises but does not convert, with what to do instead.
_NO_TASK = (
    ("ForMaskedLM", "a pre-trained encoder with its masked-language-model head, no classifier"),
    ("ForPreTraining", "a pre-trained encoder with its pre-training heads, no classifier"),
    ("ForCausalLM", "a causal language model (text generation)"),
    ("LMHeadModel", "a causal language model (text generation)"),
    ("ForConditionalGeneration", "a sequence-to-sequence generator"),
    ("ForTokenClassification", "a token classifier (NER / tagging: one label per token)"),
    ("ForQuestionAnswering", "an extractive question-answering model"),
    ("ForMultipleChoice", "a multiple-choice model"),
    ("ForNextSentencePrediction", "a next-sentence-prediction model"),
    ("ForMaskedImageModeling", "a pre-trained vision encoder with its masked-image head, no classifier"),
    ("Model", "a bare encoder without any head (e.g. a sentence-embedding model)"),
)
# A pre-trained body: a classifier can be fine-tuned from it (the other kinds are different tasks).
_NEEDS_A_HEAD = {"ForMaskedLM", "ForPreTraining", "Model", "ForMaskedImageModeling"}
_FINE_TUNE_FIRST = (
    "Fine-tune it for classification first (a fresh head on your labelled data: `edgekit quickstart` with it "
    "as the base model, or transformers' Trainer with AutoModelForSequenceClassification), then convert the "
    "fine-tuned folder."
)


def _field(config: Any, name: str) -> Any:
    if isinstance(config, Mapping):
        return config.get(name)
    return getattr(config, name, None)


def _architectures(config: Any) -> list[str]:
    value = _field(config, "architectures")
    if value is None or value == []:
        raise SourceError(
            "The checkpoint's config.json names no `architectures`, so edgekit cannot tell which head it has. "
            "Re-save the model with `model.save_pretrained(folder)`, which records it."
        )
    if not isinstance(value, list) or not all(isinstance(name, str) and name for name in value):
        raise SourceError(
            f"The checkpoint's config.json has a malformed `architectures` ({type(value).__name__}): it must be "
            'a list of class names such as ["BertForSequenceClassification"].'
        )
    return value


def _labels(config: Any, architectures: list[str]) -> list[str]:
    """``id2label`` as a list; its keys must be 0..n-1 (JSON gives them as strings)."""
    raw = _field(config, "id2label")
    if raw is None:  # transformers' default: two generic labels
        count = _field(config, "num_labels")
        return [f"LABEL_{i}" for i in range(count if isinstance(count, int) and count > 0 else 2)]
    if not isinstance(raw, Mapping):
        raise SourceError(f"{architectures[0]}: `id2label` in config.json must be a mapping of ids to label names.")
    try:
        by_id = {int(key): str(value) for key, value in raw.items()}
    except (TypeError, ValueError):
        raise SourceError(
            f"{architectures[0]}: `id2label` has a key that is not an integer ({sorted(map(str, raw))[:5]}); "
            'it must map 0..n-1 to label names, e.g. {"0": "negative", "1": "positive"}.'
        ) from None
    if sorted(by_id) != list(range(len(by_id))):
        raise SourceError(
            f"{architectures[0]}: `id2label` ids are {sorted(by_id)[:10]}, not 0..{len(by_id) - 1}; every output "
            "of the head needs a label. Fix id2label and label2id in config.json."
        )
    return [by_id[i] for i in range(len(by_id))]


def _task_of(architecture: str) -> str | None:
    for suffix, task in _HEADS:
        if architecture.endswith(suffix):
            return task
    return None


def _why_not(architectures: list[str], supported: list[str]) -> SourceError:
    """No architecture is a head edgekit converts: say what the checkpoint is and what to do."""
    for architecture in architectures:
        for suffix, what in _NO_TASK:
            if architecture.endswith(suffix):
                advice = _FINE_TUNE_FIRST if suffix in _NEEDS_A_HEAD else "edgekit does not convert that task yet."
                return SourceError(
                    f"The checkpoint is {architecture}: {what}. edgekit converts {', '.join(supported)} "
                    f"(a *ForSequenceClassification or *ForImageClassification head). {advice}"
                )
    return SourceError(
        f"edgekit does not recognise the head of {', '.join(architectures)}: it converts {', '.join(supported)} "
        "(a *ForSequenceClassification or *ForImageClassification head)."
    )


def _check_classifier(config: Any, architecture: str, task: str) -> None:
    labels = _labels(config, [architecture])
    problem = _field(config, "problem_type")
    if problem == "regression" or len(labels) < 2:
        raise SourceError(
            f"{architecture} has a regression head ({len(labels)} output, problem_type {problem!r}); edgekit "
            f"converts {task} with two or more labels. Fine-tune a classifier with num_labels >= 2."
        )
    if problem == "multi_label_classification":
        raise SourceError(
            f"{architecture} is a multi-label classifier (problem_type multi_label_classification: a sigmoid per "
            "label); edgekit's runtime picks one label by softmax, so its predictions would be wrong. "
            "Multi-label classification is not supported yet."
        )
    if task == "text-classification" and _field(config, "is_decoder") is True:
        raise SourceError(
            f"{architecture} has `is_decoder: true` in config.json, so it attends only to earlier tokens (a causal "
            "mask), which a classifier almost never wants: the flag was probably copied from a generative base "
            'checkpoint (e.g. roformer_chinese_sim). Set "is_decoder": false in the base config.json, fine-tune, '
            "then convert."
        )


def detect_task(config: Any, supported: Iterable[str] | None = None) -> str:
    """The task of a checkpoint from its config, or ``SourceError`` saying why none fits.

    ``supported``: the task names to choose from; by default those registered (``tasks()``).
    """
    if supported is None:
        from edgekit.tasks.registry import tasks

        supported = tasks()
    names = sorted(supported)
    architectures = _architectures(config)
    found = {architecture: task for architecture in architectures if (task := _task_of(architecture))}
    if not found:
        raise _why_not(architectures, names)
    if len(set(found.values())) > 1:
        raise SourceError(
            f"config.json names architectures of different tasks ({', '.join(f'{a}: {t}' for a, t in found.items())}); "
            "keep only the one the weights are for."
        )
    architecture, task = next(iter(found.items()))
    if task not in names:
        raise SourceError(
            f"The checkpoint is {architecture}, a {task} model, but this edgekit converts only {', '.join(names)}. "
            f"Upgrade edgekit or install the plug-in that registers {task}."
        )
    _check_classifier(config, architecture, task)
    return task


def read_config(folder: Path) -> dict[str, Any]:
    """A checkpoint folder's config.json as a mapping, with errors that name the file."""
    path = Path(folder) / "config.json"
    if not path.is_file():
        raise SourceError(f"{folder} has no config.json: pass the folder written by `save_pretrained()`.")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise SourceError(f"{path} is {path.stat().st_size} bytes, too large for a model config; is it the right file?")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SourceError(f"{path} is not valid JSON ({exc}); re-save the model with `save_pretrained()`.") from None
    if not isinstance(config, dict):
        raise SourceError(f"{path} holds a {type(config).__name__}, not a JSON object; it is not a model config.")
    return config


def detect_task_in_folder(folder: Path, supported: Iterable[str] | None = None) -> str:
    """``detect_task`` on a checkpoint folder's config.json (weights are not read)."""
    return detect_task(read_config(folder), supported)


def explain_task(config: Any, supported: Iterable[str] | None = None) -> tuple[str, str]:
    """``detect_task`` and why, in words a CLI can print: which architecture and labels decided it."""
    task = detect_task(config, supported)
    architecture = next(a for a in _architectures(config) if _task_of(a) == task)
    labels = _labels(config, [architecture])
    shown = ", ".join(labels[:5]) + (", …" if len(labels) > 5 else "")
    return task, f"config.json names {architecture}: a head for {task}, {len(labels)} labels ({shown})"
