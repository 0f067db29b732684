"""`pip install edgekit[runtime]` in a fresh venv: no torch, no transformers, and it predicts."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.integration


def _size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink()) / 2**20


def test_runtime_only_venv_loads_an_artifact_made_here(tmp_path, tiny_artifact):
    venv = tmp_path / "runtime-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = subprocess.run([str(python), "-m", "pip", "install", "--quiet", f"{ROOT}[runtime]"],
                             capture_output=True, text=True, timeout=900)  # fmt: skip
    if install.returncode != 0 and "Could not find a version" in install.stderr:
        pytest.skip(f"no package index reachable for the runtime install: {install.stderr[-300:]}")
    assert install.returncode == 0, install.stderr[-3000:]
    script = (
        "import importlib.util, json\n"
        "from edgekit.runtime import EdgeModel\n"
        f"p = EdgeModel.load({str(tiny_artifact)!r}, threads=1).predict('turn off the lights')\n"
        "print(json.dumps({'label': p.label, 'torch': importlib.util.find_spec('torch') is not None,\n"
        "                  'transformers': importlib.util.find_spec('transformers') is not None}))\n"
    )
    result = json.loads(subprocess.run([str(python), "-c", script], capture_output=True, text=True, check=True).stdout)
    assert result == {"label": result["label"], "torch": False, "transformers": False}
    cli = subprocess.run([str(venv / "bin" / "edgekit"), "targets", "show", "host", "--json"], capture_output=True,
                         text=True)  # fmt: skip
    assert cli.returncode == 0 and json.loads(cli.stdout)["name"] == "host"
    # What a device runs for `edgekit bench --remote`: the harness itself, with no torch there.
    results = tmp_path / "device.json"
    bench = subprocess.run([str(venv / "bin" / "edgekit"), "bench", str(tiny_artifact), "--on-device", "--runs", "10",
                            "--warmup", "1", "--out", str(results)], capture_output=True, text=True)  # fmt: skip
    assert bench.returncode == 0, bench.stderr[-2000:]
    assert json.loads(results.read_text())["target"]["mode"] == "measured-on-device"
    size = _size_mb(venv)
    print(f"runtime-only venv: {size:.0f} MB")
    assert size < 400, f"the runtime install grew to {size:.0f} MB"
