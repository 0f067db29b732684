"""Recipes: one YAML file (or the CLI flags that stand for one) describing a conversion.

    model: ./my-finetuned-bert          # HF checkpoint directory or hub id
    task: text-classification
    out: artifacts/my-model
    target: raspberry-pi-5
    data: {path: data/dev.tsv}          # real inputs for the parity check
    export: {exporter: optimum}
    parity: {atol: 1.0e-4}

Relative paths in a recipe file are resolved against the file's folder, so a recipe
runs the same from any working directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from edgekit.artifact import sha256_file
from edgekit.convert.image_sources import FactorySpec
from edgekit.convert.onnx_source import OnnxSpec
from edgekit.errors import RecipeError, describe_validation_error
from edgekit.image_data import folder_fingerprint
from edgekit.yaml_files import read_yaml_mapping

# Files of a checkpoint that change what gets built besides the weights (labels, tokenizer).
_CHECKPOINT_METADATA = (
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "special_tokens_map.json",
    "preprocessor_config.json",  # an image classifier's resize/crop/normalisation
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataSpec(_Strict):
    path: Path
    text_column: str = "text"
    image_column: str = "path"  # image tasks' CSV/JSONL: image paths relative to the file (or `path` is a folder)
    label_column: str | None = "label"
    format: Literal["tsv", "csv", "jsonl"] | None = None


class ExportSpec(_Strict):
    exporter: Literal["optimum", "dynamo"] = "optimum"
    opset: int | None = Field(None, ge=11, description="None: the exporter's default for the model")
    max_length: int | None = Field(
        None, ge=8, description="truncation length recorded for the runtime; None: the model's maximum"
    )


class ParitySpec(_Strict):
    atol: float = Field(1e-4, gt=0, description="max abs logit difference allowed vs PyTorch")
    batch_sizes: list[int] = Field(default_factory=lambda: [1, 4], min_length=1)
    samples: int = Field(16, ge=1, description="number of real texts to compare on")


class CalibrationSpec(_Strict):
    data: DataSpec | None = Field(None, description="None: the recipe's data")
    samples: int = Field(100, ge=1, description="texts drawn from the data, at random (seeded)")
    method: Literal["minmax", "entropy", "percentile"] = "minmax"


class QuantizationSpec(_Strict):
    calibration: CalibrationSpec = Field(default_factory=CalibrationSpec)
    # None: the task's measured set (MatMul-only for text: all-op QDQ kept 0.66-0.76 agreement on MiniLM;
    # every operator for CNNs: Conv-only kept 0.46 on EfficientNet-Lite0; docs/stack-findings.md).
    static_op_types: list[str] | None = Field(None, min_length=1)
    per_channel: bool | None = Field(None, description="None: the target profile's choice")
    reduce_range: bool | None = Field(None, description="None: the target profile's choice")


class OpenVinoSpec(_Strict):
    accuracy_control: bool = Field(False, description="NNCF quantize_with_accuracy_control for ov-int8")
    max_drop: float = Field(1.0, ge=0, description="accuracy points NNCF may lose under accuracy control")
    validation_samples: int = Field(300, ge=10)


class GateSpec(_Strict):
    max_accuracy_drop: float | None = Field(
        None, ge=0, description="accuracy points; None: the target's budget, else 1.0"
    )
    samples: int = Field(1000, ge=10, description="evaluation rows drawn from the data")


class BenchSpec(_Strict):
    enabled: bool = True
    pytorch_baseline: bool = Field(True, description="also time the source checkpoint in PyTorch fp32")
    threads: int | None = Field(None, ge=1, description="None: the target's threads, capped at this host's cores")
    runs: int = Field(100, ge=10)
    warmup: int = Field(10, ge=0)
    rounds: int = Field(2, ge=1)


class LossWeightsSpec(_Strict):
    kl: float = Field(1.0, ge=0, description="soft-label KL on temperature-softened logits")
    ce: float = Field(0.5, ge=0, description="hard-label cross-entropy (labelled data only)")
    hidden: float = Field(0.0, ge=0, description="hidden-state MSE on mapped layers (runs the teacher per step)")
    attention: float = Field(0.0, ge=0, description="last-layer attention KL, MiniLM-style (teacher per step)")


class PruneSpec(_Strict):
    """Structured pruning of the student before distillation (docs/pruning.md): a smaller dense model."""

    heads: float = Field(1.0, gt=0, le=1, description="fraction of attention heads kept, the same in every layer")
    ffn: float = Field(1.0, gt=0, le=1, description="fraction of feed-forward width kept, the same in every layer")
    samples: int = Field(256, ge=1, description="training rows the importance scores are measured on")


class DistillSpec(_Strict):
    student_layers: int | list[int] | None = Field(
        None, description="layers to keep: a count (uniform map) or teacher indices; None: half the teacher's"
    )
    student: str | None = Field(None, description="a separate student checkpoint sharing the teacher's vocabulary")
    data: DataSpec = Field(description="training texts, labelled or not")
    eval_data: DataSpec | None = Field(None, description="dev data for the best checkpoint; None: the recipe's data")
    epochs: float = Field(1.0, gt=0)
    max_steps: int | None = Field(None, ge=1, description="a step budget; overrides epochs")
    max_train_rows: int | None = Field(None, ge=1, description="train on a random subset of this many rows")
    batch_size: int = Field(32, ge=1)
    learning_rate: float = Field(1e-4, gt=0)
    warmup_ratio: float = Field(0.06, ge=0, lt=1)
    weight_decay: float = Field(0.01, ge=0)
    max_length: int = Field(64, ge=8)
    temperature: float = Field(2.0, gt=0)
    weights: LossWeightsSpec = Field(default_factory=LossWeightsSpec)
    prune: PruneSpec | None = Field(None, description="heads/FFN pruning after layer selection; None: none")
    eval_steps: int | None = Field(None, ge=1, description="None: four evaluations over the run")
    mixed_precision: Literal["no", "bf16", "fp16"] = "no"
    seed: int = 0
    work_dir: Path | None = Field(None, description="checkpoints and caches; None: .edgekit-work/<out name>")

    @field_validator("student_layers")
    @classmethod
    def _positive(cls, value: int | list[int] | None) -> int | list[int] | None:
        if isinstance(value, int) and value < 1:
            raise ValueError("a student needs at least one layer")
        if isinstance(value, list) and not value:
            raise ValueError("the layer list is empty")
        return value


class Recipe(_Strict):
    model: str | FactorySpec | OnnxSpec = Field(
        description="HF checkpoint directory or hub id; an ONNX file as {onnx, tokenizer, labels}; "
        "for images also {factory, weights, input, labels}"
    )
    task: str = Field("text-classification", description="a task of the registry (edgekit.tasks)")
    out: Path | None = None
    target: str = "host"
    revision: str | None = Field(None, description="hub revision (branch, tag or commit)")
    trust_remote_code: bool = False
    record_source_path: bool = Field(
        False, description="also record the source's absolute local path in manifests (default: name + sha256)"
    )
    data: DataSpec | None = None
    export: ExportSpec = Field(default_factory=ExportSpec)
    parity: ParitySpec = Field(default_factory=ParitySpec)
    variants: list[str | dict[str, Any]] = Field(
        default_factory=lambda: ["onnx-fp32"],
        min_length=1,
        description="variant names, or {name: ..., <option>: ...} mappings with the variant's own options",
    )
    quantization: QuantizationSpec = Field(default_factory=QuantizationSpec)
    openvino: OpenVinoSpec = Field(default_factory=OpenVinoSpec)
    gate: GateSpec = Field(default_factory=GateSpec)
    bench: BenchSpec = Field(default_factory=BenchSpec)
    distill: DistillSpec | None = None

    @field_validator("task")
    @classmethod
    def _known_task(cls, name: str) -> str:
        from edgekit.tasks import tasks

        if name not in tasks():
            raise ValueError(f"unknown task '{name}'; edgekit converts: {', '.join(tasks())}")
        return name

    @field_validator("variants")
    @classmethod
    def _known_variants(cls, entries: list[str | dict[str, Any]]) -> list[str | dict[str, Any]]:
        from edgekit.convert.variants import variants

        names = [_entry_name(entry) for entry in entries]
        unknown = [n for n in names if n not in variants()]
        if unknown:
            raise ValueError(f"unknown variant(s) {unknown}; choose from {list(variants())}")
        if len(set(names)) != len(names):
            raise ValueError(f"variants are listed twice: {names}")
        return entries

    @model_validator(mode="after")
    def _variant_options_are_valid(self) -> Recipe:
        for name in self.variant_names:
            try:
                self.variant_options(name)
            except ValidationError as exc:
                problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or name}: {e['msg']}" for e in exc.errors())
                raise ValueError(f"options of variant {name}: {problems}") from None
        return self

    @property
    def variant_names(self) -> list[str]:
        return [_entry_name(entry) for entry in self.variants]

    def variant_options(self, name: str) -> Any:
        """The variant's validated options: the shared sections, then its own entry in ``variants``."""
        from edgekit.convert.variants import get_variant, resolve_options

        entry = next(e for e in self.variants if _entry_name(e) == name)
        given = {k: v for k, v in entry.items() if k != "name"} if isinstance(entry, dict) else {}
        return resolve_options(get_variant(name), self, given)

    @property
    def is_bundle(self) -> bool:
        """Several variants go into ``out/<variant>/``; a lone onnx-fp32 is ``out`` itself."""
        return self.variant_names != ["onnx-fp32"]

    def content_hash(self) -> str:
        """sha256 of the validated recipe and of the files it depends on, by content (data,
        the target profile, the source's config and tokenizer files), so a file edited in
        place gives a new hash and an artifact can name exactly what made it. The weights
        are fingerprinted separately (``sources.weights_fingerprint``). The edgekit version is
        part of it: another version may write different artifacts (0.2.0 added ``runtime``), and
        so are the conversion libraries' versions (``toolchain``): an upgrade never reuses stale output."""
        from edgekit import __version__
        from edgekit.convert.toolchain import toolchain

        fields = self.model_dump(mode="json")
        fields["_edgekit_version"] = __version__
        fields["_toolchain"] = toolchain(self.variant_names)
        fields["_inputs_sha256"] = {str(path): sha256_file(path) if path.is_file() else folder_fingerprint(path)
                                    for path in self._input_files() if path.exists()}  # fmt: skip
        if self.task == "image-classification":  # an image list names files elsewhere: hash them too
            from edgekit.image_data import listing_fingerprint

            specs = (self.data, self.quantization.calibration.data)
            fields["_image_lists_sha256"] = {
                str(s.path): listing_fingerprint(s.path, s.image_column, s.label_column, s.format)
                for s in specs if s is not None and s.path.is_file()
            }  # fmt: skip
        canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def _input_files(self) -> list[Path]:
        from edgekit.errors import TargetError
        from edgekit.targets.profiles import profile_path

        specs = [self.data, self.quantization.calibration.data]
        if self.distill is not None:
            specs += [self.distill.data, self.distill.eval_data]
        files = [spec.path for spec in specs if spec is not None]
        if isinstance(self.model, FactorySpec) and self.model.weights is not None:
            files.append(self.model.weights)  # the factory spec is in the dump; its weights by content
        tokenizer = self.model.tokenizer_dir if isinstance(self.model, OnnxSpec) else None  # its graph: by weights
        for folder in (Path(self.model), Path(self.distill.student) if self.distill and self.distill.student else None,
                       tokenizer):  # fmt: skip
            if folder is not None and folder.is_dir():
                files += [folder / name for name in _CHECKPOINT_METADATA]
        with contextlib.suppress(TargetError):  # an unknown target fails later, with its own message
            files.append(profile_path(self.target))
        return files

    def resolved(self, base: Path) -> Recipe:
        """Resolve relative paths against ``base`` (the recipe file's folder)."""

        def path(value: Path) -> Path:
            return value if value.is_absolute() else (base / value).resolve()

        def data(spec: DataSpec | None) -> DataSpec | None:
            return None if spec is None else spec.model_copy(update={"path": path(spec.path)})

        def model_ref(ref: str | FactorySpec | OnnxSpec) -> str | FactorySpec | OnnxSpec:  # a hub id stays as it is
            if isinstance(ref, OnnxSpec):
                tokenizer = None if ref.tokenizer is None else path(ref.tokenizer)
                return ref.model_copy(update={"onnx": path(ref.onnx), "tokenizer": tokenizer})
            if isinstance(ref, FactorySpec):
                return ref if ref.weights is None else ref.model_copy(update={"weights": path(ref.weights)})
            return str(path(Path(ref))) if (base / ref).exists() and not Path(ref).is_absolute() else ref

        calibration = self.quantization.calibration
        updates: dict = {
            "out": None if self.out is None else path(self.out),
            "model": model_ref(self.model),
            "data": data(self.data),
            "quantization": self.quantization.model_copy(
                update={"calibration": calibration.model_copy(update={"data": data(calibration.data)})}
            ),
        }
        if self.distill is not None:
            spec = self.distill
            updates["distill"] = spec.model_copy(
                update={
                    "data": data(spec.data),
                    "eval_data": data(spec.eval_data),
                    "student": None if spec.student is None else model_ref(spec.student),
                    "work_dir": None if spec.work_dir is None else path(spec.work_dir),
                }
            )
        return self.model_copy(update=updates)


def _entry_name(entry: str | dict[str, Any]) -> str:
    if isinstance(entry, str):
        return entry
    name = entry.get("name")
    if not isinstance(name, str):
        raise ValueError(f"a variant given with options needs a `name:` (one of the variant names), got {entry}")
    return name


def build_recipe(fields: dict, origin: str = "The recipe") -> Recipe:
    try:
        return Recipe.model_validate(fields)
    except ValidationError as exc:
        message = describe_validation_error(origin, exc, "docs/recipes.md for every field a recipe takes")
        raise RecipeError(message) from None


def load_recipe(path: str | Path) -> Recipe:
    file = Path(path)
    if not file.is_file():
        raise RecipeError(f"Recipe file {file} does not exist.")
    raw = read_yaml_mapping(file, "Recipe", RecipeError, hint=", with at least a `model:` field")
    return build_recipe(raw, origin=f"Recipe {file}").resolved(file.parent.resolve())


def distill_work_dir(recipe: Recipe, out: Path) -> Path:
    """Checkpoints and caches of a distillation: the recipe's ``work_dir``, else beside ``out``."""
    assert recipe.distill is not None
    return Path(recipe.distill.work_dir or out.parent / ".edgekit-work" / out.name)


def recipe_inputs(recipe: Recipe, out: Path) -> list[Path]:
    """Everything a run reads or keeps: the output may not be, contain, or lie inside any of it."""
    folders = [recipe.model] + ([recipe.distill.student] if recipe.distill and recipe.distill.student else [])
    if isinstance(recipe.model, OnnxSpec) and recipe.model.tokenizer is not None:  # a folder given as an input
        folders.append(recipe.model.tokenizer)
    paths = [Path(ref).expanduser() for ref in folders if Path(ref).expanduser().exists()]  # not hub ids
    specs = [recipe.data, recipe.quantization.calibration.data]
    if recipe.distill is not None:
        specs += [recipe.distill.data, recipe.distill.eval_data]
        paths.append(distill_work_dir(recipe, out))
    return paths + [spec.path for spec in specs if spec is not None]


def record_source_path(recipe: Recipe) -> bool:
    # Opt-in (recipe `record_source_path: true` / --record-source-path): the local path then ships in manifests.
    return recipe.record_source_path
