"""One trial = one ``convert`` of one candidate model with its variants, cached on disk.

A ``TrialSpec`` is plain data (picklable, so a Ray worker can run it): the recipe fields and a
``key``, the sha256 of their canonical JSON together with the inputs' content (the recipe's
content hash and the source weights' sha256). ``run_trial`` builds the recipe, calls
``convert`` (which reuses its own output when the recipe is unchanged) and writes the
finished trial's record to ``<out>/trials/<key>.json`` atomically. A rerun reads that file
back instead of converting again; a file that is truncated, corrupt, for another key, or whose
artifacts are gone is ignored and the trial is done again, never trusted.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgekit.optimize.store import TRIALS_DIR, read_json_or_none, write_json_atomic

RECORD_FORMAT = "edgekit.optimize.trial/1"
# What the report keeps of a distillation record (the rest, e.g. the teacher's info, is in the manifests).
_DISTILL_KEYS = ("student_layers", "layer_map", "steps", "train_rows", "train_seconds", "teacher_accuracy",
                 "student_accuracy", "agreement_with_teacher", "prune")  # fmt: skip


@dataclass(frozen=True)
class TrialSpec:
    name: str  # unique within a search: "teacher", "L4-fp32", "L4"
    model: str  # the candidate model: "teacher", "L4", "L4-heads0.5-ffn0.5"
    stage: str  # "teacher" (all variants), "fp32" (a student's cheap first look), "variants" (a student's)
    fields_json: str  # the recipe fields, canonical JSON (a frozen, hashable, picklable form of the dict)
    out: str  # the search's output folder: the trial's record goes to <out>/trials/<key>.json
    key: str

    @property
    def fields(self) -> dict[str, Any]:
        return json.loads(self.fields_json)

    @property
    def record_path(self) -> Path:
        return Path(self.out) / TRIALS_DIR / f"{self.key}.json"


def make_spec(name: str, model: str, stage: str, fields: dict[str, Any], out: Path) -> TrialSpec:
    """The spec, keyed by its fields and by the content of what they name (data, config, weights)."""
    from edgekit.convert.recipe import build_recipe
    from edgekit.convert.sources import weights_fingerprint

    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    recipe = build_recipe(json.loads(canonical), origin=f"The optimize trial {name}")
    weights = weights_fingerprint(Path(recipe.model)) if Path(str(recipe.model)).is_dir() else None
    identity = {"name": name, "model": model, "stage": stage, "fields": json.loads(canonical),
                "recipe_hash": recipe.content_hash(), "weights_sha256": weights}  # fmt: skip
    key = hashlib.sha256(json.dumps(identity, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return TrialSpec(name, model, stage, canonical, str(out), key)


@dataclass
class VariantResult:
    variant: str
    engine: str
    precision: str
    accuracy: float | None  # on the gate's rows at batch 1, as the runtime runs it
    agreement: float | None  # with the model's own FP32 reference
    passed: bool  # convert's verdict: parity and the gate against the model's own FP32 reference
    size_mb: float
    convert_p50_ms: float | None  # convert's own benchmark, None when it did not time this variant
    location: str  # the artifact folder, relative to the search's output folder
    notes: list[str] = field(default_factory=list)


@dataclass
class TrialRecord:
    key: str
    name: str
    model: str
    stage: str
    variants: list[VariantResult]
    reference_accuracy: float | None  # the model's own onnx-fp32 accuracy
    distillation: dict[str, Any] | None
    wall_seconds: float
    convert_reused: bool
    reused: bool = False  # read back from <out>/trials/ by this run (not stored)

    def to_dict(self) -> dict[str, Any]:
        document = asdict(self)
        document.pop("reused")
        return {"format": RECORD_FORMAT, **document}

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> TrialRecord:
        if document.get("format") != RECORD_FORMAT:
            raise ValueError(f"not a trial record ({document.get('format')!r})")
        fields = {k: v for k, v in document.items() if k != "format"}
        fields["variants"] = [VariantResult(**v) for v in fields["variants"]]
        record = cls(**fields)
        if not isinstance(record.wall_seconds, (int, float)) or not all(isinstance(v.location, str)
                                                                        for v in record.variants):  # fmt: skip
            raise ValueError("malformed trial record")
        return record


def load_record(spec: TrialSpec) -> TrialRecord | None:
    """The finished trial's record if it is complete, for this very key, and its artifacts still exist."""
    document = read_json_or_none(spec.record_path)
    if document is None:
        return None
    try:
        record = TrialRecord.from_dict(document)
    except (KeyError, TypeError, ValueError):
        return None
    if record.key != spec.key or not record.variants:
        return None
    root = Path(spec.out).resolve()
    for result in record.variants:
        folder = (root / result.location).resolve()
        if not folder.is_relative_to(root) or not (folder / "manifest.json").is_file():
            return None  # deleted or moved since: convert again (it verifies and reuses what is still there)
    record.reused = True
    return record


def run_trial(spec: TrialSpec, reporter=None) -> TrialRecord:
    """Run (or read back) one trial. Module-level and picklable-argument only: executors call it anywhere."""
    cached = load_record(spec)
    if cached is not None:
        return cached
    from edgekit.convert.pipeline import convert
    from edgekit.convert.recipe import build_recipe

    started = time.perf_counter()
    recipe = build_recipe(spec.fields, origin=f"The optimize trial {spec.name}")
    result = convert(recipe, reporter, resume=True)
    out = Path(spec.out).resolve()
    if result.summary is not None:
        variants, reference_accuracy = _bundle_results(result, out)
    else:
        variants, reference_accuracy = _single_result(result, recipe, out)
    distillation = result.manifest.metrics.get("distillation")
    record = TrialRecord(
        key=spec.key,
        name=spec.name,
        model=spec.model,
        stage=spec.stage,
        variants=variants,
        reference_accuracy=reference_accuracy,
        distillation={k: distillation[k] for k in _DISTILL_KEYS if k in distillation} if distillation else None,
        wall_seconds=round(time.perf_counter() - started, 2),
        convert_reused=result.reused,
    )
    write_json_atomic(spec.record_path, record.to_dict())
    return record


def _bundle_results(result, out: Path) -> tuple[list[VariantResult], float | None]:
    summary = result.summary
    reference = summary.reference_accuracy
    rows = []
    for v in summary.variants:
        if v["is_source"] or v.get("not_runnable"):
            continue
        gate = v["gate"]
        latency = v["latency_ms"]
        folder = (result.out / summary.locations[v["name"]]).resolve()
        rows.append(VariantResult(
            variant=v["name"], engine=v["engine"], precision=v["precision"],
            accuracy=gate["accuracy"] if gate else reference, agreement=gate["agreement"] if gate else 1.0,
            passed=bool(v["passed"]), size_mb=float(v["size_mb"]),
            convert_p50_ms=latency["median"] if latency else None,
            location=folder.relative_to(out).as_posix(), notes=list(v.get("notes", [])),
        ))  # fmt: skip
    return rows, reference


def _single_result(result, recipe, out: Path) -> tuple[list[VariantResult], float | None]:
    """A lone onnx-fp32 (a student's first look): its accuracy at batch 1 on the gate's rows."""
    from edgekit.convert.gate import batch1_logits
    from edgekit.convert.variant_build import folder_size_mb
    from edgekit.metrics import accuracy
    from edgekit.tasks import get_task

    folder = result.artifact_dir.resolve()
    manifest = result.manifest
    value = None
    if recipe.data is not None:
        data = get_task(recipe.task).read_dataset(recipe.data)
        if data.has_labels:  # the rows the bundle's gate uses (same sample and seed)
            sample = data.sample(recipe.gate.samples, seed=0)
            predicted = batch1_logits(folder, sample.texts).argmax(-1)
            value = accuracy(predicted, sample.label_ids(manifest.labels))
    row = VariantResult("onnx-fp32", manifest.engine, manifest.precision, value, 1.0, True,
                        folder_size_mb(folder), None, folder.relative_to(out).as_posix())  # fmt: skip
    return [row], value
