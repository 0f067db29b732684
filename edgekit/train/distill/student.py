"""Students for BERT-family encoders: keep a subset of the teacher's layers, or load one.

Layer selection copies the embeddings, the chosen transformer layers, the pooler and the
classification head from the teacher, so the student starts close to it (DistilBERT's
initialisation). The default choice is TinyBERT's uniform map: student layer m takes
teacher layer round((m + 1) * n / k) - 1, so the top layer is always kept
(6 → 3: [1, 3, 5]; 6 → 2: [2, 5]).
"""

from __future__ import annotations

import copy
from typing import Any

from edgekit.errors import RecipeError, SourceError

# Where the stack of transformer layers lives, and which config field counts them.
_LAYER_PATHS = [
    # BERT, RoBERTa, XLM-R, ELECTRA, MiniLM, MPNet. MPNet's relative-position bias is one table on
    # the encoder (shared by all layers), so the state-dict copy below keeps it (tests/test_mpnet.py).
    ("encoder.layer", "num_hidden_layers"),
    ("transformer.layer", "n_layers"),  # DistilBERT
]


def uniform_layer_map(teacher_layers: int, student_layers: int) -> list[int]:
    if not 1 <= student_layers <= teacher_layers:
        raise RecipeError(
            f"A student needs between 1 and {teacher_layers} layers (the teacher has {teacher_layers}); "
            f"got {student_layers}."
        )
    return [round((m + 1) * teacher_layers / student_layers) - 1 for m in range(student_layers)]


def _layer_stack(model: Any) -> tuple[Any, str]:
    if getattr(model.config, "model_type", None) == "albert":
        raise SourceError(
            "ALBERT repeats one shared set of layer weights, so a layer-drop student would have exactly the "
            "teacher's parameters (the same size on disk), only fewer repeats. edgekit does not build such "
            "students; distil into a smaller student checkpoint of your choice instead (distill.student)."
        )
    base = model.base_model
    for path, count_field in _LAYER_PATHS:
        node = base
        for part in path.split("."):
            node = getattr(node, part, None)
            if node is None:
                break
        if node is not None and hasattr(model.config, count_field):
            return node, count_field
    raise SourceError(
        f"Layer selection does not know where the layers of a {type(model).__name__} are "
        "(it knows BERT-style encoder.layer and DistilBERT's transformer.layer). "
        "Give the student as its own checkpoint instead (distill.student)."
    )


def layer_count(model: Any) -> int:
    return len(_layer_stack(model)[0])


def student_from_teacher(teacher: Any, layers: list[int]) -> Any:
    """A copy of ``teacher`` keeping only ``layers`` (teacher indices, in order)."""
    import torch

    stack, count_field = _layer_stack(teacher)
    total = len(stack)
    bad = [i for i in layers if not 0 <= i < total]
    if bad or not layers:
        raise RecipeError(f"Layer map {layers} is out of range: the teacher has layers 0..{total - 1}.")
    if sorted(set(layers)) != list(layers):
        raise RecipeError(f"Layer map {layers} must list distinct teacher layers in increasing order.")
    config = copy.deepcopy(teacher.config)
    setattr(config, count_field, len(layers))
    student = type(teacher)(config)
    student.load_state_dict(teacher.state_dict(), strict=False)  # embeddings, pooler, head, and layers 0..k-1
    student_stack, _ = _layer_stack(student)
    with torch.no_grad():
        for position, source in enumerate(layers):
            student_stack[position].load_state_dict(stack[source].state_dict())
    return student


def check_same_vocabulary(teacher_tokenizer: Any, student_tokenizer: Any, student_ref: str) -> None:
    if teacher_tokenizer.get_vocab() != student_tokenizer.get_vocab():
        raise SourceError(
            f"The student {student_ref} uses a different vocabulary from the teacher's tokenizer, so "
            "the teacher's soft labels would not line up with its inputs. Pick a student that shares "
            "the teacher's tokenizer (or let edgekit build one from the teacher's layers)."
        )
