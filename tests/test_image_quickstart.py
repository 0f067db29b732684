"""The image quickstart end to end on a few real digits per class: train, convert, gate, bench, report.

Marked ``integration`` like the text quickstart: it trains a (tiny) CNN and runs every variant's
benchmark worker, about a minute on two cores.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from typer.testing import CliRunner

pytest.importorskip("sklearn", reason="the demo digits ship with scikit-learn: pip install 'edgekit[images]'")
pytest.importorskip("torch")

from edgekit.cli import app  # noqa: E402
from edgekit.quickstart_image import DEFAULT_FINETUNE, image_variants, run_image_quickstart  # noqa: E402
from edgekit.runtime import EdgeModel  # noqa: E402
from edgekit.runtime.image_preprocess import ImagePreprocessor  # noqa: E402
from edgekit.train.finetune_image import PixelRows, factory_model  # noqa: E402

pytestmark = pytest.mark.integration


def test_image_quickstart_end_to_end_and_reuse(tmp_path):
    out = tmp_path / "qs"
    config = replace(DEFAULT_FINETUNE, epochs=3)
    result = run_image_quickstart(out, threads=1, rounds=1, runs=10, finetune=config, per_class=12)
    assert (result.data.train_count, result.data.test_count) == (100, 20)
    summary = json.loads((out / "artifacts" / "summary.json").read_text())
    rows = {v["name"]: v for v in summary["variants"]}
    assert set(image_variants()) <= set(rows) and "pytorch-fp32" in rows
    assert summary["recommended"] in summary["built"]
    bench = json.loads((out / "artifacts" / "bench.json").read_text())
    assert bench["schema"] == "edgekit.bench/1" and len(bench["variants"]) == len(rows)
    report = (out / "report.md").read_text()
    assert report.startswith("<!-- written by edgekit quickstart") and "Benchmark details" in report

    model = EdgeModel.load(out / "artifacts" / "onnx-fp32")
    assert model.manifest.task == "image-classification" and model.labels == [str(d) for d in range(10)]
    image = sorted((out / "data" / "test" / "7").glob("*.png"))[0]
    assert model.predict(image).label in model.labels
    # The tensors training used are the ones the artifact's runtime makes from the same file.
    preprocessing = factory_model(result.model.checkpoint)["preprocessing"]
    rows_ = PixelRows(ImagePreprocessor.from_config(preprocessing), [str(image)], None)
    np.testing.assert_array_equal(rows_[0]["pixel_values"].numpy(), model.features([image])["pixel_values"][0])

    again = run_image_quickstart(out, threads=1, rounds=1, runs=10, finetune=config, per_class=12)
    assert again.model.reused and again.conversion.reused


def test_quickstart_help_names_the_image_task_and_refuses_unknown_ones():
    runner = CliRunner()
    shown = runner.invoke(app, ["quickstart", "--help"])
    assert shown.exit_code == 0 and "image-classification" in shown.output
    wrong = runner.invoke(app, ["quickstart", "--task", "speech", "--out", "unused"])
    assert wrong.exit_code != 0 and "unknown task 'speech'" in wrong.output
