"""The search space: which models (the teacher and its students) and which variants to try.

Models come from the teacher's layer count (``default_depths``) and, when given, structured
pruning settings passed to the distillation stage as ``distill.prune``; variants from the
variant registry, filtered by what the target runs and this machine has installed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgekit.errors import RecipeError

TEXT_TASK = "text-classification"
_NOT_SUPPORTED = "optimize searches text classifiers from a PyTorch checkpoint for now"


@dataclass(frozen=True)
class ModelCandidate:
    """The teacher (depth None) or a student of ``depth`` layers, optionally pruned."""

    depth: int | None
    prune: tuple[tuple[str, float], ...] | None = None  # sorted (part, fraction) pairs; a tuple: hashable

    @property
    def name(self) -> str:
        if self.depth is None:
            return "teacher"
        pruned = "".join(f"-{part}{fraction:g}" for part, fraction in self.prune or ())
        return f"L{self.depth}{pruned}"

    @property
    def prune_dict(self) -> dict[str, float] | None:
        return None if self.prune is None else dict(self.prune)

    def covers(self, other: ModelCandidate) -> bool:
        """``other`` is at most as deep and at least as pruned: if this one misses the budget, so should it."""
        if self.depth is None or other.depth is None or other.depth > self.depth:
            return False
        return self.prune is None or other.prune == self.prune


def check_teacher(model: str) -> int:
    """The teacher's layer count; refuses what the search cannot take yet (ONNX, hub ids, other tasks)."""
    from edgekit.convert.onnx_source import onnx_spec
    from edgekit.tasks.detect import detect_task, read_config

    path = Path(model).expanduser()
    if onnx_spec(model) is not None:
        raise RecipeError(f"{model} is an ONNX model: {_NOT_SUPPORTED}. Pass the fine-tuned HF checkpoint folder "
                          "(students are distilled from its PyTorch weights), or use `edgekit convert` for the ONNX "
                          "file.")  # fmt: skip
    if not path.is_dir():
        raise RecipeError(f"--model {model} is not a local checkpoint folder: {_NOT_SUPPORTED}. Pass the folder "
                          "written by `save_pretrained()` (download a hub model first).")  # fmt: skip
    config = read_config(path)
    try:
        task = detect_task(config)
    except Exception as exc:  # detect_task says why no task fits
        raise RecipeError(f"{model}: {exc} ({_NOT_SUPPORTED}).") from None
    if task != TEXT_TASK:
        raise RecipeError(f"{model} is a {task} model: {_NOT_SUPPORTED}. Use `edgekit convert` for it.")
    layers = config.get("num_hidden_layers") or config.get("n_layers") or config.get("num_layers")
    if not isinstance(layers, int) or layers < 1:
        raise RecipeError(f"{path / 'config.json'} does not give the layer count (num_hidden_layers): students "
                          "are made by keeping some of the teacher's layers, so the search needs it.")  # fmt: skip
    return layers


def default_depths(layers: int) -> list[int]:
    """Students worth trying, deepest first: 2/3, 1/2, 1/3, 1/4 and 1/6 of the teacher, at least 2
    layers (a 2-layer teacher gets a 1-layer student). 6 -> 4, 3, 2; 12 -> 8, 6, 4, 3, 2."""
    found = {layers * 2 // 3, layers // 2, layers // 3, layers // 4, layers // 6}
    depths = sorted((d for d in found if 2 <= d < layers), reverse=True)
    return depths or ([1] if layers == 2 else [])


def parse_depths(text: str, layers: int) -> list[int]:
    try:
        depths = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise RecipeError(f"--depths takes comma-separated layer counts (e.g. 4,3,2), not '{text}'.") from None
    bad = [d for d in depths if not 1 <= d < layers]
    if not depths or bad:
        raise RecipeError(f"--depths {text}: each student needs 1 to {layers - 1} layers (the teacher has {layers}).")
    return sorted(set(depths), reverse=True)


# A pruning setting of the search: the student depth it applies to (None: every depth) and the sorted
# (part, fraction kept) pairs.
PruneChoice = tuple[int | None, tuple[tuple[str, float], ...]]


def parse_prune(text: str) -> PruneChoice:
    """``heads=0.5,ffn=0.5`` -> (None, (("ffn", 0.5), ("heads", 0.5))): the fractions *kept* by structured
    pruning at every depth, checked by the recipe's own ``distill.prune`` model (docs/pruning.md);
    ``3:ffn=0.5`` prunes only the 3-layer student."""
    depth_text, colon, rest = text.partition(":")
    depth = None
    if colon:
        if not depth_text.strip().isdigit() or int(depth_text) < 1:
            raise RecipeError(f"--prune {text}: the part before ':' must be a student depth (e.g. 3:ffn=0.5).")
        depth, text = int(depth_text), rest
    pairs: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, _, value = part.partition("=")
        try:
            pairs[name.strip()] = float(value)
        except ValueError:
            raise RecipeError(f"--prune takes PART=FRACTION_KEPT pairs (heads=0.5,ffn=0.5), not '{text}'.") from None
    if not pairs:
        raise RecipeError("--prune is empty; give e.g. heads=0.5,ffn=0.5 (fractions kept).")
    check_pruning_available()
    from pydantic import ValidationError

    from edgekit.convert.recipe import PruneSpec

    try:
        PruneSpec.model_validate(pairs)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise RecipeError(f"--prune {text}: {problems} (parts: heads, ffn; fractions kept in (0, 1]).") from None
    return depth, tuple(sorted(pairs.items()))


def check_pruning_available() -> None:
    from edgekit.convert.recipe import DistillSpec

    if "prune" not in DistillSpec.model_fields:
        raise RecipeError("This edgekit has no structured pruning stage (distill.prune) yet: drop --prune.")


def students(depths: list[int], prunes: list[PruneChoice]) -> list[ModelCandidate]:
    """Deepest first; at each depth the unpruned student, then each pruning setting for that depth."""
    stray = sorted({d for d, _ in prunes if d is not None and d not in depths})
    if stray:
        raise RecipeError(f"--prune names student depth(s) {stray}, which the search does not train "
                          f"(depths {depths}); add them to --depths or drop the 'DEPTH:' prefix.")  # fmt: skip
    return [ModelCandidate(d, p) for d in depths for p in [None, *(pairs for only, pairs in prunes
                                                                    if only in (None, d))]]  # fmt: skip


def default_variants(target: Any) -> list[str]:
    """Registry kinds the target's engines run at a precision it prefers, that this machine has and
    can run; no phone packaging (ORT Mobile) unless the target is a phone. onnx-fp32 always first."""
    from edgekit.convert.variants import REFERENCE, variants
    from edgekit.convert.variants.ort_mobile import MobileOptions
    from edgekit.runtime.engines import ENGINES

    engines = {choice.engine for choice in target.engines}
    chosen = []
    for name, kind in variants().items():
        spec = ENGINES.get(kind.engine)
        if kind.engine not in engines or kind.precision not in target.precision.preferred or not kind.installed():
            continue
        if spec is not None and spec.unavailable_reason is not None and spec.unavailable_reason():
            continue  # Core ML off Apple platforms: built but never measured here, so never recommended
        if issubclass(kind.Options, MobileOptions) and target.device_class != "phone":
            continue
        chosen.append(name)
    return [REFERENCE] + [n for n in chosen if n != REFERENCE]


def check_variants(names: list[str], target: Any) -> list[str]:
    from edgekit.convert.variants import REFERENCE, get_variant

    engines = {choice.engine for choice in target.engines}
    for name in names:
        kind = get_variant(name)  # an unknown name: the registry's error lists the known ones
        if kind.engine not in engines:
            raise RecipeError(f"Variant {name} runs on {kind.engine}, which target {target.name} does not list "
                              f"({', '.join(sorted(engines))}); drop it from --variants.")  # fmt: skip
        if not kind.installed():
            raise RecipeError(f"Variant {name} needs {kind.engine}, which is not installed here; install its extra "
                              "or drop it from --variants.")  # fmt: skip
    return [REFERENCE] + [n for n in dict.fromkeys(names) if n != REFERENCE]
