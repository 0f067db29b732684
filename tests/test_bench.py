"""The benchmark harness: statistics, metrics, the worker in its own process, the results file."""

import json

import numpy as np
import pytest

from edgekit.bench.harness import BenchError, BenchSettings, Variant, latency_inputs, run_benchmark
from edgekit.bench.report import markdown
from edgekit.bench.results import SCHEMA, new_document, read_results, write_results
from edgekit.bench.stats import LatencyStats
from edgekit.data import TextDataset, read_text_dataset
from edgekit.metrics import accuracy, macro_f1


def test_latency_stats_on_known_samples():
    samples = [float(i) for i in range(1, 101)]  # 1..100 ms
    stats = LatencyStats.from_samples(samples)
    assert stats.median == pytest.approx(50.5)
    assert stats.p90 == pytest.approx(np.percentile(samples, 90))
    assert stats.p99 == pytest.approx(99.01)
    assert (stats.min, stats.max, stats.count) == (1.0, 100.0, 100)
    assert stats.mean == pytest.approx(50.5)
    assert stats.std == pytest.approx(np.std(samples, ddof=1))
    with pytest.raises(ValueError):
        LatencyStats.from_samples([])


def test_accuracy_and_macro_f1():
    gold = [0, 0, 1, 1, 2, 2]
    pred = [0, 1, 1, 1, 2, 0]
    assert accuracy(pred, gold) == pytest.approx(4 / 6)
    # per class F1: c0 p=1/2 r=1/2 -> .5; c1 p=2/3 r=1 -> .8; c2 p=1 r=1/2 -> 2/3
    assert macro_f1(pred, gold) == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert macro_f1(gold, gold) == 1.0


def test_latency_inputs_vary_and_repeat_short_data():
    data = TextDataset(["a", "bb b", "ccc c c"], None, "mem")
    inputs = latency_inputs(data, 7, seed=0)
    assert len(inputs) == 7 and set(inputs) == {"a", "bb b", "ccc c c"}


def test_benchmark_artifact_against_pytorch(tiny_artifact, tiny_model_dir, tiny_data, tmp_path):
    data = read_text_dataset(tiny_data)
    variants = [Variant("pytorch", "pytorch", tiny_model_dir), Variant("onnx", "artifact", tiny_artifact)]
    summaries = run_benchmark(variants, data, BenchSettings(threads=1, runs=12, warmup=2, rounds=2))
    torch_summary, onnx_summary = summaries
    for summary in summaries:
        assert summary["latency_ms"]["count"] == 24, "runs x rounds timed samples"
        assert len(summary["round_medians_ms"]) == 2
        assert 0 < summary["latency_ms"]["min"] <= summary["latency_ms"]["median"] <= summary["latency_ms"]["max"]
        assert summary["tokenize_ms"]["median"] < summary["latency_ms"]["median"]
        assert summary["eval_rows"] == len(data)
        assert 0.0 <= summary["accuracy"] <= 1.0
        assert summary["peak_rss_mb"] > summary["bare_interpreter_rss_mb"] > 5
        assert summary["peak_rss_increment_mb"] == summary["peak_rss_mb"] - summary["bare_interpreter_rss_mb"]
    # Same weights, so the ONNX variant must agree with PyTorch on every row.
    assert onnx_summary["agreement_with_reference"] == 1.0
    assert onnx_summary["accuracy"] == torch_summary["accuracy"]
    assert onnx_summary["engine"] == "onnxruntime" and torch_summary["engine"] == "pytorch"
    # The ONNX worker must not carry torch's memory: VmHWM is per process.
    assert onnx_summary["peak_rss_mb"] < torch_summary["peak_rss_mb"]

    document = new_document({"name": "host", "mode": "measured-on-device"}, {"threads": 1, "runs": 12,
                            "warmup": 2, "rounds": 2, "data": str(tiny_data)}, summaries)  # fmt: skip
    path = tmp_path / "results.json"
    write_results(document, path)
    again = read_results(path)
    assert again == json.loads(json.dumps(document))
    assert again["schema"] == SCHEMA and again["environment"]["libraries"]["onnxruntime"]
    text = markdown(again)
    assert "| onnx | onnxruntime | fp32 |" in text and "round medians" in text


def test_broken_artifact_reports_the_cause(tmp_path):
    data = TextDataset(["hello"], None, "mem")
    with pytest.raises(BenchError, match="not an edgekit artifact"):
        (tmp_path / "empty").mkdir()
        run_benchmark([Variant("x", "artifact", tmp_path / "empty")], data, BenchSettings(threads=1, runs=10))


def test_results_file_schema_is_checked(tmp_path):
    from edgekit.errors import EdgekitError

    (tmp_path / "r.json").write_text('{"schema": "something-else"}')
    with pytest.raises(EdgekitError, match="not an edgekit results file"):
        read_results(tmp_path / "r.json")
