"""`edgekit optimize`: the search on a tiny BERT teacher (fine-tuned for seconds on synthetic data)
with a 1-layer student and two variants; caching, the time budget, the budget miss, bad inputs,
and the Pareto set's properties."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import synthetic_sentiment, write_tsv
from hypothesis import given, settings
from hypothesis import strategies as st

from edgekit.errors import RecipeError
from edgekit.optimize.pareto import FLOAT_NOISE, Point, dominates, pareto_set, recommend

VARIANTS = ["onnx-fp32", "ort-int8-dynamic"]
DISTILL = {"batch_size": 16, "learning_rate": 3e-3, "max_length": 32, "max_steps": 12}


@pytest.fixture(scope="module")
def train_tsv(tmp_path_factory) -> Path:
    return write_tsv(tmp_path_factory.mktemp("opt-train") / "train.tsv", synthetic_sentiment(160, seed=11))


def _settings(model, data, train, out, **extra):
    from edgekit.optimize.search import SearchSettings

    values = {"depths": [1], "variants": VARIANTS, "trial_bench_runs": 0, "bench": False,
              "distill": DISTILL, "max_accuracy_drop": 50.0, **extra}  # fmt: skip
    return SearchSettings(model=Path(model), data=Path(data), train_data=Path(train), out=Path(out), **values)


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, trained_tiny_dir, sentiment_eval, train_tsv):
    """One full search, final benchmark included (10 runs, 1 round)."""
    from edgekit.optimize.search import run_search

    out = tmp_path_factory.mktemp("opt") / "search"
    settings_ = _settings(trained_tiny_dir, sentiment_eval, train_tsv, out, bench=True, bench_runs=10, bench_rounds=1)
    return settings_, run_search(settings_)


def test_a_search_writes_its_report_and_the_recommended_artifact(first_run):
    from edgekit.runtime import EdgeModel

    settings_, result = first_run
    out = result.out
    doc = json.loads((out / "optimize.json").read_text())
    assert doc["schema"] == "edgekit.optimize/1" and doc["host"]["isa_features"] is not None
    statuses = {t["name"]: t["status"] for t in doc["trials"]}
    assert statuses == {"teacher": "done", "L1-fp32": "done", "L1": "done"}, doc["trials"]
    names = {c["name"] for c in doc["candidates"]}
    assert names == {"teacher-onnx-fp32", "teacher-ort-int8-dynamic", "L1-onnx-fp32", "L1-ort-int8-dynamic"}
    student = next(t for t in doc["trials"] if t["name"] == "L1-fp32")
    assert student["distillation"]["student_layers"] == 1 and 0 <= student["distillation"]["student_accuracy"] <= 1
    timed = [c for c in doc["candidates"] if c["p50_source"] == "final"]
    assert timed and all(c["p50_ms"] > 0 for c in timed)
    assert doc["bench"]["pytorch_teacher"]["p50_ms"] > 0
    best = doc["recommended"]
    assert best["name"] in doc["pareto"] and best["within_budget"]
    fastest = min(c["p50_ms"] for c in timed if c["within_budget"])
    assert best["p50_ms"] == fastest and best["speedup_vs_pytorch"] > 0
    assert "<svg" in (out / "report.html").read_text() and best["name"] in (out / "optimize.md").read_text()
    model = EdgeModel.load(out / "recommended")  # a complete, verified artifact
    assert model.predict("this film was great fun").label in {"negative", "neutral", "positive"}
    assert "/" not in doc["settings"]["model"], "names, not build-machine paths, in the report"


def test_a_rerun_reuses_every_trial_and_a_corrupt_trial_file_is_redone(first_run):
    from edgekit.optimize.search import run_search

    settings_, result = first_run
    settings_.bench = False
    again = run_search(settings_)
    assert sorted(again.reused) == ["L1", "L1-fp32", "teacher"]
    assert all(e.record.reused for e in again.plan.entries.values())
    before = {e.name: e.record.distillation for e in result.plan.entries.values()}
    assert {e.name: e.record.distillation for e in again.plan.entries.values()} == before, "not trained again"

    broken = again.plan.entries["L1-fp32"].spec.record_path
    broken.write_text(broken.read_text()[:40])  # a trial file cut short (a crash mid-write, by hand)
    third = run_search(settings_)
    assert third.plan.entries["L1-fp32"].status == "done" and sorted(third.reused) == ["L1", "teacher"]
    assert json.loads(broken.read_text())["key"] == third.plan.entries["L1-fp32"].spec.key


def test_a_spent_time_budget_skips_the_trials_after_the_teacher(first_run, tmp_path):
    from edgekit.optimize.search import run_search

    settings_, _ = first_run
    settings_.budget_minutes, settings_.bench = 0.0, False
    result = run_search(settings_)
    statuses = {name: (e.status, e.reason) for name, e in result.plan.entries.items()}
    assert statuses["teacher"][0] == "reused"
    assert statuses["L1-fp32"] == ("skipped", "skipped: time budget") == statuses["L1"]
    assert result.recommended is not None and result.recommended.model == "teacher"


def test_a_student_that_loses_is_not_quantized_and_nothing_is_recommended(tmp_path, trained_tiny_dir, sentiment_eval):
    """A student trained (cross-entropy only, no teacher) on one class says that class for everything: near
    chance on the dev data, so a 0-point budget has no candidate; the closest one is named."""
    from edgekit.optimize.search import run_search

    one_class = write_tsv(tmp_path / "one-class.tsv", [(t, "negative") for t, _ in synthetic_sentiment(64, seed=4)])
    distill = {**DISTILL, "max_steps": 16, "eval_steps": 16, "weights": {"kl": 0.0, "ce": 1.0}}
    result = run_search(_settings(trained_tiny_dir, sentiment_eval, one_class, tmp_path / "miss", students_only=True,
                                  max_accuracy_drop=0.0, distill=distill))  # fmt: skip
    fp32, variants = result.plan.entries["L1-fp32"], result.plan.entries["L1"]
    assert "misses the 0-point budget" in fp32.reason
    assert (variants.status, variants.reason) == ("pruned", "pruned: FP32 already misses")
    assert result.recommended is None and result.closest.name == "L1-onnx-fp32"
    doc = json.loads((result.out / "optimize.json").read_text())
    assert doc["recommended"] is None and doc["closest"]["name"] == "L1-onnx-fp32"
    assert "No variant within the budget" in (result.out / "optimize.md").read_text()
    assert not (result.out / "recommended").exists()


def test_the_cli_exits_non_zero_when_no_variant_is_within_the_budget(tmp_path, trained_tiny_dir, sentiment_eval,
                                                                     train_tsv):  # fmt: skip
    """Students only, and no time for them: the teacher (the anchor) runs, nothing can be recommended."""
    from typer.testing import CliRunner

    from edgekit.cli import app

    out = tmp_path / "none"
    args = ["optimize", "--model", str(trained_tiny_dir), "--data", str(sentiment_eval), "--train-data",
            str(train_tsv), "--out", str(out), "--depths", "1", "--variants", "onnx-fp32", "--students-only",
            "--budget-minutes", "0", "--no-bench"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 4, result.output
    assert "No variant kept accuracy within 1 points" in result.output
    doc = json.loads((out / "optimize.json").read_text())
    assert [t["status"] for t in doc["trials"]] == ["done", "skipped"]
    assert doc["trials"][1]["reason"] == "skipped: time budget"


def test_bad_inputs_give_clear_errors(tmp_path, trained_tiny_dir, tiny_artifact, sentiment_eval, train_tsv):
    from edgekit.optimize.search import run_search
    from edgekit.optimize.space import parse_depths, parse_prune

    with pytest.raises(RecipeError, match="--data .* does not exist"):
        run_search(_settings(trained_tiny_dir, tmp_path / "missing.tsv", train_tsv, tmp_path / "o"))
    with pytest.raises(RecipeError, match="ONNX model: optimize searches text classifiers from a PyTorch checkpoint"):
        run_search(_settings(tiny_artifact / "model.onnx", sentiment_eval, train_tsv, tmp_path / "o"))
    image = tmp_path / "image-model"
    image.mkdir()
    (image / "config.json").write_text(json.dumps({"architectures": ["ResNetForImageClassification"],
                                                   "id2label": {"0": "cat", "1": "dog"}}))  # fmt: skip
    with pytest.raises(RecipeError, match="image-classification model: optimize searches text classifiers"):
        run_search(_settings(image, sentiment_eval, train_tsv, tmp_path / "o"))
    with pytest.raises(RecipeError, match="is not a local checkpoint folder"):
        run_search(_settings("some-org/some-hub-model", sentiment_eval, train_tsv, tmp_path / "o"))
    from edgekit.outputs import OutputError

    with pytest.raises(OutputError, match="an input of this run"):
        run_search(_settings(trained_tiny_dir, sentiment_eval, train_tsv, trained_tiny_dir / "opt"))
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(RecipeError, match="not an `edgekit optimize` output folder"):
        run_search(_settings(trained_tiny_dir, sentiment_eval, train_tsv, foreign))
    with pytest.raises(RecipeError, match="1 to 5 layers"):
        parse_depths("4,6", 6)
    with pytest.raises(RecipeError, match="comma-separated layer counts"):
        parse_depths("four", 6)
    with pytest.raises(RecipeError, match="heads"):
        parse_prune("heads=1.5")
    assert parse_prune("heads=0.5,ffn=0.25") == (None, (("ffn", 0.25), ("heads", 0.5)))
    assert parse_prune("3:ffn=0.5") == (3, (("ffn", 0.5),))
    for bad in ("x:ffn=0.5", "0:ffn=0.5", "3:", "3:ffn=2"):
        with pytest.raises(RecipeError, match="--prune"):
            parse_prune(bad)


def test_hostile_trial_files_are_never_trusted(tmp_path):
    """A trial record whose artifact location escapes the output folder, or that names another key, is redone."""
    from edgekit.optimize.trials import TrialRecord, TrialSpec, VariantResult, load_record

    spec = TrialSpec("teacher", "teacher", "teacher", "{}", str(tmp_path), "a" * 64)
    outside = tmp_path.parent / "elsewhere"
    (outside / "art").mkdir(parents=True)
    (outside / "art" / "manifest.json").write_text("{}")
    row = VariantResult("onnx-fp32", "onnxruntime", "fp32", 0.9, 1.0, True, 1.0, None, "../elsewhere/art")
    record = TrialRecord(spec.key, "teacher", "teacher", "teacher", [row], 0.9, None, 1.0, False)
    spec.record_path.parent.mkdir(parents=True)
    spec.record_path.write_text(json.dumps(record.to_dict()))
    assert load_record(spec) is None, "a location outside the output folder"
    (tmp_path / "art").mkdir()
    (tmp_path / "art" / "manifest.json").write_text("{}")
    row.location = "art"
    spec.record_path.write_text(json.dumps(record.to_dict()))
    assert load_record(spec) is not None
    spec.record_path.write_text(json.dumps({**record.to_dict(), "key": "b" * 64}))
    assert load_record(spec) is None, "another trial's record"
    for junk in ("", "[]", '{"format": "edgekit.optimize.trial/1"}', "\xff\xfe", '{"format": 1}'):
        spec.record_path.write_text(junk, encoding="utf-8", errors="surrogateescape")
        assert load_record(spec) is None


def test_default_depths_follow_the_teachers_layers():
    from edgekit.optimize.space import default_depths

    assert default_depths(6) == [4, 3, 2] and default_depths(12) == [8, 6, 4, 3, 2] and default_depths(2) == [1]


def test_default_variants_are_what_the_target_runs_here():
    from edgekit.optimize.space import default_variants
    from edgekit.targets.profiles import load_target

    names = default_variants(load_target("x86-avx2-box"))
    assert names[0] == "onnx-fp32" and "ort-int8-dynamic" in names
    assert not any(n.startswith(("coreml", "ort-mobile", "executorch")) or "fp16" in n for n in names)


_points = st.lists(
    st.builds(
        Point,
        name=st.uuids().map(str),
        accuracy=st.floats(0, 1),
        p50_ms=st.floats(0.01, 100),
        size_mb=st.sampled_from([1.0, 2.0, 5.0, 10.0]),
    ),  # fmt: skip
    min_size=1,
    max_size=25,
)


@settings(max_examples=200, deadline=None)
@given(_points)
def test_pareto_set_members_are_undominated_and_cover_the_rest(points):
    front = pareto_set(points)
    assert front, "a non-empty set always has a non-dominated point"
    for member in front:
        assert not any(dominates(other, member) for other in points)
    for point in points:
        if point not in front:
            assert any(dominates(member, point) for member in front)


@settings(max_examples=200, deadline=None)
@given(_points, st.floats(0, 1))
def test_the_recommendation_is_the_fastest_within_the_floor(points, floor):
    best = recommend(points, floor)
    within = [p for p in points if p.accuracy >= floor - FLOAT_NOISE]
    if not within:
        assert best is None
        return
    assert best in within and best.p50_ms == min(p.p50_ms for p in within)
    ties = [p for p in within if p.p50_ms == best.p50_ms]
    assert best.accuracy == max(p.accuracy for p in ties)


@pytest.mark.parametrize("rate", ["0", "-1e-4", "nan"])
def test_a_bad_learning_rate_stops_before_any_trial(tmp_path, trained_tiny_dir, sentiment_eval, train_tsv, rate):
    from typer.testing import CliRunner

    from edgekit.cli import app

    out = tmp_path / "lr"
    args = ["optimize", "--model", str(trained_tiny_dir), "--data", str(sentiment_eval), "--train-data",
            str(train_tsv), "--out", str(out), "--learning-rate", rate]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "--learning-rate must be a positive number" in result.output
    assert not out.exists(), "nothing may be written before the settings are checked"


def test_pruning_can_be_limited_to_one_depth():
    from edgekit.optimize.space import parse_prune, students

    chosen = students([4, 3, 2], [parse_prune("3:ffn=0.5"), parse_prune("heads=0.5")])
    assert [c.name for c in chosen] == ["L4", "L4-heads0.5", "L3", "L3-ffn0.5", "L3-heads0.5", "L2", "L2-heads0.5"]
    with pytest.raises(RecipeError, match=r"depth\(s\) \[5\]"):
        students([4, 3], [parse_prune("5:ffn=0.5")])
