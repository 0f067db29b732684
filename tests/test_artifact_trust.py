"""Hostile artifacts: nothing outside the folder is opened, nothing unhashed is trusted, no traceback.

Each ``test_*_is_refused`` below loaded (or opened a file outside the folder) before the checks
of ``edgekit.artifact`` existed; the property-based tests feed the reader mutated manifests and
summaries and record every file it opens.
"""

from __future__ import annotations

import builtins
import copy
import hashlib
import io
import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgekit.artifact import (
    MANIFEST_DIGESTS,
    MANIFEST_NAME,
    SUMMARY_NAME,
    Manifest,
    artifact_file,
    expand_bundle,
    load_artifact,
    manifest_digests,
    model_file_path,
    onnx_external_data,
    read_manifest,
    validate_manifest,
)
from edgekit.errors import ArtifactError
from edgekit.runtime.model import EdgeModel

# ---------------------------------------------------------------------------------------------
# helpers


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _copy(artifact: Path, destination: Path) -> Path:
    return Path(shutil.copytree(artifact, destination))


def _edit(artifact: Path, change) -> str:
    """Apply ``change`` to the manifest dict, write it back, return the new manifest's sha256 (a pin)."""
    path = artifact / MANIFEST_NAME
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=2))
    return _sha(path)


@pytest.fixture()
def art(tiny_artifact, tmp_path) -> Path:
    """A private copy of the tiny artifact at tmp/work/art, with tmp/outside/ beside it."""
    copy_ = _copy(tiny_artifact, tmp_path / "work" / "art")
    outside = tmp_path / "outside"
    outside.mkdir()
    for name in ("model.onnx", "tokenizer.json"):
        shutil.copy(copy_ / name, outside / name)
    return copy_


def _bundle(tiny_artifact: Path, root: Path, digests: bool = True) -> Path:
    """A two-variant bundle (both copies of the tiny artifact), as `edgekit convert` lays one out."""
    root.mkdir(parents=True)
    for name in ("onnx-fp32", "onnx-int8"):
        _copy(tiny_artifact, root / name)
    locations = {"onnx-fp32": "onnx-fp32", "onnx-int8": "onnx-int8"}
    summary: dict[str, Any] = {
        "recommended": "onnx-int8",
        "built": list(locations),
        "locations": locations,
        "variants": [{"name": name, "passed": True} for name in locations],
    }
    if digests:
        summary[MANIFEST_DIGESTS] = manifest_digests(root, locations)
    (root / SUMMARY_NAME).write_text(json.dumps(summary, indent=2))
    return root


def _rewrite_summary(bundle: Path, change) -> None:
    data = json.loads((bundle / SUMMARY_NAME).read_text())
    change(data)
    (bundle / SUMMARY_NAME).write_text(json.dumps(data))


# ---------------------------------------------------------------------------------------------
# One test per bypass class (issue 10, item 2). Each loaded, or opened an outside file, before.


def test_unlisted_model_file_outside_the_folder_is_refused_even_when_pinned(art):
    """The reproduced attack: a pinned manifest whose model_file leaves the folder, unlisted."""
    pin = _edit(art, lambda m: m.update(model_file="../../outside/model.onnx"))
    with pytest.raises(ArtifactError, match="model_file.*'..' component"):
        EdgeModel.load(art, manifest_sha256=pin)


def test_absolute_model_file_is_refused_even_when_listed_and_hashed(art):
    outside = art.parents[1] / "outside" / "model.onnx"

    def change(m):
        m["model_file"] = str(outside)
        m["files"][str(outside)] = _sha(outside)

    pin = _edit(art, change)
    with pytest.raises(ArtifactError, match="is absolute"):
        EdgeModel.load(art, manifest_sha256=pin)


def test_symlinked_model_file_is_refused(art):
    """Same bytes, so the hash matches: only the link check stops a file that can change later."""
    (art / "model.onnx").unlink()
    (art / "model.onnx").symlink_to(art.parents[1] / "outside" / "model.onnx")
    with pytest.raises(ArtifactError, match="symbolic link"):
        EdgeModel.load(art, manifest_sha256=_sha(art / MANIFEST_NAME))


def test_symlinked_tokenizer_is_refused(art):
    (art / "tokenizer.json").unlink()
    (art / "tokenizer.json").symlink_to(art.parents[1] / "outside" / "tokenizer.json")
    with pytest.raises(ArtifactError, match="symbolic link"):
        EdgeModel.load(art)


def test_symlinked_folder_inside_the_artifact_is_refused(art):
    (art / "sub").symlink_to(art.parents[1] / "outside", target_is_directory=True)

    def change(m):
        m["files"]["sub/tokenizer.json"] = m["files"]["tokenizer.json"]
        m["tokenizer"]["file"] = "sub/tokenizer.json"

    _edit(art, change)
    with pytest.raises(ArtifactError, match="symbolic link"):
        EdgeModel.load(art)


def test_unlisted_tokenizer_is_refused(art):
    shutil.copy(art / "tokenizer.json", art / "other-tokenizer.json")  # inside, but covered by no hash
    pin = _edit(art, lambda m: m["tokenizer"].update(file="other-tokenizer.json"))
    with pytest.raises(ArtifactError, match="does not list it in `files`"):
        EdgeModel.load(art, manifest_sha256=pin)


def test_files_key_leaving_the_folder_is_refused(art):
    outside = art.parents[1] / "outside" / "tokenizer.json"

    def change(m):
        m["files"]["../../outside/tokenizer.json"] = _sha(outside)
        m["tokenizer"]["file"] = "../../outside/tokenizer.json"

    _edit(art, change)
    with pytest.raises(ArtifactError, match="'..' component"):
        EdgeModel.load(art)


def test_bundle_location_leaving_the_bundle_is_refused(tiny_artifact, tmp_path):
    bundle = _bundle(tiny_artifact, tmp_path / "bundle")
    _copy(tiny_artifact, tmp_path / "elsewhere")
    _rewrite_summary(bundle, lambda s: s["locations"].update({"onnx-int8": "../elsewhere"}))
    with pytest.raises(ArtifactError, match="location of 'onnx-int8'.*'..' component"):
        EdgeModel.load(bundle)
    with pytest.raises(ArtifactError, match="'..' component"):
        expand_bundle(bundle)


def test_bundle_location_through_a_symlink_is_refused(tiny_artifact, tmp_path):
    bundle = _bundle(tiny_artifact, tmp_path / "bundle", digests=False)
    shutil.rmtree(bundle / "onnx-int8")
    (bundle / "onnx-int8").symlink_to(_copy(tiny_artifact, tmp_path / "elsewhere"), target_is_directory=True)
    with pytest.raises(ArtifactError, match="symbolic link"):
        EdgeModel.load(bundle)


def test_bundle_variant_manifest_swapped_after_packaging_is_refused(tiny_artifact, tmp_path):
    bundle = _bundle(tiny_artifact, tmp_path / "bundle")
    EdgeModel.load(bundle)
    _edit(bundle / "onnx-int8", lambda m: m.update(labels=list(reversed(m["labels"]))))  # files still match
    with pytest.raises(ArtifactError, match="does not match its sha256 in .*summary.json"):
        EdgeModel.load(bundle)


def test_pin_on_a_bundle_pins_summary_json_and_through_it_every_variant(tiny_artifact, tmp_path):
    bundle = _bundle(tiny_artifact, tmp_path / "bundle")
    pin = _sha(bundle / SUMMARY_NAME)
    model = EdgeModel.load(bundle, manifest_sha256=pin)
    assert model.root.name == "onnx-int8"
    with pytest.raises(ArtifactError, match="not the pinned"):  # the variant's own pin is not the bundle's
        EdgeModel.load(bundle, manifest_sha256=_sha(bundle / "onnx-int8" / MANIFEST_NAME))
    _rewrite_summary(bundle, lambda s: s.update(recommended="onnx-fp32"))
    with pytest.raises(ArtifactError, match="summary.json has sha256 .* not the pinned"):
        EdgeModel.load(bundle, manifest_sha256=pin)


def test_bundle_without_digests_loads_with_a_warning_and_refuses_a_pin(tiny_artifact, tmp_path):
    bundle = _bundle(tiny_artifact, tmp_path / "bundle", digests=False)
    with pytest.warns(UserWarning, match="no `manifest_sha256`"):
        root, _ = load_artifact(bundle)
    assert root.name == "onnx-int8"
    with pytest.raises(ArtifactError, match="predates manifest digests"):
        load_artifact(bundle, manifest_sha256=_sha(bundle / SUMMARY_NAME))


def test_symlinked_manifest_is_refused(art, tmp_path):
    shutil.move(art / MANIFEST_NAME, tmp_path / "outside" / MANIFEST_NAME)
    (art / MANIFEST_NAME).symlink_to(tmp_path / "outside" / MANIFEST_NAME)
    with pytest.raises(ArtifactError, match="symbolic link"):
        read_manifest(art)


def test_unlisted_files_in_the_folder_are_ignored(art):
    (art / "README.txt").write_text("not part of the artifact")
    EdgeModel.load(art, manifest_sha256=_sha(art / MANIFEST_NAME))


# ---------------------------------------------------------------------------------------------
# Side files the engine reads by itself: OpenVINO's .bin, ONNX external data


def test_openvino_bin_must_be_listed(art):
    def change(m):
        m.update(engine="openvino", model_file="model.xml")
        m["files"]["model.xml"] = m["files"].pop("model.onnx")

    _edit(art, change)
    with pytest.raises(ArtifactError, match="'model.bin' but does not list it"):
        read_manifest(art)


def _external_data_graph(folder: Path, location: str) -> Path:
    onnx = pytest.importorskip("onnx")
    import numpy as np
    from onnx import helper, numpy_helper

    weight = numpy_helper.from_array(np.arange(16, dtype=np.float32).reshape(4, 4), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 4])],
        [weight],
    )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.onnx"
    onnx.save_model(helper.make_model(graph), path, save_as_external_data=True, location=location, size_threshold=0)
    return path


def _manifest_for(files: dict[str, str], model_file: str = "model.onnx") -> Manifest:
    data = json.loads(json.dumps(_VALID))
    data.update(model_file=model_file, files={**files, "tokenizer.json": "0" * 64})
    return Manifest.from_dict(data)


def test_onnx_external_data_must_be_listed(tmp_path):
    model = _external_data_graph(tmp_path / "art", "weights.data")
    assert onnx_external_data(model) == ["weights.data"]
    listed = {"model.onnx": _sha(model), "weights.data": _sha(tmp_path / "art" / "weights.data")}
    assert model_file_path(tmp_path / "art", _manifest_for(listed)) == model.resolve()
    with pytest.raises(ArtifactError, match="'weights.data' is not listed"):
        model_file_path(tmp_path / "art", _manifest_for({"model.onnx": _sha(model)}))


def test_onnx_external_data_outside_the_folder_is_refused(tmp_path):
    (tmp_path / "art").mkdir()
    model = _external_data_graph(tmp_path / "art", "weights.data")
    data = model.read_bytes().replace(b"weights.data", b"../w/ts.data")  # same length: the protobuf stays valid
    model.write_bytes(data)
    assert onnx_external_data(model) == ["../w/ts.data"]
    with pytest.raises(ArtifactError, match="External data .*'..' component"):
        model_file_path(tmp_path / "art", _manifest_for({"model.onnx": _sha(model)}))


def test_a_file_that_is_not_onnx_is_refused(tmp_path):
    (tmp_path / "art").mkdir()
    (tmp_path / "art" / "model.onnx").write_bytes(b"\xff" * 32)
    with pytest.raises(ArtifactError, match="not a valid ONNX graph"):
        model_file_path(tmp_path / "art", _manifest_for({"model.onnx": "0" * 64}))


def test_the_real_artifact_has_no_external_data(tiny_artifact):
    assert onnx_external_data(tiny_artifact / "model.onnx") == []


# ---------------------------------------------------------------------------------------------
# Malformed manifests: wrong types and shapes are one ArtifactError (issue 10, "should fix")

_VALID: dict[str, Any] = {
    "format_version": 1,
    "task": "text-classification",
    "labels": ["negative", "positive"],
    "engine": "onnxruntime",
    "precision": "fp32",
    "model_file": "model.onnx",
    "inputs": [{"name": "input_ids", "dtype": "int64", "shape": ["batch", "sequence"]}],
    "outputs": [{"name": "logits", "dtype": "float32", "shape": ["batch", 2]}],
    "tokenizer": {"file": "tokenizer.json", "max_length": 8, "pad_id": 0, "pad_token": "[PAD]"},
    "source": {},
    "recipe_hash": "0" * 64,
    "edgekit_version": "test",
    "files": {"model.onnx": "0" * 64, "tokenizer.json": "0" * 64},
}


@pytest.mark.parametrize(
    "path, value, message",
    [
        (("labels",), "negative,positive", "`labels` must be a non-empty list"),
        (("labels",), ["negative", 1], "`labels` must be a non-empty list"),
        (("labels",), [], "`labels` must be a non-empty list"),
        (("labels",), ["a", "a"], "distinct"),
        (("labels",), ["a", "b", "c"], "outputs 2 scores but `labels` names 3"),
        (("files",), ["model.onnx"], "`files` must be"),
        (("files", "model.onnx"), "abc", "sha256 as 64 lower-case hex"),
        (("inputs",), {"name": "input_ids"}, "`inputs` must be a non-empty list"),
        (("inputs", 0, "name"), "pixels", "int64 input named one of"),
        (("inputs", 0, "shape"), "batch", "a list of axis names"),
        (("tokenizer",), "tokenizer.json", "`tokenizer` must be an object"),
        (("tokenizer", "max_length"), 0, "`tokenizer.max_length` must be a positive integer"),
        (("tokenizer", "max_length"), 10**30, "`tokenizer.max_length` must be a positive integer"),
        (("tokenizer", "max_length"), True, "`tokenizer.max_length` must be a positive integer"),
        (("tokenizer", "pad_id"), "0", "`tokenizer.pad_id` must be a token id"),
        (("tokenizer", "pad_id"), 2**40, "`tokenizer.pad_id` must be a token id"),
        (("tokenizer", "truncation_side"), "middle", "'left' or 'right'"),
        (("runtime",), {"threads": -1}, "`runtime.threads`"),
        (("runtime",), {"engines": {"onnxruntime": {"providers": "CPU"}}}, "providers` must be a list"),
        (("format_version",), True, "format version True"),
        (("model_file",), "C:\\model.onnx", "contains '\\\\' or ':'"),
        (("model_file",), "model.onnx\x00", "NUL"),
        (("notes",), "one note", "`notes` must be a list of strings"),
    ],
)
def test_malformed_manifest_is_one_artifact_error(path, value, message):
    data = copy.deepcopy(_VALID)
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ArtifactError, match=message) as raised:
        validate_manifest(data)
    assert "\n" not in str(raised.value)


def test_missing_required_field_is_named():
    data = copy.deepcopy(_VALID)
    del data["tokenizer"]["pad_id"]
    with pytest.raises(ArtifactError, match="no `tokenizer.pad_id`"):
        Manifest.from_dict(data)


def test_pin_that_is_not_a_sha256_is_refused(art):
    with pytest.raises(ArtifactError, match="64 hex digits"):
        load_artifact(art, manifest_sha256=12345)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Property-based: random and mutated manifests and summaries


class _OpenRecorder:
    """Records every path opened through Python (open, Path.open) and every tokenizer file read."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.paths: list[Path] = []
        real_open = io.open

        def recording_open(file, *args, **kwargs):
            if isinstance(file, (str, bytes, os.PathLike)):
                self.paths.append(Path(os.fsdecode(file)))
            return real_open(file, *args, **kwargs)

        monkeypatch.setattr(io, "open", recording_open)
        monkeypatch.setattr(builtins, "open", recording_open)

        import edgekit.runtime.preprocess as preprocess

        real_tokenizer = preprocess.Tokenizer
        recorder = self

        class RecordingTokenizer:  # tokenizers reads the file in Rust: record the path it is given
            @staticmethod
            def from_file(path: str):
                recorder.paths.append(Path(path))
                return real_tokenizer.from_file(path)

        monkeypatch.setattr(preprocess, "Tokenizer", RecordingTokenizer)

    def outside(self, root: Path) -> list[Path]:
        inside = root.resolve()
        return [p for p in self.paths if inside not in p.resolve().parents]


def _reader(path: Path) -> None:
    """What EdgeModel.load does before the engine starts: every manifest field it reads, every file it opens."""
    from edgekit.runtime.preprocess import TextPreprocessor

    root, manifest = load_artifact(path)
    model_file_path(root, manifest)
    TextPreprocessor.for_artifact(root, manifest)(["a short text"])


_PATHS = st.sampled_from(
    [
        "model.onnx",
        "tokenizer.json",
        "../outside/model.onnx",
        "../../outside/tokenizer.json",
        "/etc/passwd",
        "a/../model.onnx",
        "./tokenizer.json",
        "model.onnx/",
        "C:model.onnx",
        "..\\model.onnx",
        "link.onnx",
        "",
    ]
)
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([0, -1, 2**31, 2**64, 10**400])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | _PATHS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=12,
)


def _locations(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path into a JSON tree (keys and indices), the root excluded."""
    found = []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
    for key, child in items:
        found.append((*prefix, key))
        found.extend(_locations(child, (*prefix, key)))
    return found


def _mutate(document: Any, data: st.DataObject, rounds: int) -> Any:
    document = copy.deepcopy(document)
    for _ in range(rounds):
        places = _locations(document)
        if not places:
            break
        place = data.draw(st.sampled_from(places))
        parent = document
        for key in place[:-1]:
            parent = parent[key]
        action = data.draw(st.sampled_from(["replace", "path", "delete", "wrap", "rename"]))
        if action == "delete":
            del parent[place[-1]]
        elif action == "rename" and isinstance(parent, dict):  # e.g. a `files` key that leaves the folder
            parent[data.draw(_PATHS)] = parent.pop(place[-1])
        elif action == "wrap":
            parent[place[-1]] = [parent[place[-1]]] if data.draw(st.booleans()) else {"x": parent[place[-1]]}
        else:
            parent[place[-1]] = data.draw(_PATHS if action == "path" else _JSON)
    return document


@pytest.fixture(scope="module")
def sandbox(tiny_artifact, tmp_path_factory) -> Path:
    """tmp/work/art (a copy of the tiny artifact, plus a link inside it) beside tmp/outside (sentinels)."""
    base = tmp_path_factory.mktemp("hostile")
    art = _copy(tiny_artifact, base / "work" / "art")
    (base / "outside").mkdir()
    for name in ("model.onnx", "tokenizer.json"):
        shutil.copy(art / name, base / "outside" / name)
    (art / "link.onnx").symlink_to(base / "outside" / "model.onnx")
    return art


_PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@_PROPERTY
@given(data=st.data(), rounds=st.integers(1, 3))
def test_mutated_manifest_loads_or_is_one_artifact_error(sandbox, base_manifest, monkeypatch, data, rounds):
    mutated = _mutate(base_manifest, data, rounds)
    (sandbox / MANIFEST_NAME).write_text(json.dumps(mutated))
    with monkeypatch.context() as patch:
        opened = _OpenRecorder(patch)
        try:
            _reader(sandbox)
        except ArtifactError as exc:
            assert "\n" not in str(exc), "one line"
        assert not opened.outside(sandbox), f"opened outside the artifact: {opened.outside(sandbox)}"


@pytest.fixture(scope="module")
def base_manifest(sandbox) -> dict[str, Any]:
    """The tiny artifact's real manifest, read before any mutation is written over it."""
    data = json.loads((sandbox / MANIFEST_NAME).read_text())
    validate_manifest(data)
    return data


@_PROPERTY
@given(raw=st.one_of(_JSON, st.binary(max_size=64)))
def test_random_manifest_is_one_artifact_error(sandbox, monkeypatch, raw):
    folder = sandbox.parent / "random"
    folder.mkdir(exist_ok=True)
    payload = raw if isinstance(raw, bytes) else json.dumps(raw).encode()
    (folder / MANIFEST_NAME).write_bytes(payload)
    with monkeypatch.context() as patch:
        opened = _OpenRecorder(patch)
        with pytest.raises(ArtifactError):
            _reader(folder)
        assert not opened.outside(folder)


@pytest.fixture(scope="module")
def hostile_bundle(tiny_artifact, tmp_path_factory) -> tuple[Path, dict[str, Any]]:
    base = tmp_path_factory.mktemp("hostile-bundle")
    bundle = _bundle(tiny_artifact, base / "bundle")
    _copy(tiny_artifact, base / "elsewhere")
    (bundle / "link").symlink_to(base / "elsewhere", target_is_directory=True)
    return bundle, json.loads((bundle / SUMMARY_NAME).read_text())


_SUMMARY_PATHS = st.sampled_from(["onnx-fp32", "onnx-int8", "../elsewhere", "link", "/tmp", "onnx-int8/", ".", ""])


@_PROPERTY
@given(data=st.data(), rounds=st.integers(1, 3))
def test_mutated_summary_loads_or_is_one_artifact_error(hostile_bundle, monkeypatch, data, rounds):
    bundle, summary = hostile_bundle
    mutated = _mutate(summary, data, rounds)
    if data.draw(st.booleans()) and isinstance(mutated, dict) and isinstance(mutated.get("locations"), dict):
        mutated["locations"][data.draw(st.sampled_from(["onnx-int8", "x"]))] = data.draw(_SUMMARY_PATHS)
    (bundle / SUMMARY_NAME).write_text(json.dumps(mutated))
    with monkeypatch.context() as patch:
        opened = _OpenRecorder(patch)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _reader(bundle)
                expand_bundle(bundle)
        except ArtifactError as exc:
            assert "\n" not in str(exc)
        assert not opened.outside(bundle)


def test_artifact_file_refuses_what_the_manifest_does_not_list(art):
    manifest = read_manifest(art)
    assert artifact_file(art, manifest, "tokenizer.json") == (art / "tokenizer.json").resolve()
    (art / "extra.json").write_text("{}")
    with pytest.raises(ArtifactError, match="not listed"):
        artifact_file(art, manifest, "extra.json")


def test_an_upper_case_model_suffix_is_refused():
    """Side files (ONNX external data, OpenVINO .bin) are found by suffix; `model.ONNX` would skip that
    check while ONNX Runtime still loads it, so an unlisted weights file could ride along under a pin."""
    data = copy.deepcopy(_VALID)
    data["model_file"] = "model.ONNX"
    data["files"]["model.ONNX"] = data["files"].pop("model.onnx")
    with pytest.raises(ArtifactError, match="lower-case suffix"):
        validate_manifest(data)


def test_external_data_names_must_be_plain_ascii(tmp_path):
    """The name checked and hashed must be byte for byte the one the engine opens (no lossy decoding)."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    from edgekit.artifact import onnx_external_data

    def save(name: str, location: str) -> None:  # a fresh model each time: saving moves weights out in place
        weights = numpy_helper.from_array(np.ones((2, 2), dtype=np.float32), name="w")
        graph = helper.make_graph(
            [helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
            [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2, 2])],
            [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [2, 2])], [weights],
        )  # fmt: skip
        onnx.save_model(helper.make_model(graph), tmp_path / name, save_as_external_data=True, location=location,
                        size_threshold=0)  # fmt: skip

    save("plain.onnx", "weights.bin")
    assert onnx_external_data(tmp_path / "plain.onnx") == ["weights.bin"]
    save("odd.onnx", "wéights.bin")
    with pytest.raises(ArtifactError, match="ASCII"):
        onnx_external_data(tmp_path / "odd.onnx")


def test_a_manifest_naming_another_listed_file_as_tokenizer_is_an_artifact_error(tmp_path):
    """Found by the mutation property: tokenizer.file pointing at model.onnx (listed, hashed, inside the
    folder) reached tokenizers' bare Exception; it must be one ArtifactError."""
    from edgekit.runtime.preprocess import TextPreprocessor

    foreign = tmp_path / "model.onnx"
    foreign.write_bytes(b"\x08\x07\xff\xfe not a tokenizer")
    config = {"file": "model.onnx", "max_length": 64, "pad_id": 0, "truncation_side": "right"}
    with pytest.raises(ArtifactError, match="not a usable tokenizers JSON file"):
        TextPreprocessor(foreign, config, ["input_ids"])
