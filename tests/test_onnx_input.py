"""An ONNX file made elsewhere as the conversion source (Optimum's own exporter, not edgekit's),
its hostile forms, and task detection in `edgekit convert`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import TINY_LABELS, TINY_TEXTS, build_tiny_classifier
from typer.testing import CliRunner

from edgekit.cli import app
from edgekit.convert.onnx_source import OnnxSpec
from edgekit.convert.pipeline import convert
from edgekit.convert.recipe import build_recipe
from edgekit.errors import RecipeError, SourceError
from edgekit.runtime import EdgeModel

runner = CliRunner()


@pytest.fixture(scope="module")
def optimum_export(tmp_path_factory) -> Path:
    """A folder written by Optimum's exporter: model.onnx + config.json + tokenizer files, no PyTorch weights."""
    from optimum.exporters.onnx import main_export

    base = tmp_path_factory.mktemp("onnx-src")
    checkpoint = build_tiny_classifier(base / "tiny-bert", seed=3)
    out = base / "optimum-export"
    main_export(str(checkpoint), output=str(out), task="text-classification", do_validation=False)
    assert (out / "model.onnx").is_file() and not list(out.glob("*.safetensors"))
    return out


@pytest.fixture(scope="module")
def dev_tsv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("onnx-data") / "dev.tsv"
    path.write_text("text\tlabel\n" + "".join(f"{t}\t{label}\n" for t, label in TINY_TEXTS * 2), encoding="utf-8")
    return path


def _graph_only(export: Path, folder: Path) -> Path:
    """The bare .onnx file in a folder of its own (no config, no tokenizer)."""
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(export / "model.onnx", folder / "model.onnx"))


def _ort_logits(model_file: Path, tokenizer_dir: Path, texts: list[str]) -> np.ndarray:
    import onnxruntime as ort
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(str(tokenizer_dir))
    session = ort.InferenceSession(str(model_file), providers=["CPUExecutionProvider"])
    rows = []
    for text in texts:  # one at a time: no padding, as the runtime's batch-1 path
        encoded = tokenizer([text], return_tensors="np")
        feed = {i.name: encoded[i.name].astype(np.int64) for i in session.get_inputs()}
        rows.append(session.run(None, feed)[0][0])
    return np.stack(rows)


def test_an_optimum_export_folder_converts_end_to_end(optimum_export, dev_tsv, tmp_path):
    out = tmp_path / "bundle"
    recipe = build_recipe({"model": str(optimum_export), "out": str(out), "data": {"path": str(dev_tsv)},
                           "variants": ["onnx-fp32", "ort-int8-dynamic"], "bench": {"enabled": False}})  # fmt: skip
    result = convert(recipe)
    summary = result.summary
    assert summary is not None and summary.built == ["onnx-fp32", "ort-int8-dynamic"]
    assert summary.reference_accuracy is not None
    reference = EdgeModel.load(out / "onnx-fp32")
    manifest = reference.manifest
    assert manifest.labels == TINY_LABELS  # from config.json's id2label
    assert manifest.source["kind"] == "onnx" and manifest.source["name"] == optimum_export.name
    assert manifest.parity["reference"] == "reference is the given ONNX graph"
    assert manifest.parity["tokenizer_mismatches"] == 0 and manifest.parity["passed"]
    # The artifact's graph is the given file, byte for byte, and predicts what ORT predicts on it.
    assert (out / "onnx-fp32" / "model.onnx").read_bytes() == (optimum_export / "model.onnx").read_bytes()
    texts = [t for t, _ in TINY_TEXTS]
    expected = _ort_logits(optimum_export / "model.onnx", optimum_export, texts)
    np.testing.assert_allclose(reference.logits(texts), expected, atol=1e-5)
    int8 = next(v for v in summary.variants if v["name"] == "ort-int8-dynamic")
    assert int8["gate"] is not None and "passed" in int8["gate"]  # gated against the given graph
    assert EdgeModel.load(out / summary.locations["ort-int8-dynamic"]).predict(texts[0]).label in TINY_LABELS


def test_cli_converts_an_onnx_file_with_tokenizer_and_labels(optimum_export, dev_tsv, tmp_path):
    graph = _graph_only(optimum_export, tmp_path / "graph")
    out = tmp_path / "art"
    args = ["convert", "--model", str(graph), "--tokenizer", str(optimum_export), "--labels", ",".join(TINY_LABELS),
            "--data", str(dev_tsv), "--out", str(out)]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "reference is the given ONNX graph" in result.output and "accuracy" in result.output
    model = EdgeModel.load(out)
    assert model.manifest.metrics["accuracy"]["rows"] == len(TINY_TEXTS) * 2
    expected = _ort_logits(graph, optimum_export, ["this film was great fun"])
    np.testing.assert_allclose(model.logits(["this film was great fun"]), expected, atol=1e-5)
    # Same file, same recipe: reused by the graph's sha256.
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "Reused" in again.output


def _rewrite(source: Path, target: Path, edit) -> Path:
    model = onnx.load(str(source))
    edit(model)
    target.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(target))
    return target


def _fix_shapes(model) -> None:
    for value in model.graph.input:
        for dim, size in zip(value.type.tensor_type.shape.dim, (1, 16), strict=True):
            dim.Clear()
            dim.dim_value = size


def _two_outputs(model) -> None:
    extra = onnx.ValueInfoProto()
    extra.CopyFrom(model.graph.output[0])
    extra.name = model.graph.node[0].output[0]
    model.graph.output.append(extra)


def _outside_data(model, location: str = "../../outside.bin") -> None:
    tensor = max(model.graph.initializer, key=lambda t: len(t.raw_data))
    tensor.ClearField("raw_data")
    tensor.data_location = onnx.TensorProto.EXTERNAL
    tensor.external_data.add(key="location", value=location)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("not-onnx", "not an ONNX model"),
        ("static", "static shapes"),
        ("two-outputs", "exactly one"),
        ("outside-data", "not a file inside its own folder"),
        ("linked-data", "not a file inside its own folder"),
        ("missing-file", "does not exist"),
        ("label-count", "3 logits per row but 2 labels"),
        ("no-tokenizer", "No tokenizer"),
        ("no-labels", "No labels"),
    ],
)
def test_hostile_onnx_inputs_fail_clearly_and_write_nothing(case, expected, optimum_export, dev_tsv, tmp_path):
    folder = tmp_path / "in"
    graph = folder / "model.onnx"
    tokenizer, labels = str(optimum_export), ",".join(TINY_LABELS)
    if case == "not-onnx":
        folder.mkdir()
        graph.write_bytes(b"PK\x03\x04 this is a zip, not a protobuf" * 10)
    elif case == "static":
        _rewrite(optimum_export / "model.onnx", graph, _fix_shapes)
    elif case == "two-outputs":
        _rewrite(optimum_export / "model.onnx", graph, _two_outputs)
    elif case == "outside-data":
        _rewrite(optimum_export / "model.onnx", graph, _outside_data)
        (tmp_path / "outside.bin").write_bytes(b"\0" * 64)
    elif case == "linked-data":  # a plain name, but a symbolic link out of the folder
        _rewrite(optimum_export / "model.onnx", graph, lambda m: _outside_data(m, "weights.bin"))
        (tmp_path / "outside.bin").write_bytes(b"\0" * 64)
        (folder / "weights.bin").symlink_to(tmp_path / "outside.bin")
    elif case == "missing-file":
        folder.mkdir()
    else:
        _graph_only(optimum_export, folder)
    if case == "no-labels":  # the tokenizer beside the graph, but no config.json to read id2label from
        for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
            shutil.copy(optimum_export / name, folder / name)
    if case == "label-count":
        labels = "neg,pos"
    args = ["convert", "--model", str(graph), "--data", str(dev_tsv), "--out", str(tmp_path / "out")]
    if case not in ("no-tokenizer", "no-labels"):
        args += ["--tokenizer", tokenizer]
    if case != "no-labels":
        args += ["--labels", labels]
    result = runner.invoke(app, args)
    assert result.exit_code != 0
    assert expected in " ".join(result.output.split()), result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.tmp-*"))


def test_external_data_beside_the_graph_is_copied_listed_and_loaded(optimum_export, tmp_path):
    model = onnx.load(str(optimum_export / "model.onnx"))
    folder = tmp_path / "ext"
    folder.mkdir()
    onnx.save(model, str(folder / "model.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
              location="model.onnx.data", size_threshold=0)  # fmt: skip
    out = tmp_path / "art"
    spec = {"onnx": str(folder / "model.onnx"), "tokenizer": str(optimum_export), "labels": TINY_LABELS}
    result = convert(build_recipe({"model": spec, "out": str(out)}))
    assert "model.onnx.data" in result.manifest.files
    assert result.manifest.source["weights_files"] == ["model.onnx", "model.onnx.data"]
    texts = ["this film was great fun", "bad"]
    expected = _ort_logits(optimum_export / "model.onnx", optimum_export, texts)
    np.testing.assert_allclose(EdgeModel.load(out).logits(texts), expected, atol=1e-5)


def test_variants_and_stages_that_need_pytorch_are_refused_up_front(optimum_export, dev_tsv, tmp_path):
    fields = {"model": str(optimum_export), "out": str(tmp_path / "o"), "data": {"path": str(dev_tsv)}}
    with pytest.raises(RecipeError, match="exported from .* the PyTorch module"):
        convert(build_recipe({**fields, "variants": ["onnx-fp32", "executorch-fp32", "coreml"]}))
    with pytest.raises(RecipeError, match=r"fine-tuned on: `qat`.*\['ort-int8-static'\]|\['ort-int8-static'\].*`qat`"):
        convert(build_recipe({**fields, "variants": ["onnx-fp32", {"name": "ort-int8-static", "qat": {}}]}))
    with pytest.raises(RecipeError, match="Distillation trains a student from the PyTorch teacher"):
        convert(build_recipe({**fields, "distill": {"data": {"path": str(dev_tsv)}}}))
    assert not (tmp_path / "o").exists()


def test_recipe_form_resolves_paths_against_the_recipe(optimum_export, tmp_path):
    from edgekit.convert.recipe import load_recipe, recipe_inputs

    _graph_only(optimum_export, tmp_path / "g")
    (tmp_path / "r.yaml").write_text(
        f"model: {{onnx: g/model.onnx, tokenizer: {optimum_export}, labels: [a, b, c]}}\nout: out\n"
    )
    recipe = load_recipe(tmp_path / "r.yaml")
    assert isinstance(recipe.model, OnnxSpec) and recipe.model.onnx == tmp_path / "g" / "model.onnx"
    assert Path(optimum_export) in recipe_inputs(recipe, tmp_path / "out")  # out may not lie in the tokenizer


def test_renamed_inputs_are_mapped_to_the_runtime_names(optimum_export, tmp_path):
    from edgekit.convert.onnx_source import load_onnx_source, write_reference

    def rename(model) -> None:  # Google BERT's names, as tf2onnx-style exports have them
        names = {"attention_mask": "input_mask", "token_type_ids": "segment_ids"}
        for value in model.graph.input:
            value.name = names.get(value.name, value.name)
        for node in model.graph.node:
            node.input[:] = [names.get(n, n) for n in node.input]

    graph = _rewrite(optimum_export / "model.onnx", tmp_path / "g" / "model.onnx", rename)
    source = load_onnx_source(OnnxSpec(onnx=graph, tokenizer=optimum_export, labels=TINY_LABELS))
    assert source.info["renamed_inputs"] == {"input_mask": "attention_mask", "segment_ids": "token_type_ids"}
    (tmp_path / "ref").mkdir()
    described = write_reference(source, tmp_path / "ref")
    assert sorted(described.input_names) == ["attention_mask", "input_ids", "token_type_ids"]
    onnx.checker.check_model(str(tmp_path / "ref" / "model.onnx"))


@pytest.mark.parametrize(
    ("architectures", "expected"),
    [
        (["BertForSequenceClassification"], "Task: text-classification"),
        (["ViTForImageClassification"], "Task: image-classification"),
        (["GPT2LMHeadModel"], "causal language model"),
        (["BertForTokenClassification"], "token classifier"),
    ],
)
def test_convert_detects_the_task_from_config_json(architectures, expected, tmp_path):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    config = {"architectures": architectures, "id2label": {"0": "a", "1": "b"}, "model_type": "bert"}
    (folder / "config.json").write_text(json.dumps(config))
    # No weights: detection happens before loading, so the message is about the task (or the load fails after it).
    result = runner.invoke(app, ["convert", "--model", str(folder), "--out", str(tmp_path / "out")])
    output = " ".join(result.output.split())
    assert expected in output, output
    assert result.exit_code != 0  # nothing loadable here; what matters is the task line or the reason
    assert not (tmp_path / "out").exists()


def test_detection_names_the_architecture_and_labels():
    from edgekit.tasks.detect import explain_task

    task, reason = explain_task({"architectures": ["BertForSequenceClassification"], "id2label": {"0": "n", "1": "p"}})
    assert task == "text-classification" and "BertForSequenceClassification" in reason and "2 labels" in reason
    with pytest.raises(SourceError, match="causal language model"):
        explain_task({"architectures": ["LlamaForCausalLM"]})


def _inspect_app():
    """`edgekit inspect` on an app of its own (the lead registers it in cli/main.py)."""
    import typer

    from edgekit.cli.inspect import inspect

    local = typer.Typer()
    local.command()(inspect)
    local.command("noop")(lambda: None)  # two commands: typer then expects the command name, as in edgekit
    return local


def test_inspect_reports_the_graph_checks_and_the_task(optimum_export, tmp_path):
    result = runner.invoke(_inspect_app(), ["inspect", str(optimum_export)])
    assert result.exit_code == 0, result.output
    assert "labels: negative, neutral, positive" in result.output and "opset: 18" in result.output
    assert "checks: passed" in result.output
    folder = tmp_path / "lm"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}))
    refused = runner.invoke(_inspect_app(), ["inspect", str(folder)])
    assert refused.exit_code != 0 and "causal language model" in " ".join(refused.output.split())
