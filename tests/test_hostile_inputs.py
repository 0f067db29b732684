"""Hostile and broken inputs a user gives edgekit (checkpoints, data files, recipes, output places).

Each case was a traceback or a misleading message (issue 10); each must now be one clear
``EdgekitError`` that says what was wrong and what to do. The property tests feed the data
readers random and mutated bytes: a dataset or a ``DataError``, never another exception.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgekit.convert.recipe import load_recipe
from edgekit.data import read_text_dataset
from edgekit.errors import DataError, RecipeError, SourceError

# --- checkpoints ---------------------------------------------------------------------------------


@pytest.fixture
def checkpoint(tmp_path, tiny_model_dir) -> Path:
    """A private copy of the tiny BERT checkpoint, to damage."""
    return Path(shutil.copytree(tiny_model_dir, tmp_path / "checkpoint"))


def _load(folder: Path):
    from edgekit.convert.sources import load_text_classifier

    return load_text_classifier(str(folder))


def test_truncated_safetensors_is_one_clear_error(checkpoint):
    weights = checkpoint / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(SourceError, match="truncated or corrupt"):
        _load(checkpoint)


def test_corrupt_safetensors_header_is_one_clear_error(checkpoint):
    weights = checkpoint / "model.safetensors"
    weights.write_bytes(b"\xff" * 8 + weights.read_bytes()[8:])
    with pytest.raises(SourceError, match="truncated or corrupt"):
        _load(checkpoint)


def test_checkpoint_without_tokenizer_files_says_so(checkpoint):
    for name in ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        (checkpoint / name).unlink(missing_ok=True)
    with pytest.raises(SourceError, match="no tokenizer files.*save_pretrained"):
        _load(checkpoint)


class _RunsCode:
    def __reduce__(self):
        return (print, ("this pickle runs code",))


def test_unsafe_pickle_is_refused_for_safety_not_blamed_on_tensorflow(checkpoint):
    import torch

    (checkpoint / "model.safetensors").unlink()
    torch.save({"weights": _RunsCode()}, checkpoint / "pytorch_model.bin")
    with pytest.raises(SourceError) as caught:
        _load(checkpoint)
    message = str(caught.value)
    assert "pickle" in message and "safety" in message and "safetensors" in message
    assert "from_tf" not in message


def test_existing_folder_that_is_not_a_checkpoint_is_not_called_missing(tmp_path):
    folder = tmp_path / "not-a-model"
    folder.mkdir()
    (folder / "readme.txt").write_text("hello")
    with pytest.raises(SourceError) as caught:
        _load(folder)
    assert "does not exist" not in str(caught.value) and "no config.json" in str(caught.value)
    with pytest.raises(DataError, match="is a folder"):
        read_text_dataset(folder)


def test_manifest_names_the_source_and_its_weights_not_a_local_path(tiny_artifact, tiny_model_dir):
    text = (tiny_artifact / "manifest.json").read_text()
    source = json.loads(text)["source"]
    assert source["name"] == tiny_model_dir.name and len(source["weights_sha256"]) == 64
    for private in (str(tiny_model_dir), str(tiny_model_dir.parent), str(Path.home())):
        assert private not in text, f"{private} leaked into the manifest"
    assert "path" not in source


def test_local_path_is_recorded_only_when_asked(tiny_model_dir):
    from edgekit.convert.sources import public_name, resolve_reference

    assert "path" not in resolve_reference(str(tiny_model_dir))[1]
    assert resolve_reference(str(tiny_model_dir), record_path=True)[1]["path"] == str(tiny_model_dir.resolve())
    assert public_name(str(tiny_model_dir)) == tiny_model_dir.name
    assert public_name("org/model") == "org/model"


# --- data files ----------------------------------------------------------------------------------


def test_csv_field_longer_than_the_csv_module_default_is_read(tmp_path):
    long_text = "word " * 40_000  # 200,000 characters: over csv's default limit of 131,072
    for suffix, sep in ((".csv", ","), (".tsv", "\t")):
        path = tmp_path / f"long{suffix}"
        path.write_text(f"text{sep}label\n{long_text}{sep}a\nshort{sep}b\n", encoding="utf-8")
        assert len(read_text_dataset(path).texts[0]) == len(long_text.strip())


def test_field_over_edgekits_limit_is_reported_with_its_line(tmp_path, monkeypatch):
    import edgekit.data as data

    monkeypatch.setattr(data, "FIELD_LIMIT", 1000)
    path = tmp_path / "huge.csv"
    path.write_text("text,label\nok,a\n" + "x" * 5000 + ",b\n", encoding="utf-8")
    try:
        with pytest.raises(DataError, match=r"line 3: a field is longer than 1,000 characters"):
            read_text_dataset(path)
    finally:
        csv.field_size_limit(data.FIELD_LIMIT)
    csv.field_size_limit(131072)  # leave the process as Python starts it


def test_json_array_says_one_object_per_line_is_expected(tmp_path):
    path = tmp_path / "data.json"
    path.write_text(json.dumps([{"text": "a", "label": "x"}, {"text": "b", "label": "y"}]), encoding="utf-8")
    with pytest.raises(DataError, match="one object per line"):
        read_text_dataset(path)
    path.write_text(json.dumps([{"text": "a", "label": "x"}], indent=2), encoding="utf-8")  # pretty-printed
    with pytest.raises(DataError, match="one object per line"):
        read_text_dataset(path)


def test_unterminated_quote_names_the_line_where_it_opened(tmp_path):
    path = tmp_path / "data.csv"
    rows = ["text,label", "fine,a", '"this quote never closes,b'] + [f"row {i},a" for i in range(10)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"line 3: a quoted field opens on this line and is never closed"):
        read_text_dataset(path)


def test_quoted_multiline_text_is_still_fine(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text('text,label\n"two\nlines",a\nplain,b\n', encoding="utf-8")
    assert read_text_dataset(path).texts == ["two\nlines", "plain"]


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl"])
def test_utf8_byte_order_mark_is_not_part_of_the_header(tmp_path, suffix):
    path = tmp_path / f"bom{suffix}"
    sep = "," if suffix == ".csv" else "\t"
    body = '{"text": "hello", "label": "a"}\n' if suffix == ".jsonl" else f"text{sep}label\nhello{sep}a\n"
    path.write_bytes(b"\xef\xbb\xbf" + body.encode())
    assert read_text_dataset(path).texts == ["hello"]


def test_invalid_utf8_in_data_names_the_line(tmp_path):
    path = tmp_path / "data.tsv"
    path.write_bytes(b"text\tlabel\nfine\ta\ncaf\xe9\tb\n")
    with pytest.raises(DataError, match=r"line 3: not UTF-8"):
        read_text_dataset(path)


# --- recipes -------------------------------------------------------------------------------------


def test_recipe_with_a_non_utf8_byte_is_one_clear_error(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_bytes(b"model: ./my-model\nout: caf\xe9\n")
    with pytest.raises(RecipeError, match=r"line 2: not UTF-8"):
        load_recipe(path)


def test_recipe_with_a_duplicate_key_is_refused_with_file_and_line(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text("model: ./a\nvariants: [onnx-fp32]\nout: ./o\nvariants: [ort-int8-dynamic]\n")
    with pytest.raises(RecipeError) as caught:
        load_recipe(path)
    message = str(caught.value)
    assert "'variants' is given twice (first on line 2)" in message and str(path) in message and "line 4" in message


def test_yaml_merge_keys_may_still_be_overridden(tmp_path):
    from edgekit.yaml_files import load_yaml

    assert load_yaml("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  x: 3\n")["other"] == {"x": 3, "y": 2}


# --- where outputs go ----------------------------------------------------------------------------


def test_out_on_a_read_only_location_fails_before_loading(tmp_path, tiny_model_dir, monkeypatch):
    from edgekit.convert.pipeline import convert
    from edgekit.convert.recipe import build_recipe
    from edgekit.outputs import OutputError

    if os.geteuid() == 0:
        try:
            Path("/sys/.edgekit-test-probe").mkdir()
        except OSError:
            read_only = Path("/sys")
        else:
            Path("/sys/.edgekit-test-probe").rmdir()
            pytest.skip("running as root with a writable /sys: no read-only location to test against")
    else:
        read_only = tmp_path / "ro"
        read_only.mkdir()
        read_only.chmod(0o555)

    def must_not_load(*args, **kwargs):
        raise AssertionError("loaded the model before checking --out")

    monkeypatch.setattr("edgekit.convert.sources.load_text_classifier", must_not_load)
    with pytest.raises(OutputError, match="read-only or not writable"):
        convert(build_recipe({"model": str(tiny_model_dir), "out": str(read_only / "artifact")}))


# --- property-based: the data readers never raise anything but DataError -----------------------

_SUFFIXES = [".tsv", ".csv", ".jsonl", ".json"]
_NASTY = st.sampled_from(["\x00", '"', "'", ",", "\t", "\n", "\r", "\ufeff", "\u2028", "\\", "{", "[", "é"])
_FIELD = st.text(alphabet=st.one_of(st.characters(blacklist_categories=("Cs",)), _NASTY), max_size=40)


def _read_or_data_error(path: Path) -> None:
    try:
        dataset = read_text_dataset(path)
    except DataError:
        return
    assert len(dataset.texts) > 0 and all(isinstance(t, str) and t for t in dataset.texts)
    assert dataset.labels is None or len(dataset.labels) == len(dataset.texts)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=600), suffix=st.sampled_from(_SUFFIXES))
def test_random_bytes_give_a_dataset_or_a_data_error(tmp_path, raw, suffix):
    path = tmp_path / f"random{suffix}"
    path.write_bytes(raw)
    _read_or_data_error(path)


def _well_formed(suffix: str, rows: list[tuple[str, str]]) -> bytes:
    if suffix in (".jsonl", ".json"):
        return "".join(json.dumps({"text": t, "label": label}) + "\n" for t, label in rows).encode()
    sep = "," if suffix == ".csv" else "\t"
    return ("text" + sep + "label\n" + "".join(f"{t}{sep}{label}\n" for t, label in rows)).encode()


@st.composite
def _mutated_file(draw) -> tuple[str, bytes]:
    suffix = draw(st.sampled_from(_SUFFIXES))
    rows = draw(st.lists(st.tuples(_FIELD, _FIELD), min_size=0, max_size=6))
    data = bytearray(_well_formed(suffix, rows))
    if draw(st.booleans()):  # one huge field, over csv's default limit
        data[len(data) // 2 : len(data) // 2] = b"y" * draw(st.sampled_from([1000, 140_000]))
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["insert", "delete", "truncate"]))
        if action == "insert":
            data[at:at] = draw(st.sampled_from([b"\x00", b'"', b"\xff", b"\xef\xbb\xbf", b"\xc3", b"\n", b"[", b"\t"]))
        elif action == "delete" and at < len(data):
            del data[at]
        elif action == "truncate":
            del data[at:]
    if draw(st.booleans()):
        data[0:0] = b"\xef\xbb\xbf"
    return suffix, bytes(data)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=_mutated_file())
def test_mutated_data_files_give_a_dataset_or_a_data_error(tmp_path, case):
    suffix, raw = case
    path = tmp_path / f"mutated{suffix}"
    path.write_bytes(raw)
    _read_or_data_error(path)


def test_deeply_nested_json_is_a_data_error(tmp_path):
    path = tmp_path / "deep.jsonl"
    path.write_text("[" * 100_000 + "\n", encoding="utf-8")
    with pytest.raises(DataError):
        read_text_dataset(path)
    path.write_text('{"text": "a", "label": ' + "9" * 5000 + "}\n", encoding="utf-8")  # over int's str limit
    with pytest.raises(DataError):
        read_text_dataset(path)
