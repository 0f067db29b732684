"""What the SST-2 distillation benchmarks share: seeded transfer subsets, one `edgekit convert` per
model (distilling first for a student) read back into a row, and parameter counts."""

from __future__ import annotations

import time
from pathlib import Path

from common import SST2, require

from edgekit.artifact import load_manifest, read_summary
from edgekit.data import read_text_dataset
from edgekit.progress import ConsoleReporter


def train_subset(out: Path, rows: int, seed: int = 0) -> Path:
    """A seeded subset of SST-2 train written to ``out`` once (a TSV the distillation reads)."""
    if not out.is_file():
        subset = read_text_dataset(require(SST2 / "train.tsv", "SST-2 train")).sample(rows, seed=seed)
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_suffix(".partial")
        partial.write_text(
            "text\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in zip(subset.texts, subset.labels, strict=True))
        )
        partial.rename(out)
    return out


def convert_and_read(fields: dict) -> dict:
    """Run one convert recipe (reusing what is built); its folder, wall time, per-variant gate figures
    and the distillation record."""
    from edgekit.convert.pipeline import convert
    from edgekit.convert.recipe import build_recipe

    started = time.perf_counter()
    result = convert(build_recipe(fields), ConsoleReporter(), resume=True)
    wall = time.perf_counter() - started
    summary = read_summary(result.out)
    variants = {}
    for variant, location in summary["locations"].items():
        manifest = load_manifest(result.out / location)
        gate = manifest.metrics.get("gate") or {}
        entry = next(v for v in summary["variants"] if v["name"] == variant)
        variants[variant] = {"location": location, "accuracy": gate.get("accuracy", summary.get("reference_accuracy")),
                             "agreement_with_fp32": gate.get("agreement"), "size_mb": entry.get("size_mb"),
                             "passed": entry.get("passed", True),
                             "parity_max_abs_diff": (manifest.parity or {}).get("max_abs_diff")}  # fmt: skip
    record = (result.summary.distillation if result.summary else None) or {}
    return {"out": str(result.out), "convert_wall_s": round(wall, 1), "variants": variants, "distillation": record}


def parameter_count(folder: Path) -> int:
    """Parameters of an HF folder's weights, read from the safetensors headers (nothing loaded)."""
    from safetensors import safe_open

    total = 0
    for file in folder.glob("*.safetensors"):
        with safe_open(str(file), "np") as weights:
            for key in weights.keys():  # noqa: SIM118 (a safe_open handle, not a dict)
                count = 1
                for dim in weights.get_slice(key).get_shape():
                    count *= int(dim)
                total += count
    return total
