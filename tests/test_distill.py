"""Distillation on tiny BERTs: student construction, loss terms, training, resume, bad inputs."""

import json
from pathlib import Path

import pytest
import torch
from conftest import build_tiny_classifier, synthetic_sentiment, write_tsv

from edgekit.convert.recipe import DistillSpec
from edgekit.convert.sources import load_text_classifier
from edgekit.data import TextDataset, read_text_dataset
from edgekit.errors import DataError, RecipeError, SourceError
from edgekit.train.distill.losses import attention_kl, hard_ce, hidden_mse, soft_kl
from edgekit.train.distill.stage import run_distillation
from edgekit.train.distill.student import student_from_teacher, uniform_layer_map


def _spec(tmp_path, **extra) -> DistillSpec:
    fields = {"data": {"path": str(tmp_path / "unused.tsv")}, "batch_size": 16, "learning_rate": 3e-3,
              "max_length": 32, "eval_steps": 10}  # fmt: skip
    return DistillSpec.model_validate({**fields, **extra})


def test_uniform_layer_map_keeps_the_top_layer():
    assert uniform_layer_map(6, 3) == [1, 3, 5]
    assert uniform_layer_map(6, 2) == [2, 5]
    assert uniform_layer_map(12, 4) == [2, 5, 8, 11]
    assert uniform_layer_map(4, 4) == [0, 1, 2, 3]
    with pytest.raises(RecipeError, match="between 1 and 6"):
        uniform_layer_map(6, 7)


def test_layer_selection_copies_the_right_weights(tmp_path):
    teacher = load_text_classifier(str(build_tiny_classifier(tmp_path / "t4", layers=4))).model
    student = student_from_teacher(teacher, [1, 3])
    assert student.config.num_hidden_layers == 2 and len(student.bert.encoder.layer) == 2
    for position, source in enumerate([1, 3]):
        for (name, s), (_, t) in zip(student.bert.encoder.layer[position].state_dict().items(),
                                     teacher.bert.encoder.layer[source].state_dict().items(), strict=True):  # fmt: skip
            assert torch.equal(s, t), name
    assert torch.equal(student.bert.embeddings.word_embeddings.weight, teacher.bert.embeddings.word_embeddings.weight)
    assert torch.equal(student.classifier.weight, teacher.classifier.weight)
    assert torch.equal(student.bert.pooler.dense.weight, teacher.bert.pooler.dense.weight)
    assert not torch.equal(student.bert.encoder.layer[0].attention.self.query.weight,
                           teacher.bert.encoder.layer[0].attention.self.query.weight)  # fmt: skip
    with pytest.raises(RecipeError, match="out of range"):
        student_from_teacher(teacher, [0, 4])
    with pytest.raises(RecipeError, match="increasing order"):
        student_from_teacher(teacher, [3, 1])


def test_each_loss_term_is_finite_and_decreases(tmp_path):
    teacher = load_text_classifier(str(build_tiny_classifier(tmp_path / "t", seed=1)))
    batch = teacher.tokenizer(
        ["good fun", "awful and boring film", "the weather today"], padding=True, return_tensors="pt"
    )
    with torch.no_grad():
        reference = teacher.model(**batch, output_hidden_states=True, output_attentions=True)
    labels = torch.tensor([2, 0, 1])
    terms = {
        "kl": lambda out: soft_kl(out.logits, reference.logits * 3, temperature=2.0),
        "ce": lambda out: hard_ce(out.logits, labels),
        "hidden": lambda out: hidden_mse(out.hidden_states, reference.hidden_states, [1], batch["attention_mask"]),
        "attention": lambda out: attention_kl(out.attentions[-1], reference.attentions[-1], batch["attention_mask"]),
    }
    for name, term in terms.items():
        model = student_from_teacher(teacher.model, [0])  # start away from the target
        model.train()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        values = []
        for _ in range(8):
            out = model(**batch, output_hidden_states=True, output_attentions=True)
            loss = term(out)
            assert torch.isfinite(loss), name
            values.append(float(loss))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        assert values[-1] < values[0], f"{name}: {values}"


def test_distillation_raises_agreement_far_above_chance(tmp_path, trained_tiny_dir, sentiment_eval):
    """A randomly initialised 1-layer student, unlabelled training texts: only the teacher teaches."""
    teacher = load_text_classifier(str(trained_tiny_dir))
    fresh = build_tiny_classifier(tmp_path / "fresh", seed=5, layers=1)
    texts = [t for t, _ in synthetic_sentiment(400, seed=3)]
    unlabelled = TextDataset(texts, None, "synthetic")
    evaluation = read_text_dataset(sentiment_eval)

    before = load_text_classifier(str(fresh))
    with torch.no_grad():
        encoded = before.tokenizer(evaluation.texts, padding=True, return_tensors="pt")
        t_pred = teacher.model(**encoded).logits.argmax(-1)
        before_agreement = float((before.model(**encoded).logits.argmax(-1) == t_pred).float().mean())

    spec = _spec(tmp_path, student=str(fresh), epochs=20, weights={"kl": 1.0, "ce": 0.0}, eval_steps=100)
    result = run_distillation(teacher, spec, unlabelled, evaluation, tmp_path / "work")
    record = result.record
    assert record["student_layers"] == 1 and not record["labelled_training"]
    assert record["agreement_with_teacher"] > 0.85 > before_agreement + 0.3, (record, before_agreement)
    assert (result.checkpoint / "model.safetensors").is_file()
    assert json.loads((result.checkpoint / "distillation.json").read_text())["layer_map"] == record["layer_map"]
    again = run_distillation(teacher, spec, unlabelled, evaluation, tmp_path / "work")
    assert again.reused


def test_resume_continues_from_the_last_checkpoint(tmp_path, trained_tiny_dir, sentiment_eval):
    teacher = load_text_classifier(str(trained_tiny_dir))
    train = read_text_dataset(write_tsv(tmp_path / "train.tsv", synthetic_sentiment(200, seed=4)))
    evaluation = read_text_dataset(sentiment_eval)
    first = run_distillation(
        teacher, _spec(tmp_path, student_layers=1, max_steps=10), train, evaluation, tmp_path / "w"
    )
    assert first.record["steps"] == 10 and not first.record["resumed"]
    first_log = json.loads((tmp_path / "w" / "checkpoints" / "checkpoint-10" / "trainer_state.json").read_text())
    longer = _spec(tmp_path, student_layers=1, max_steps=20)
    resumed = run_distillation(teacher, longer, train, evaluation, tmp_path / "w", resume=True)
    assert resumed.record["resumed"] and resumed.record["resumed_from"].endswith("checkpoint-10")
    assert resumed.record["steps"] == 20
    history = json.loads((tmp_path / "w" / "checkpoints" / "checkpoint-20" / "trainer_state.json").read_text())
    carried = history["log_history"][: len(first_log["log_history"])]
    assert carried == first_log["log_history"], "the resumed run continues the first run's log"
    fresh = run_distillation(teacher, _spec(tmp_path, student_layers=1, max_steps=20, seed=1), train, evaluation,
                             tmp_path / "w")  # fmt: skip
    assert not fresh.record["resumed"], "without --resume it starts over"


def test_bad_distillation_inputs(tmp_path, trained_tiny_dir, sentiment_eval):
    teacher = load_text_classifier(str(trained_tiny_dir))
    evaluation = read_text_dataset(sentiment_eval)
    train = read_text_dataset(sentiment_eval)
    with pytest.raises(RecipeError, match="out of range"):
        run_distillation(teacher, _spec(tmp_path, student_layers=[0, 5]), train, evaluation, tmp_path / "a")
    with pytest.raises(RecipeError, match="between 1 and 2"):
        run_distillation(teacher, _spec(tmp_path, student_layers=3), train, evaluation, tmp_path / "b")
    other_vocab = build_tiny_classifier(tmp_path / "other", layers=1, vocab_extra="zebra")
    with pytest.raises(SourceError, match="different vocabulary"):
        run_distillation(teacher, _spec(tmp_path, student=str(other_vocab)), train, evaluation, tmp_path / "c")
    with pytest.raises(DataError, match="empty"):
        run_distillation(teacher, _spec(tmp_path), TextDataset([], None, "empty"), evaluation, tmp_path / "d")
    from edgekit.convert.recipe import build_recipe

    with pytest.raises(RecipeError, match="at least one layer"):
        build_recipe({"model": "m", "distill": {"student_layers": 0, "data": {"path": "t.tsv"}}})


def test_convert_with_distillation_records_it_in_the_manifest(tmp_path, trained_tiny_dir, sentiment_eval):
    from edgekit.convert.pipeline import convert
    from edgekit.convert.recipe import build_recipe

    train = write_tsv(tmp_path / "train.tsv", synthetic_sentiment(200, seed=6))
    recipe = build_recipe({
        "model": str(trained_tiny_dir), "out": str(tmp_path / "out"), "data": {"path": str(sentiment_eval)},
        "variants": ["onnx-fp32", "ort-int8-dynamic"], "bench": {"enabled": False},
        "distill": {"student_layers": 1, "data": {"path": str(train)}, "epochs": 3, "batch_size": 16,
                    "learning_rate": 3e-3, "max_length": 32},
    })  # fmt: skip
    result = convert(recipe)
    for name in ("onnx-fp32", "ort-int8-dynamic"):
        manifest = json.loads((tmp_path / "out" / name / "manifest.json").read_text())
        distillation = manifest["metrics"]["distillation"]
        assert distillation["layer_map"] == [1] and distillation["losses"]["temperature"] == 2.0
        assert distillation["teacher"]["name"] == trained_tiny_dir.name
        assert "path" not in distillation["teacher"], "no build-machine path ships in an artifact"
        assert 0 <= distillation["student_accuracy"] <= 1 and distillation["teacher_accuracy"] > 0.9
        assert manifest["source"]["distilled"] and manifest["source"]["teacher"]["kind"] == "hf-dir"
    assert result.summary.distillation["student_layers"] == 1
    assert (tmp_path / ".edgekit-work" / "out" / "distill" / "student" / "distillation.json").is_file()
    assert convert(recipe).reused


def _distill_recipe(tmp_path, teacher, eval_data, **distill) -> Path:
    train = write_tsv(tmp_path / "train.tsv", synthetic_sentiment(120, seed=8))
    spec = {"student_layers": 1, "data": {"path": str(train)}, "batch_size": 16, "learning_rate": 3e-3,
            "max_length": 32, **distill}  # fmt: skip
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(json.dumps({"model": str(teacher), "out": str(tmp_path / "out"),
                                  "data": {"path": str(eval_data)}, "distill": spec}))  # fmt: skip
    return recipe


def test_cli_distill_flags_and_command(tmp_path, trained_tiny_dir, sentiment_eval):
    from typer.testing import CliRunner

    from edgekit.cli import app

    runner = CliRunner()
    train = write_tsv(tmp_path / "t.tsv", synthetic_sentiment(120, seed=9))
    result = runner.invoke(app, ["convert", "--model", str(trained_tiny_dir), "--out", str(tmp_path / "s"),
                                 "--data", str(sentiment_eval), "--distill-layers", "1", "--distill-data", str(train),
                                 "--no-bench", "--quantize", "dynamic"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "1-layer student" in result.output
    bad = runner.invoke(app, ["convert", "--model", str(trained_tiny_dir), "--out", str(tmp_path / "x"),
                              "--distill-layers", "two", "--distill-data", str(train)])  # fmt: skip
    assert bad.exit_code == 2 and "--distill-layers takes a count" in bad.output
    only = runner.invoke(
        app, ["distill", str(_distill_recipe(tmp_path, trained_tiny_dir, sentiment_eval, max_steps=8))]
    )
    assert only.exit_code == 0, only.output
    assert (tmp_path / ".edgekit-work" / "out" / "distill" / "student" / "model.safetensors").is_file()


@pytest.mark.integration
def test_distill_runs_data_parallel_under_torchrun(tmp_path, trained_tiny_dir, sentiment_eval):
    """Two CPU processes (gloo) under torchrun: Trainer shards the data; one student is written."""
    import os
    import subprocess
    import sys

    recipe = _distill_recipe(tmp_path, trained_tiny_dir, sentiment_eval, max_steps=6, eval_steps=3)
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
               "-m", "edgekit", "distill", str(recipe)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads((tmp_path / ".edgekit-work" / "out" / "distill" / "student" / "distillation.json").read_text())
    assert record["steps"] == 6
    assert record["world_size"] == 2
