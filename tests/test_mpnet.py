"""MPNet as a teacher made small: layer-drop students, distillation, conversion with parity.

MPNet differs from BERT where layer dropping could go wrong: its relative-position attention
bias is one table (`encoder.relative_attention_bias`), computed once and added in every layer,
not a weight of layer 0. A student must keep that table from the teacher (not a fresh random
one) and behave exactly like the teacher's own forward pass restricted to the kept layers.
A tiny 4-layer MPNet (hidden 32) from `MPNetConfig`, tokenizer of MPNet's kind, SST-2 dev texts.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_families import LABELS, MAX_LENGTH, MPNET_SPECIALS, SIZES, _centre_the_head, _texts, _wordpiece

from edgekit.artifact import load_manifest
from edgekit.convert.pipeline import convert
from edgekit.convert.recipe import build_recipe
from edgekit.train.distill.student import layer_count, student_from_teacher

TEACHER_LAYERS = 4


@pytest.fixture(scope="module")
def sst2_rows(tmp_path_factory) -> Path:
    from conftest import SHARED_DATA, require_shared

    lines = require_shared(SHARED_DATA / "sst2" / "dev.tsv").read_text(encoding="utf-8").splitlines()
    path = tmp_path_factory.mktemp("sst2") / "dev48.tsv"
    path.write_text("\n".join(lines[:49]) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def mpnet_teacher(tmp_path_factory, sst2_rows) -> Path:
    """A seeded random 4-layer MPNet classifier (non-zero relative bias) and its tokenizer."""
    import torch
    import transformers

    folder = tmp_path_factory.mktemp("mpnet")
    tokenizer = _wordpiece(folder, sst2_rows, "MPNetTokenizerFast", MPNET_SPECIALS)
    config = transformers.MPNetConfig(
        vocab_size=len(tokenizer), max_position_embeddings=MAX_LENGTH + 2, num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)), label2id={label: i for i, label in enumerate(LABELS)},
        **{**SIZES, "num_hidden_layers": TEACHER_LAYERS},
    )  # fmt: skip
    torch.manual_seed(0)
    model = transformers.MPNetForSequenceClassification(config).eval()
    _centre_the_head(model, tokenizer, _texts(sst2_rows))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _load(folder: Path):
    import transformers

    model = transformers.MPNetForSequenceClassification.from_pretrained(folder).eval()
    return model, transformers.AutoTokenizer.from_pretrained(folder)


def test_student_keeps_the_shared_relative_bias_and_the_teachers_forward(mpnet_teacher, sst2_rows):
    import torch

    teacher, tokenizer = _load(mpnet_teacher)
    inputs = tokenizer(_texts(sst2_rows)[:8], padding=True, truncation=True, return_tensors="pt")
    student = student_from_teacher(teacher, [1, 3]).eval()
    assert layer_count(student) == 2 and student.config.num_hidden_layers == 2
    bias, teacher_bias = student.mpnet.encoder.relative_attention_bias, teacher.mpnet.encoder.relative_attention_bias
    assert teacher_bias.weight.abs().sum() > 0, "the fixture's bias must matter for this test to mean anything"
    assert torch.equal(bias.weight, teacher_bias.weight)
    # The reference: the teacher itself with only layers 1 and 3 in its stack.
    reference, _ = _load(mpnet_teacher)
    reference.mpnet.encoder.layer = torch.nn.ModuleList([reference.mpnet.encoder.layer[i] for i in (1, 3)])
    with torch.no_grad():
        got, expected = student(**inputs).logits, reference(**inputs).logits
        full = student_from_teacher(teacher, list(range(TEACHER_LAYERS))).eval()(**inputs).logits
        teacher_logits = teacher(**inputs).logits
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(full, teacher_logits, rtol=0, atol=1e-6)  # keeping every layer changes nothing
    assert not torch.allclose(got, teacher_logits), "dropping layers must change the function"


def test_mpnet_student_distils_and_converts_with_parity(mpnet_teacher, sst2_rows, tmp_path):
    recipe = build_recipe({
        "model": str(mpnet_teacher), "out": str(tmp_path / "out"), "data": {"path": str(sst2_rows)},
        "parity": {"samples": 16}, "variants": ["onnx-fp32", "ort-int8-dynamic"], "bench": {"enabled": False},
        "distill": {"student_layers": 2, "data": {"path": str(sst2_rows)}, "max_steps": 2, "batch_size": 8,
                    "work_dir": str(tmp_path / "work")},
    })  # fmt: skip
    result = convert(recipe)
    record = result.summary.distillation
    assert record["layer_map"] == [1, 3] and record["student_layers"] == 2 and record["steps"] == 2
    reference = load_manifest(result.out / result.summary.locations["onnx-fp32"])
    parity = reference.parity
    assert parity["passed"] and parity["tokenizer_mismatches"] == 0 and parity["max_abs_diff"] <= 1e-4, parity
    student, _ = _load(tmp_path / "work" / "distill" / "student")
    assert layer_count(student) == 2
    int8 = next(v for v in result.summary.variants if v["name"] == "ort-int8-dynamic")
    assert int8["gate"]["rows"] == 48 and 0.0 <= int8["gate"]["agreement"] <= 1.0
