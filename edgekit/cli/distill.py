"""`edgekit distill`: only the distillation stage of a recipe."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgekit.cli.common import console, err_console, user_errors
from edgekit.errors import RecipeError


@user_errors
def distill(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML with a `distill:` section.")],
    resume: Annotated[bool, typer.Option(help="Continue from the last checkpoint.")] = False,
) -> None:
    """Run only the distillation stage of a recipe: teacher → student checkpoint.

    Use it to train on several GPUs or machines (Hugging Face Trainer handles the
    distribution); a later `edgekit convert` of the same recipe reuses the student.

    **Examples:**

    `edgekit distill recipe.yaml`

    `torchrun --nproc_per_node 4 -m edgekit distill recipe.yaml`

    `accelerate launch -m edgekit distill recipe.yaml --resume`
    """
    from edgekit.convert.distillation import distill_source
    from edgekit.convert.recipe import load_recipe
    from edgekit.convert.sources import load_text_classifier
    from edgekit.progress import ConsoleReporter
    from edgekit.tasks import get_task

    spec = load_recipe(recipe)
    if spec.distill is None or spec.out is None:
        raise RecipeError(f"{recipe} needs a `distill:` section and an `out:` folder to distil.")
    data = get_task(spec.task).read_dataset(spec.data) if spec.data is not None else None
    teacher = load_text_classifier(spec.model, spec.revision, spec.trust_remote_code)
    student, record = distill_source(teacher, spec, data, Path(spec.out), ConsoleReporter(err_console), resume)
    console.print(f"Student: {student.location}")
