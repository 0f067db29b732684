from pathlib import Path

import pytest

from edgekit.convert.recipe import build_recipe, load_recipe
from edgekit.errors import RecipeError


def test_recipe_paths_resolve_against_its_folder(tmp_path, tiny_model_dir):
    (tmp_path / "dev.tsv").write_text("text\nhi\n")
    recipe_file = tmp_path / "r.yaml"
    recipe_file.write_text(f"model: {tiny_model_dir}\nout: out/a\ndata: {{path: dev.tsv}}\nparity: {{atol: 1.0e-3}}\n")
    recipe = load_recipe(recipe_file)
    assert recipe.out == tmp_path / "out" / "a"
    assert recipe.data is not None and recipe.data.path == tmp_path / "dev.tsv"
    assert recipe.parity.atol == 1e-3
    assert recipe.export.exporter == "optimum"


def test_unknown_field_is_named(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("model: x\nexport: {exporterr: optimum}\n")
    with pytest.raises(RecipeError, match=r"export\.exporterr"):
        load_recipe(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [("model: [unclosed", "not valid YAML"), ("- a list", "must be a YAML mapping"), ("task: x\n", "model")],
)
def test_malformed_recipes(tmp_path, content, message):
    path = tmp_path / "r.yaml"
    path.write_text(content)
    with pytest.raises(RecipeError, match=message):
        load_recipe(path)


def test_missing_recipe_file(tmp_path):
    with pytest.raises(RecipeError, match="does not exist"):
        load_recipe(tmp_path / "nope.yaml")


def test_example_recipes_are_valid():
    examples = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.yaml"))
    assert examples
    for path in examples:
        assert load_recipe(path).model


def test_content_hash_is_stable_and_sensitive():
    a = build_recipe({"model": "m", "out": "o"})
    assert a.content_hash() == build_recipe({"out": "o", "model": "m"}).content_hash()
    assert a.content_hash() != build_recipe({"model": "m", "out": "o", "parity": {"atol": 1e-3}}).content_hash()
    assert isinstance(a.out, Path)
