"""The image quickstart: a real image classifier taken through the pipeline on built-in images.

1. write scikit-learn's bundled handwritten digits as labelled PNGs (``edgekit/demo/images.py``:
   1,797 real 8x8 scans, upscaled, with a deterministic 80/20 held-out split);
2. train a small MobileNet-like CNN (``edgekit/demo/cnn.py:tiny_mobilenet``) on them with
   ``Trainer``, through the runtime's own pre-processing (``train/finetune_image.py``);
3. convert it into the image task's default variants (ONNX FP32, ORT static INT8, OpenVINO FP32
   and NNCF INT8 when OpenVINO is installed), gate each on the held-out digits, benchmark them
   against PyTorch FP32 (decode and pre-processing included) and recommend one.

EfficientNet-Lite0 was measured as the base and left out: it does not train in a few minutes
on two cores (``edgekit/demo/cnn.py``). Everything is cached in the output folder by its inputs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from edgekit.bench.report import markdown as bench_markdown
from edgekit.bench.results import read_results
from edgekit.convert.bundle import BENCH_NAME
from edgekit.convert.pipeline import ConvertResult, convert
from edgekit.convert.recipe import build_recipe
from edgekit.convert.summary import markdown as bundle_markdown
from edgekit.convert.variants import get_variant
from edgekit.demo.images import DemoImages, write_demo_digits
from edgekit.image_data import read_image_dataset
from edgekit.outputs import OutputError, check_destination, check_parent_folder
from edgekit.progress import Reporter, SilentReporter
from edgekit.quickstart import REPORT_FIRST_LINE, REPORT_NAME, _is_our_report
from edgekit.tasks import get_task
from edgekit.train.finetune import FinetuneResult
from edgekit.train.finetune_image import ImageFinetuneConfig, ModuleBase, factory_model, finetune_image_classifier

TASK = "image-classification"
# The digits are grey 32x32 PNGs: one channel, no resizing, the usual [-1, 1] scaling.
DEMO_BASE = ModuleBase(
    factory="edgekit.demo.cnn:tiny_mobilenet",
    input=(1, 32, 32),
    head="classifier",
    preprocessing={"resize": {"height": 32, "width": 32}, "center_crop": None, "mean": [0.5], "std": [0.5]},
)
DEFAULT_FINETUNE = ImageFinetuneConfig(epochs=8.0, batch_size=32, learning_rate=3e-3, threads=1)


@dataclass(frozen=True)
class ImageQuickstartResult:
    out: Path
    data: DemoImages
    model: FinetuneResult
    conversion: ConvertResult
    report_path: Path


def image_variants() -> list[str]:
    """The image task's default variants that this machine can build."""
    return [name for name in get_task(TASK).default_variants if get_variant(name).installed()]


def _check_outputs(out: Path) -> None:
    check_parent_folder(out, [])  # `out` itself is never replaced, only the folders below it
    for folder in (out / "data", out / "model", out / "artifacts"):
        check_destination(folder, [])
    report = out / REPORT_NAME
    if report.is_symlink() or (report.exists() and not _is_our_report(report)):
        raise OutputError(
            f"Refusing to overwrite {report}: it was not written by `edgekit quickstart`. Choose another --out, "
            "or move the file away."
        )


def run_image_quickstart(
    out: Path,
    threads: int | None = None,
    rounds: int = 3,
    runs: int = 200,
    finetune: ImageFinetuneConfig | None = None,
    reporter: Reporter | None = None,
    force: bool = False,
    per_class: int | None = None,
    pytorch_baseline: bool = True,
) -> ImageQuickstartResult:
    """``per_class`` keeps only that many digits of each class (tests and quick tries)."""
    reporter = reporter or SilentReporter()
    out = out.resolve()
    _check_outputs(out)
    with reporter.stage("Writing the demo images (scikit-learn's handwritten digits)"):
        demo = write_demo_digits(out / "data", per_class)
    train, test = read_image_dataset(demo.train), read_image_dataset(demo.test)
    with reporter.stage(f"Training a tiny MobileNet-like CNN on {len(train)} digits"):
        model = finetune_image_classifier(DEMO_BASE, train, out / "model", test, finetune or DEFAULT_FINETUNE, reporter)
    reporter.note(f"accuracy on the {len(test)} held-out digits (PyTorch): {model.eval_accuracy:.4f}")

    variants = image_variants()
    if not any(get_variant(name).engine == "openvino" for name in variants):
        reporter.note("OpenVINO is not installed: skipping the OpenVINO variants (pip install 'edgekit[openvino]').")
    fields = {
        "task": TASK,
        "model": factory_model(model.checkpoint),
        "out": str(out / "artifacts"),
        "target": "host",
        "data": {"path": str(demo.test)},
        "variants": variants,
        "bench": {
            "runs": runs,
            "rounds": rounds,
            "warmup": 20,
            "threads": threads,
            "pytorch_baseline": pytorch_baseline,
        },
    }
    conversion = convert(build_recipe(fields), reporter, force=force)

    assert conversion.summary is not None
    sections = [bundle_markdown(conversion.summary)]
    bench_file = conversion.out / BENCH_NAME
    if bench_file.is_file():
        sections.append(bench_markdown(read_results(bench_file), title="Benchmark details").replace("# ", "## ", 1))
    report_path = out / REPORT_NAME
    staged = report_path.with_name(f".{REPORT_NAME}.tmp-{os.getpid()}")  # replaced whole, never half-written
    staged.write_text("\n".join([REPORT_FIRST_LINE, "", *sections]), encoding="utf-8")
    staged.replace(report_path)
    return ImageQuickstartResult(out, demo, model, conversion, report_path)
