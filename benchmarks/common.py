"""Helpers shared by the benchmark scripts: where the real data and teacher live, and packaging
an ONNX file made by another tool as an edgekit artifact so the same harness times it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from edgekit.artifact import Manifest, read_manifest
from edgekit.outputs import atomic_directory, seal

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SST2 = SHARED / "data" / "sst2"
SST2_TEACHER = SHARED / "models" / "minilm-l6-sst2"
CACHE = Path.home() / ".cache" / "edgekit-benchmarks"


def require(path: Path, what: str) -> Path:
    if not path.exists():
        sys.exit(f"{what} not found at {path}: the benchmarks read ../shared next to the checkout.")
    return path


def package_foreign_onnx(onnx_file: Path, reference_artifact: Path, out: Path, precision: str, tool: str) -> Path:
    """Wrap another tool's ONNX graph with the reference's tokenizer and manifest fields."""
    reference = read_manifest(reference_artifact)
    with atomic_directory(out) as staging:
        shutil.copy2(onnx_file, staging / "model.onnx")
        shutil.copy2(reference_artifact / reference.tokenizer["file"], staging / reference.tokenizer["file"])
        note = f"built by {tool}, packaged by benchmarks/common.py"
        fields = {**reference.__dict__, "precision": precision, "model_file": "model.onnx", "parity": None,
                  "metrics": {}, "files": {}, "notes": [note]}  # fmt: skip
        seal(staging, Manifest(**fields))
    return out


def sst2_bundle(model: Path, dev_path: Path, variants: list[str]) -> Path:
    """The edgekit variants of an SST-2 teacher, converted once and cached (gate on SST-2 dev)."""
    from edgekit.convert.pipeline import convert
    from edgekit.convert.recipe import build_recipe
    from edgekit.progress import ConsoleReporter

    out = CACHE / "quantization-sst2" / "edgekit"
    recipe = build_recipe({"model": str(model), "out": str(out), "data": {"path": str(dev_path)},
                           "variants": variants, "bench": {"enabled": False}})  # fmt: skip
    return convert(recipe, ConsoleReporter()).out


def run(command: list[str]) -> None:
    """Runs a tool; a console script of this interpreter's environment (optimum-cli) is found even
    when that environment is not activated (``.venv/bin/python benchmarks/...``)."""
    beside = Path(sys.executable).parent / command[0]
    if shutil.which(command[0]) is None and beside.is_file():
        command = [str(beside), *command[1:]]
    print("+", " ".join(command), flush=True)
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


def dump(document: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
