"""The distillation stage of ``convert``: the recipe's model becomes a smaller student,
which is then what gets exported, quantized and gated (training itself: ``edgekit.train.distill``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekit.convert.recipe import Recipe, distill_work_dir, recipe_inputs, record_source_path
from edgekit.convert.sources import LoadedSource, load_text_classifier
from edgekit.data import TextDataset
from edgekit.errors import RecipeError
from edgekit.outputs import check_destination
from edgekit.progress import Reporter
from edgekit.tasks import get_task


def distill_source(
    teacher: LoadedSource, recipe: Recipe, data: TextDataset | None, out: Path, reporter: Reporter, resume: bool
) -> tuple[LoadedSource, dict[str, Any]]:
    """Distil the recipe's model; return the student as the new source, and what was done."""
    from edgekit.train.distill.stage import run_distillation

    spec = recipe.distill
    assert spec is not None
    task = get_task(recipe.task)
    train = task.read_dataset(spec.data)
    evaluation = task.read_dataset(spec.eval_data) if spec.eval_data is not None else data
    if evaluation is None:
        raise RecipeError("Distillation picks its best checkpoint on dev data: set distill.eval_data or data.")
    work = distill_work_dir(recipe, out)
    # The student's folder must not be an input either; checked before the teacher's logits and training.
    check_destination(work / "distill" / "student", [p for p in recipe_inputs(recipe, out) if p != work] + [out])
    result = run_distillation(teacher, spec, train, evaluation, work / "distill", reporter, resume)
    record = {k: v for k, v in result.record.items() if k != "cache_key"}
    reporter.note(describe_distillation(record))
    student = load_text_classifier(str(result.checkpoint), record_path=record_source_path(recipe))
    student.info = {**student.info, "distilled": True, "teacher": teacher.info}
    return student, record


def describe_distillation(record: dict[str, Any]) -> str:
    if record["student_accuracy"] is None:
        quality = f"agreement with the teacher {record['agreement_with_teacher']:.4f}"
    else:
        drop = (record["teacher_accuracy"] - record["student_accuracy"]) * 100
        quality = (
            f"student accuracy {record['student_accuracy']:.4f} vs teacher {record['teacher_accuracy']:.4f} "
            f"({-drop:+.2f} pts), agreement {record['agreement_with_teacher']:.4f}"
        )
    return (
        f"distilled {record['student_layers']} layers {record['layer_map']} in {record['steps']} steps "
        f"({record['train_seconds']:.0f}s): {quality}"
    )
