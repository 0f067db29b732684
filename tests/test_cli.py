"""The command line end to end on the tiny model, and one clear error for each bad input."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgekit.cli import app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def _all_commands() -> list[list[str]]:
    commands = [[c.name or c.callback.__name__] for c in app.registered_commands]
    for group in app.registered_groups:
        commands += [[group.name, c.name or c.callback.__name__] for c in group.typer_instance.registered_commands]
    return commands


@pytest.mark.parametrize("command", _all_commands(), ids=" ".join)
def test_every_command_has_help_with_an_example(command):
    result = run(*command, "--help")
    assert result.exit_code == 0, result.output
    assert "Example" in result.output


def test_targets_list_and_show():
    listed = run("targets", "list")
    assert listed.exit_code == 0 and "raspberry-pi-5" in listed.output and "x86-avx2-box" in listed.output
    shown = run("targets", "show", "raspberry-pi-5", "--json")
    assert shown.exit_code == 0
    profile = json.loads(shown.output)
    assert profile["arch"] == "aarch64" and "dotprod" in profile["isa_features"]


def test_convert_with_flags_then_bench(tmp_path, tiny_model_dir, tiny_data):
    out = tmp_path / "art"
    result = run("convert", "--model", tiny_model_dir, "--task", "text-classification", "--out", out,
                 "--target", "raspberry-pi-5", "--data", tiny_data)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Wrote" in result.output and "parity max" in result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["target"] == "raspberry-pi-5"
    again = run("convert", "--model", tiny_model_dir, "--out", out, "--target", "raspberry-pi-5", "--data", tiny_data)
    assert again.exit_code == 0 and "Reused" in again.output

    results = tmp_path / "bench.json"
    report = tmp_path / "bench.md"
    bench = run("bench", out, "--data", tiny_data, "--threads", "1", "--runs", "10", "--warmup", "2",
                "--out", results, "--report", report)  # fmt: skip
    assert bench.exit_code == 0, bench.output
    document = json.loads(results.read_text())
    assert document["variants"][0]["latency_ms"]["count"] == 10
    assert document["variants"][0]["accuracy"] is not None
    assert document["target"]["mode"] == "measured-on-device"
    assert report.read_text().startswith("# Benchmark results")


def test_convert_from_recipe_file(tmp_path, tiny_model_dir, tiny_data):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"model: {tiny_model_dir}\nout: built/art\ndata: {{path: {tiny_data}}}\nexport: {{opset: 17}}\n")
    result = run("convert", recipe)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "built" / "art" / "manifest.json").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["convert", "--model", "/no/such/model", "--out", "{tmp}/a"], "does not exist"),
        (["convert", "--model", "{model}", "--out", "{tmp}/a", "--target", "toaster"], "Unknown target 'toaster'"),
        (["convert", "{tmp}/bad.yaml"], "not valid YAML"),
        (["convert", "--model", "{model}", "--out", "{tmp}/a", "--data", "{tmp}/rows.tsv"], "line 3: expected 2"),
        (["convert", "--out", "{tmp}/a"], "Say which model"),
        (["convert", "--model", "{model}"], "no `out:` folder"),
        (["convert", "--model", "{model}", "--out", "{tmp}/a", "--exporter", "magic"], "'magic' is not one of"),
        (["bench", "{tmp}"], "not an edgekit artifact"),
        (["targets", "show", "toaster"], "Unknown target"),
    ],
)
def test_bad_input_gives_one_clear_error(tmp_path, tiny_model_dir, args, message):
    (tmp_path / "bad.yaml").write_text("model: [unclosed\n")
    (tmp_path / "rows.tsv").write_text("text\tlabel\nok\t1\nbroken\trow\textra\n")
    args = [a.format(tmp=tmp_path, model=tiny_model_dir) for a in args]
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "a").exists(), "no half-written artifact"


def test_a_failure_inside_staging_leaves_nothing_and_keeps_the_old_artifact(tmp_path, tiny_model_dir, tiny_data):
    out = tmp_path / "a"
    assert run("convert", "--model", tiny_model_dir, "--out", out, "--data", tiny_data).exit_code == 0
    before = (out / "model.onnx").read_bytes()
    failed = run("convert", "--model", tiny_model_dir, "--out", out, "--data", tiny_data, "--atol", "1e-15", "--force")
    assert failed.exit_code == 3 and "does not match PyTorch" in failed.output  # the parity gate, inside staging
    assert (out / "model.onnx").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"], "no .a.tmp-* or .a.old-* left behind"


def test_an_unrelated_folder_is_never_replaced(tmp_path, tiny_model_dir, tiny_data):
    precious = tmp_path / "my-work"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    result = run("convert", "--model", tiny_model_dir, "--out", precious, "--data", tiny_data)
    assert result.exit_code == 2 and "was not written by edgekit" in result.output
    assert (precious / "notes.txt").read_text() == "keep me"
    into_model = run("convert", "--model", tiny_model_dir, "--out", tiny_model_dir)
    assert into_model.exit_code == 2 and (tiny_model_dir / "config.json").is_file()


def test_shim_and_console_script_exit_codes(tmp_path):
    shim = subprocess.run([sys.executable, str(ROOT / "cli.py"), "--help"], capture_output=True, text=True)
    assert shim.returncode == 0 and "quickstart" in shim.stdout
    failed = subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), "bench", str(tmp_path / "nothing")], capture_output=True, text=True
    )
    assert failed.returncode == 2
    assert "error:" in failed.stderr and "does not exist" in failed.stderr


BLOCK_HEAVY = """
import sys
class _BlockHeavy:
    # Stand-in for a device with only edgekit[runtime]: these packages are not installed.
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"torch", "transformers", "optimum", "onnx", "accelerate", "onnxscript"}:
            raise ImportError(f"No module named {name!r} (blocked by the test)")
        return None
sys.meta_path.insert(0, _BlockHeavy())
"""


def test_bench_and_targets_work_without_the_conversion_stack(tmp_path, tiny_artifact, tiny_data):
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(BLOCK_HEAVY)
    env = {**__import__("os").environ, "PYTHONPATH": f"{tmp_path / 'site'}:{ROOT}"}
    check = subprocess.run([sys.executable, "-c", "import torch"], capture_output=True, text=True, env=env)
    assert check.returncode != 0, "the blocker must be active"
    for args in (
        ["targets", "show", "host"],
        ["bench", str(tiny_artifact), "--data", str(tiny_data), "--runs", "10", "--out", str(tmp_path / "r.json")],
        ["bench", str(tiny_artifact), "--runs", "10", "--out", str(tmp_path / "probe.json")],
    ):
        result = subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], capture_output=True, text=True, env=env)
        assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads((tmp_path / "r.json").read_text())["variants"][0]["accuracy"] is not None


def test_convert_quantize_flag_builds_gates_benchmarks_and_recommends(tmp_path, trained_tiny_dir, sentiment_eval):
    out = tmp_path / "q"
    result = run("convert", "--model", trained_tiny_dir, "--out", out, "--data", sentiment_eval,
                 "--quantize", "dynamic", "--max-accuracy-drop", "2.5")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Recommended:" in result.output and "pytorch-fp32" in result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["built"] == ["onnx-fp32", "ort-int8-dynamic"]
    assert summary["gate"]["allowed_drop_points"] == 2.5
    assert all(v["latency_ms"]["median"] > 0 for v in summary["variants"]), "every row was timed"
    assert summary["variants"][0]["is_source"] and summary["variants"][0]["accuracy"] > 0.9
    bench = json.loads((out / "bench.json").read_text())
    assert [v["name"] for v in bench["variants"]] == ["pytorch-fp32", "onnx-fp32", "ort-int8-dynamic"]
    assert run("convert", "--model", trained_tiny_dir, "--out", tmp_path / "z", "--data", sentiment_eval,
               "--quantize", "sometimes").exit_code == 2  # fmt: skip


def test_bench_budgets_exit_code_and_compare(tmp_path, tiny_artifact, tiny_data):
    board = tmp_path / "strict-board.yaml"
    board.write_text(
        "name: strict-board\ndisplay_name: Strict\ndevice_class: board\narch: x86_64\ncpu: test\ncores: 1\n"
        "ram_mb: 1024\nengines: [{engine: onnxruntime}]\nthreads: 1\n"
        "budgets: {p95_latency_ms: 0.0001, model_mb: 500, max_accuracy_drop: 1.0}\n"
    )
    results = tmp_path / "r.json"
    over = run("bench", tiny_artifact, "--data", tiny_data, "--runs", "10", "--target", board, "--out", results)
    assert over.exit_code == 4, over.output
    document = json.loads(results.read_text())
    verdicts = {v["budget"]: v["passed"] for v in document["budgets"]}
    assert verdicts == {"p95_latency_ms": False, "model_mb": True, "max_accuracy_drop": True}
    assert document["target"]["mode"] == "emulated-on-host"
    lenient = run(
        "bench", tiny_artifact, "--runs", "10", "--target", board, "--out", tmp_path / "x.json", "--no-budgets"
    )
    assert lenient.exit_code == 0, lenient.output

    same = run("bench", "compare", results, results)
    assert same.exit_code == 0 and "REGRESSION" not in same.output
    slower = json.loads(results.read_text())
    slower["variants"][0]["latency_ms"]["median"] *= 3
    (tmp_path / "slower.json").write_text(json.dumps(slower))
    flagged = run("bench", "compare", results, tmp_path / "slower.json")
    assert flagged.exit_code == 5 and "REGRESSION" in flagged.output
    assert run("bench", "compare", results).exit_code == 2
