"""Which trials are ready, and what the finished ones rule out.

The teacher comes first: its FP32 accuracy is the anchor every candidate is measured against.
Students go deepest first, each first as onnx-fp32 only (cheap); one within the budget gets its
other variants next, one that misses it is not quantized, and (early stop) every student at most
as deep and at least as pruned is skipped too: it would miss as well.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit.convert.variants import REFERENCE
from edgekit.optimize.space import TEXT_TASK, ModelCandidate
from edgekit.optimize.store import RUNS_DIR, WORK_DIR
from edgekit.optimize.trials import TrialRecord, TrialSpec, make_spec


@dataclass
class TrialEntry:
    """One planned trial, run or not: what the report lists."""

    name: str
    model: str
    stage: str
    status: str = "planned"  # done, reused, failed, pruned, skipped
    reason: str = ""
    spec: TrialSpec | None = None
    record: TrialRecord | None = None


@dataclass
class Plan:
    settings: Any  # SearchSettings
    variants: list[str]
    models: list[ModelCandidate]
    out: Path
    anchor: float | None = None  # the teacher's onnx-fp32 accuracy
    entries: dict[str, TrialEntry] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.entries["teacher"] = TrialEntry("teacher", "teacher", "teacher")
        for model in self.models:
            self.entries[f"{model.name}-fp32"] = TrialEntry(f"{model.name}-fp32", model.name, "fp32")
            if len(self.variants) > 1:
                self.entries[model.name] = TrialEntry(model.name, model.name, "variants")

    # ----------------------------------------------------------------------------------- specs

    def fields(self, model: ModelCandidate | None, variants: list[str], run_name: str) -> dict[str, Any]:
        s = self.settings
        bench = {"enabled": s.trial_bench_runs > 0, "pytorch_baseline": False, "runs": max(10, s.trial_bench_runs),
                 "warmup": 5, "rounds": 1, **({"threads": s.threads} if s.threads else {})}  # fmt: skip
        gate = {"max_accuracy_drop": s.max_accuracy_drop, **({"samples": s.gate_samples} if s.gate_samples else {})}
        fields = {"model": str(Path(s.model).resolve()), "task": TEXT_TASK, "target": s.target,
                  "out": str(self.out / RUNS_DIR / run_name), "data": {"path": str(Path(s.data).resolve())},
                  "variants": variants, "gate": gate, "bench": bench}  # fmt: skip
        if model is not None and model.depth is not None:
            distill = {"student_layers": model.depth, "data": {"path": str(Path(s.train_data).resolve())},
                       "epochs": s.epochs, "work_dir": str(self.out / WORK_DIR / model.name), **s.distill}  # fmt: skip
            if s.max_train_rows:
                distill["max_train_rows"] = s.max_train_rows
            if model.prune is not None:
                distill["prune"] = model.prune_dict
            fields["distill"] = distill
        return fields

    def spec_for(self, entry: TrialEntry) -> TrialSpec:
        if entry.spec is None:
            model = next((m for m in self.models if m.name == entry.model), None)
            variants = [REFERENCE] if entry.stage == "fp32" else self.variants
            entry.spec = make_spec(entry.name, entry.model, entry.stage, self.fields(model, variants, entry.name),
                                   self.out)  # fmt: skip
        return entry.spec

    # ------------------------------------------------------------------------------- ordering

    def ready(self) -> list[TrialEntry]:
        """Trials whose inputs are known and that nothing rules out, in the order to run them."""
        teacher = self.entries["teacher"]
        if teacher.status == "planned":
            return [teacher]
        if self.anchor is None:
            return []
        ready = [e for m in self.models if (e := self.entries.get(m.name)) and e.status == "planned"
                 and self.entries[f"{m.name}-fp32"].status in ("done", "reused")]  # fmt: skip
        pending = [self.entries[f"{m.name}-fp32"] for m in self.models
                   if self.entries[f"{m.name}-fp32"].status == "planned"]  # fmt: skip
        if pending:
            ready += pending[:1] if self.settings.early_stop else pending
        return ready

    def finish(self, entry: TrialEntry, record: TrialRecord | None, error: str | None) -> None:
        if record is None:
            entry.status, entry.reason = "failed", error or "no record"
            if entry.stage == "fp32" and entry.model in self.entries:
                self._rule_out(self.entries[entry.model], f"not quantized: {entry.name} failed")
            return
        entry.status, entry.record = ("reused" if record.reused else "done"), record
        if entry.stage == "teacher":
            self.anchor = record.reference_accuracy
        elif entry.stage == "fp32":
            self._judge_fp32(entry, record)

    def _judge_fp32(self, entry: TrialEntry, record: TrialRecord) -> None:
        accuracy = record.reference_accuracy
        assert self.anchor is not None and accuracy is not None
        drop = (self.anchor - accuracy) * 100
        if drop <= self.settings.max_accuracy_drop + 1e-9:
            entry.reason = f"FP32 {accuracy:.4f} ({0.0 - drop + 0.0:+.2f} pts vs the teacher): within the budget"
            return
        budget = self.settings.max_accuracy_drop
        entry.reason = f"FP32 {accuracy:.4f} ({0.0 - drop + 0.0:+.2f} pts) misses the {budget:g}-point budget"
        if entry.model in self.entries:
            self._rule_out(self.entries[entry.model], "pruned: FP32 already misses")
        if not self.settings.early_stop:
            return
        missed = next(m for m in self.models if m.name == entry.model)
        for model in self.models:
            if model != missed and missed.covers(model):
                why = f"skipped: {missed.name} already missed the budget in FP32 (--no-early-stop tries it)"
                self._rule_out(self.entries[f"{model.name}-fp32"], why)
                if model.name in self.entries:
                    self._rule_out(self.entries[model.name], why)

    @staticmethod
    def _rule_out(entry: TrialEntry, reason: str) -> None:
        if entry.status == "planned":
            entry.status, entry.reason = ("pruned" if reason.startswith("pruned") else "skipped"), reason

    def skip_remaining(self, reason: str) -> None:
        for entry in self.entries.values():
            if entry.status == "planned":
                entry.status, entry.reason = "skipped", reason

    def records(self) -> list[TrialRecord]:
        return [e.record for e in self.entries.values() if e.record is not None]
