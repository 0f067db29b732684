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
    prune_heads: Annotated[
        float | None, typer.Option(help="Fraction of attention heads kept per layer, (0, 1] (distill.prune.heads).")
    ] = None,
    prune_ffn: Annotated[
        float | None, typer.Option(help="Fraction of feed-forward width kept per layer, (0, 1] (distill.prune.ffn).")
    ] = None,
) -> None:
    """Run only the distillation stage of a recipe: teacher → student checkpoint.

    Use it to train on several GPUs or machines (Hugging Face Trainer handles the
    distribution); a later `edgekit convert` of the same recipe reuses the student.

    **Examples:**

    `edgekit distill recipe.yaml`

    `torchrun --nproc_per_node 4 -m edgekit distill recipe.yaml`

    `accelerate launch -m edgekit distill recipe.yaml --resume`

    `edgekit distill recipe.yaml --prune-heads 0.5 --prune-ffn 0.5`
    """
    from edgekit.convert.distillation import distill_source
    from edgekit.convert.recipe import load_recipe
    from edgekit.convert.sources import load_text_classifier
    from edgekit.progress import ConsoleReporter
    from edgekit.tasks import get_task

    spec = load_recipe(recipe)
    if spec.distill is None or spec.out is None:
        raise RecipeError(f"{recipe} needs a `distill:` section and an `out:` folder to distil.")
    if prune_heads is not None or prune_ffn is not None:  # the flags override the recipe's distill.prune
        flags = {k: v for k, v in {"heads": prune_heads, "ffn": prune_ffn}.items() if v is not None}
        prune = _prune_spec(spec.distill.prune.model_dump() if spec.distill.prune else {}, flags)
        spec = spec.model_copy(update={"distill": spec.distill.model_copy(update={"prune": prune})})
    data = get_task(spec.task).read_dataset(spec.data) if spec.data is not None else None
    teacher = load_text_classifier(spec.model, spec.revision, spec.trust_remote_code)
    student, record = distill_source(teacher, spec, data, Path(spec.out), ConsoleReporter(err_console), resume)
    console.print(f"Student: {student.location}")


def _prune_spec(recipe_values: dict, flags: dict):
    from pydantic import ValidationError

    from edgekit.convert.recipe import PruneSpec
    from edgekit.errors import describe_validation_error

    try:
        return PruneSpec.model_validate({**recipe_values, **flags})
    except ValidationError as exc:
        raise RecipeError(describe_validation_error("--prune-heads/--prune-ffn", exc, "docs/pruning.md")) from None
