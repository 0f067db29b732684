"""The three registries: a variant, a task and (in test_engine_registry.py) an engine added from
outside the package; per-variant options; the docs derived from the registry; the layering rules."""

from __future__ import annotations

import ast
import shutil
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
from pydantic import Field

from edgekit.convert.pipeline import convert
from edgekit.convert.recipe import build_recipe
from edgekit.convert.variants import BuildOutput, VariantKind, VariantOptions, get_variant, variant_table, variants
from edgekit.convert.variants import registry as variant_registry
from edgekit.errors import RecipeError
from edgekit.plugins import PluginGroup
from edgekit.runtime import EdgeModel

REPO = Path(__file__).resolve().parents[1]


class CopyOptions(VariantOptions):
    note: str = Field("copied", description="recorded in the manifest")


class OnnxCopy(VariantKind):
    """A toy kind from 'another package': the reference graph, copied."""

    name = "toy-onnx-copy"
    engine = "onnxruntime"
    precision = "fp32"
    description = "a copy of the reference (test plugin)"
    Options = CopyOptions

    def build(self, ctx, folder, options):
        shutil.copy2(ctx.reference_onnx, folder / "model.onnx")
        return BuildOutput("model.onnx", {"note": options.note})


@pytest.fixture
def toy_variant(monkeypatch):
    monkeypatch.setattr(variant_registry, "_REGISTRY", dict(variant_registry._REGISTRY))  # undone after the test
    return variant_registry.register_variant(OnnxCopy)


def _fields(model, out, data, variant_list):
    return {"model": str(model), "out": str(out), "data": {"path": str(data)}, "bench": {"enabled": False},
            "variants": variant_list}  # fmt: skip


def test_a_variant_registered_from_outside_is_built_gated_and_loaded(toy_variant, tmp_path, tiny_model_dir,
                                                                     sentiment_eval):  # fmt: skip
    entry = {"name": "toy-onnx-copy", "note": "from a plugin"}
    result = convert(build_recipe(_fields(tiny_model_dir, tmp_path / "out", sentiment_eval, ["onnx-fp32", entry])))
    row = result.summary.variant("toy-onnx-copy")
    assert row["passed"] and row["gate"]["agreement"] == 1.0
    model = EdgeModel.load(result.out / result.summary.locations["toy-onnx-copy"])
    assert model.manifest.metrics["build"] == {"note": "from a plugin"}
    assert "toy-onnx-copy" in variant_table()


def test_variant_options_are_validated_by_the_variant_model(toy_variant, tmp_path, tiny_model_dir, sentiment_eval):
    bad = {"name": "toy-onnx-copy", "colour": "red"}
    with pytest.raises(RecipeError, match="toy-onnx-copy.*colour"):
        build_recipe(_fields(tiny_model_dir, tmp_path / "o", sentiment_eval, ["onnx-fp32", bad]))
    with pytest.raises(RecipeError, match="per_channel"):
        build_recipe(_fields(tiny_model_dir, tmp_path / "o", sentiment_eval,
                             [{"name": "ort-int8-dynamic", "per_channel": "sometimes"}]))  # fmt: skip
    with pytest.raises(RecipeError, match="needs a `name:`"):
        build_recipe(_fields(tiny_model_dir, tmp_path / "o", sentiment_eval, [{"per_channel": True}]))


def test_per_variant_options_override_the_shared_sections(tmp_path, tiny_model_dir, sentiment_eval):
    fields = _fields(tiny_model_dir, tmp_path / "o", sentiment_eval, ["onnx-fp32", "ort-int8-dynamic"])
    shared = build_recipe({**fields, "quantization": {"per_channel": False}})
    assert shared.variant_options("ort-int8-dynamic").per_channel is False
    own = {**fields, "variants": ["onnx-fp32", {"name": "ort-int8-dynamic", "per_channel": True}],
           "quantization": {"per_channel": False}}  # fmt: skip
    assert build_recipe(own).variant_options("ort-int8-dynamic").per_channel is True
    assert build_recipe(own).content_hash() != shared.content_hash()


def test_variant_plugins_load_from_the_entry_point_group(monkeypatch):
    monkeypatch.setattr(variant_registry, "_REGISTRY", dict(variant_registry._REGISTRY))
    fresh = PluginGroup(variant_registry.ENTRY_POINT_GROUP, variant_registry.register_variant)
    monkeypatch.setattr(variant_registry, "PLUGINS", fresh)
    point = EntryPoint("toy", f"{__name__}:OnnxCopy", variant_registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr("edgekit.plugins.entry_points", lambda group: [point] if group == point.group else [])
    assert get_variant("toy-onnx-copy").description.startswith("a copy")


def test_unknown_variant_and_task_name_the_known_ones(tmp_path, tiny_model_dir, sentiment_eval):
    with pytest.raises(RecipeError, match="ort-int8-dynamic"):
        build_recipe(_fields(tiny_model_dir, tmp_path / "o", sentiment_eval, ["ort-int9"]))
    with pytest.raises(RecipeError, match="text-classification"):
        build_recipe({**_fields(tiny_model_dir, tmp_path / "o", sentiment_eval, ["onnx-fp32"]), "task": "ocr"})


def test_docs_variant_table_is_the_registry():
    """docs/recipes.md shows exactly the table the registry renders (regenerate with variant_table())."""
    builtin = {n: k for n, k in variants().items() if type(k).__module__.startswith("edgekit.")}
    assert builtin, "the built-in kinds are registered"
    assert variant_table() in (REPO / "docs" / "recipes.md").read_text(encoding="utf-8")


def test_convert_help_lists_every_variant():
    from typer.testing import CliRunner

    from edgekit.cli import app

    text = CliRunner().invoke(app, ["convert", "--help"], env={"COLUMNS": "400"}).output
    for name in variants():
        assert name in text


# ---- layering: no cycles, no huge modules, every package shipped ---------------------------------


def _edgekit_imports(path: Path, module: str) -> set[str]:
    """edgekit modules imported anywhere in a file (function-level imports too: they hide cycles)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            base = node.module
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("edgekit") and name != module}


def _module_graph() -> dict[str, set[str]]:
    files = {".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__"): p
             for p in (REPO / "edgekit").rglob("*.py")}  # fmt: skip
    return {name: {d for d in _edgekit_imports(path, name) if d in files} for name, path in files.items()}


def test_no_import_cycles_between_modules():
    graph = _module_graph()
    # A package's __init__ re-exporting its own modules is not a cycle of meaning: drop parent→child edges.
    edges = {m: {d for d in deps if not d.startswith(m + ".")} for m, deps in graph.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(edges[node]):
            if state.get(dep) == 1:
                cycle = stack[stack.index(dep) :] + [dep]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module)


def test_runtime_imports_nothing_from_the_conversion_side():
    graph = _module_graph()
    allowed = ("edgekit.runtime", "edgekit.artifact", "edgekit.errors")
    lazy_ok = {"edgekit.targets.profiles"}  # only when an app names a target profile (pydantic, yaml)
    for module, deps in graph.items():
        if module.startswith("edgekit.runtime"):
            wrong = {d for d in deps if not d.startswith(allowed) and d not in lazy_ok and d != "edgekit"}
            assert not wrong, f"{module} imports {wrong}"


def test_no_module_is_over_400_lines():
    long = {str(p.relative_to(REPO)): n for p in (REPO / "edgekit").rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400}  # fmt: skip
    assert not long, f"split these modules: {long}"


def test_every_package_is_shipped_in_the_wheel():
    tomllib = pytest.importorskip("tomllib")

    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    packages = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "edgekit").rglob("__init__.py")}
    assert packages <= listed, f"add to pyproject's packages: {sorted(packages - listed)}"


# Long on purpose: a CLI command's length is its option declarations; create_app's is its route
# closures; the two training entry points read top to bottom as one recipe (a split is planned).
LONG_FUNCTIONS_WITH_A_REASON = {
    ("edgekit/cli/bench.py", "bench"),
    ("edgekit/cli/convert.py", "convert"),
    ("edgekit/serve/app.py", "create_app"),
    ("edgekit/train/finetune.py", "finetune_classifier"),
    ("edgekit/train/distill/stage.py", "run_distillation"),
}


def test_no_function_is_over_80_lines_without_a_reason():
    long = set()
    for path in (REPO / "edgekit").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 80:
                long.add((path.relative_to(REPO).as_posix(), node.name))
    assert long <= LONG_FUNCTIONS_WITH_A_REASON, f"split these functions: {sorted(long - LONG_FUNCTIONS_WITH_A_REASON)}"


def test_a_broken_variant_plugin_is_reported_by_name_and_spares_the_others(monkeypatch):
    monkeypatch.setattr(variant_registry, "_REGISTRY", dict(variant_registry._REGISTRY))
    fresh = PluginGroup(variant_registry.ENTRY_POINT_GROUP, variant_registry.register_variant)
    monkeypatch.setattr(variant_registry, "PLUGINS", fresh)
    broken = EntryPoint("toy-broken", "no_such_module_for_edgekit:Kind", variant_registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr("edgekit.plugins.entry_points", lambda group: [broken])
    assert get_variant("ort-int8-dynamic").name == "ort-int8-dynamic"
    for _ in range(2):  # the same answer every time, not only on the first call
        with pytest.raises(RecipeError, match="toy-broken.*failed to load.*no_such_module_for_edgekit"):
            get_variant("toy-broken")


def test_the_cli_imports_no_undeclared_package():
    """click is typer's dependency in some versions and vendored in others (0.29): importing it
    directly broke `edgekit` in a fresh install without the serve extra."""
    for path in (REPO / "edgekit").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            assert not any(n == "click" or n.startswith("click.") for n in names), path
