"""Build one variant of a bundle and gate it: build → package → strict parity (fp32 kinds) →
accuracy at batch 1 against the reference → the same texts at the app's and the server's batch sizes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.artifact import Manifest, model_size_mb, read_manifest
from edgekit.convert.gate import EvalSet, batch1_logits, batch_consistency_of, judge
from edgekit.convert.packaging import describe_parity, package_variant
from edgekit.convert.recipe import Recipe
from edgekit.convert.recommend import VariantRecord
from edgekit.convert.sources import LoadedSource
from edgekit.convert.variants import REFERENCE, BuildContext, get_variant
from edgekit.export.parity import check_parity
from edgekit.outputs import seal
from edgekit.progress import Reporter
from edgekit.runtime.engines import get_engine
from edgekit.targets.preflight import Outlook
from edgekit.targets.profiles import TargetProfile


def folder_size_mb(folder: Path) -> float:
    return model_size_mb(folder, read_manifest(folder))


def batch_sizes(target: TargetProfile) -> list[int]:
    """Batch sizes an app on this target (its profile's) and `edgekit serve` (its request limit) run."""
    from edgekit.serve.limits import ServeLimits

    return sorted({size for size in target.benchmark.batch_sizes if size > 1} | {ServeLimits().max_texts})


@dataclass
class VariantBuilder:
    """Builds one variant after another against the same reference, data and target."""

    context: BuildContext
    source: LoadedSource
    staging: Path
    recipe: Recipe
    evaluation: EvalSet
    reference_logits: np.ndarray  # the reference's batch-1 logits on the evaluation texts
    allowed: float  # accuracy points a variant may lose
    parity_texts: list[str]
    outlooks: list[Outlook]
    reporter: Reporter

    def build(self, name: str) -> VariantRecord:
        """Build → package → strict parity (fp32 kinds) → gate at batch 1 and at the app's batch sizes."""
        kind = get_variant(name)
        folder = self.staging / name
        folder.mkdir()
        with self.reporter.stage(f"Building {name} ({kind.description})"):
            output = kind.build(self.context, folder, self.recipe.variant_options(name))
            manifest = package_variant(self.staging / REFERENCE, folder, kind, output.model_file)
            manifest.metrics["build"] = output.settings
            _add_manifest_fields(manifest, output.manifest_fields)
        unavailable = get_engine(kind.engine).unavailable_reason()
        if unavailable:
            return self._not_runnable(name, folder, manifest, unavailable)
        parity_passed = True
        with self.reporter.stage(f"Gating {name} on {len(self.evaluation.texts)} rows (batch 1)"):
            if kind.strict_parity:
                spec = self.recipe.parity
                parity = check_parity(self.source, folder, self.parity_texts, spec.batch_sizes, spec.atol)
                manifest.parity = parity.to_dict()
                parity_passed = parity.passed
                self.reporter.note(f"{name} {describe_parity(parity)}")
            texts = self.evaluation.texts
            logits = batch1_logits(folder, texts)
            report = judge(name, logits, self.reference_logits, self.evaluation.label_ids, self.allowed)
            sizes = batch_sizes(self.context.target)
            report = report.with_batch_consistency(batch_consistency_of(folder, texts, sizes))
            manifest.metrics["gate"] = report.to_dict()
            seal(folder, manifest)
        self.reporter.note(report.summary())
        match = next((o for o in self.outlooks if (o.engine, o.precision) == (kind.engine, kind.precision)), None)
        record = VariantRecord(
            name, kind.engine, kind.precision, folder_size_mb(folder), report, parity_passed, outlook=match
        )
        if not parity_passed:
            record.notes.append("failed strict parity with the source model")
        return record

    def _not_runnable(self, name: str, folder: Path, manifest: Manifest, reason: str) -> VariantRecord:
        """Seal a variant this machine cannot run, its gate skipped with the reason: never claimed to pass."""
        kind = get_variant(name)
        manifest.metrics["gate"] = {"skipped": f"not runnable here: {reason}"}
        seal(folder, manifest)
        self.reporter.note(f"{name}: built, not gated: not runnable here ({reason})")
        record = VariantRecord(name, kind.engine, kind.precision, folder_size_mb(folder), None, not_runnable=reason)
        # The bundle copies record notes into the manifest: an app team reads this there too.
        record.notes.append(f"not runnable here ({reason}): neither gated nor benchmarked; check parity on a "
                            "device that runs it (docs/mobile.md)")  # fmt: skip
        return record


def _add_manifest_fields(manifest: Manifest, fields: dict[str, Any]) -> None:
    """Manifest fields a build adds (ORT Mobile: ``mobile`` and a caveat note); notes are appended."""
    for key, value in fields.items():
        if key == "notes":
            manifest.notes.extend(value)
        else:
            setattr(manifest, key, value)
