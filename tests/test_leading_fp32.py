"""`leading_fp32`: the fewest leading convolutions kept FP32 that reach a logit SQNR target on calibration data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx_graphs import write_outlier_cnn

from edgekit.errors import ExportError
from edgekit.quantize.prefix_search import LeadingFp32, ladder, search_leading_prefix

SIDE = 8


def test_the_ladder_doubles_and_ends_one_short_of_the_whole_network():
    assert ladder(1) == [0]
    assert ladder(2) == [0, 1]
    assert ladder(9) == [0, 1, 2, 4, 8]
    assert ladder(12) == [0, 1, 2, 4, 8, 11]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(0, 60, allow_nan=False), min_size=1, max_size=70).map(sorted),
    st.floats(0, 60, allow_nan=False),
)
def test_on_a_rising_curve_the_search_finds_the_smallest_passing_prefix(curve, target):
    calls: list[int] = []

    def sqnr(k: int) -> float:
        calls.append(k)
        return curve[k]

    passing = [k for k, value in enumerate(curve) if value >= target]
    convolutions = len(curve)  # prefixes 0 .. n-1: the longest keeps one convolution INT8
    if not passing:
        with pytest.raises(ExportError, match="no prefix reaches"):
            search_leading_prefix(LeadingFp32(target), convolutions, [0], sqnr)
        return
    found = search_leading_prefix(LeadingFp32(target), convolutions, [0], sqnr)
    assert found.chosen == passing[0]
    assert len(calls) == len(set(calls)) <= 2 * len(ladder(convolutions))  # each prefix built once, log-many
    assert found.record()["tried"][str(found.chosen)] == round(curve[found.chosen], 3)


def test_a_graph_without_convolutions_is_refused():
    with pytest.raises(ExportError, match="has none"):
        search_leading_prefix(LeadingFp32(20), 0, [0], lambda k: 0.0)


@pytest.fixture(scope="module")
def outlier_cnn(tmp_path_factory) -> Path:
    return write_outlier_cnn(tmp_path_factory.mktemp("outlier-cnn") / "model.onnx", SIDE)


def _feeds(count: int = 12) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    return [{"pixel_values": rng.uniform(0, 1, (1, 3, SIDE, SIDE)).astype(np.float32)} for _ in range(count)]


def _quantize(source: Path, target: Path, leading: LeadingFp32, feeds: list | None = None) -> dict:
    from edgekit.quantize.ort import StaticTuning, quantize_static_int8
    from edgekit.tasks.image_classification import STATIC_OP_TYPES

    feeds = _feeds() if feeds is None else feeds  # per-tensor weights: conv_b's outlier ruins its INT8
    return quantize_static_int8(source, target, feeds, "minmax", list(STATIC_OP_TYPES), False, False, False,
                                tuning=StaticTuning(leading_fp32=leading))  # fmt: skip


def test_the_prefix_through_the_damaging_conv_is_chosen_and_runs_fp32(tmp_path, outlier_cnn, monkeypatch):
    import shutil

    import onnx

    from edgekit.quantize.sensitivity import model_logits, sqnr_db

    probe = _quantize(outlier_cnn, tmp_path / "probe.onnx", LeadingFp32(0.001))
    assert probe["exclude_leading_convs"] == 0  # any INT8 graph passes a near-zero target
    all_int8 = probe["result_sqnr_db"]
    on_disk = []
    copy = shutil.copyfile
    monkeypatch.setattr(shutil, "copyfile", lambda src, dst: (on_disk.append(sorted(
        p.name for p in Path(src).parent.glob("prefix-*.onnx"))), copy(src, dst))[1])  # fmt: skip
    record = _quantize(outlier_cnn, tmp_path / "model.onnx", LeadingFp32(all_int8 + 10, samples=6))
    assert on_disk[-1] == ["prefix-2.onnx"]  # only the graph that ships is kept, not one per try
    assert record["exclude_leading_convs"] == 2  # conv_a and the outlier conv_b, not conv_c
    assert record["tried"]["0"] < all_int8 + 10 <= record["result_sqnr_db"]
    assert record["tried"]["1"] < all_int8 + 10  # conv_a alone does not fix conv_b's rounding
    assert record["convolutions"] == 3 and record["samples"] == 6 and len(record["scored_inputs"]) == 6
    graph = onnx.load(str(tmp_path / "model.onnx")).graph
    floats = {i.name for i in graph.initializer if i.data_type == onnx.TensorProto.FLOAT}
    assert [n.input[1] in floats for n in graph.node if n.op_type == "Conv"] == [True, True, False]
    # The shipped graph is the one that was scored: its SQNR on the same inputs is the recorded one.
    scored = [_feeds()[i] for i in record["scored_inputs"]]
    measured = sqnr_db(model_logits(outlier_cnn, scored), model_logits(tmp_path / "model.onnx", scored))
    assert measured == pytest.approx(record["result_sqnr_db"], abs=0.01)


def test_an_unreachable_target_and_an_empty_calibration_set_are_refused_before_any_file(tmp_path, outlier_cnn):
    target = tmp_path / "model.onnx"
    with pytest.raises(ExportError, match="no prefix reaches 99.0 dB"):
        _quantize(outlier_cnn, target, LeadingFp32(99.0))
    with pytest.raises(ExportError, match="leading_fp32 needs calibration inputs"):
        _quantize(outlier_cnn, target, LeadingFp32(20.0), feeds=[])
    assert not target.exists()


def test_the_recipe_refuses_two_ways_of_choosing_the_fp32_layers():
    from pydantic import ValidationError

    from edgekit.convert.variants.onnx import StaticOptions
    from edgekit.quantize.ort import StaticTuning
    from edgekit.quantize.sensitivity import AutoFp32

    assert StaticOptions(leading_fp32={"target_sqnr_db": 25}).leading_fp32.samples == 32
    with pytest.raises(ValidationError, match="exclude_leading_convs is given too"):
        StaticOptions(leading_fp32={"target_sqnr_db": 25}, exclude_leading_convs=6)
    with pytest.raises(ValidationError, match="auto_fp32 is given too"):
        StaticOptions(leading_fp32={"target_sqnr_db": 25}, auto_fp32={"max_nodes": 4})
    with pytest.raises(ValidationError):
        StaticOptions(leading_fp32={"target_sqnr_db": 0})
    with pytest.raises(ValidationError):
        StaticOptions(leading_fp32={"target_sqnr_db": 25, "unknown": 1})
    with pytest.raises(ExportError, match="Keep one"):
        StaticTuning(auto_fp32=AutoFp32(max_nodes=2), leading_fp32=LeadingFp32(25))


def test_convert_records_the_search_in_the_manifest_and_ships_the_chosen_graph(tmp_path):
    import json

    from image_helpers import tiny_cnn_recipe, two_class_images

    from edgekit.convert.pipeline import convert
    from edgekit.convert.recipe import build_recipe

    images = two_class_images(tmp_path / "data")
    variants = ["onnx-fp32", {"name": "ort-int8-static", "leading_fp32": {"target_sqnr_db": 0.001, "samples": 3}}]
    summary = convert(build_recipe(tiny_cnn_recipe(tmp_path / "out", images, variants))).summary
    manifest = json.loads((tmp_path / "out" / summary.locations["ort-int8-static"] / "manifest.json").read_text())
    found = manifest["metrics"]["build"]["leading_fp32"]
    assert found["exclude_leading_convs"] == 0 and found["samples"] == 3  # a near-zero target: all INT8 passes
    assert found["tried"] == {"0": found["result_sqnr_db"]}
    assert summary.variant("ort-int8-static")["gate"]["rows"] > 0  # gated against the reference like any variant
    assert not list((tmp_path / "out").rglob("prefix-*.onnx"))  # the search's graphs are scratch, never shipped
