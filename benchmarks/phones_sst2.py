"""Phone formats on SST-2: ExecuTorch .pte (XNNPACK FP32 and INT8) next to ONNX Runtime INT8.

    python benchmarks/phones_sst2.py [--model DIR] [--variants executorch-fp32,executorch-int8,...]
                                     [--rounds 3] [--threads 2]

Converts the SST-2 teacher (default ../shared/models/minilm-l6-sst2) with SST-2 dev as the
data through `edgekit convert` (strict parity for FP32 kinds, the accuracy gate on all 872
dev sentences at batch 1), then times every runnable variant at batch 1 on the dev set,
each in its own worker process, alternating over the rounds (edgekit/bench). It records
parity, dev accuracy and the drop against the FP32 reference, sizes, and the host's CPU
flags (in the results document's environment). This host is an x86 server CPU, not a phone:
latencies here rank formats on this machine only.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from common import CACHE, REPO, SST2, SST2_TEACHER, dump, require

from edgekit.artifact import load_manifest
from edgekit.bench.harness import BenchSettings, Variant, run_benchmark
from edgekit.bench.report import markdown
from edgekit.bench.results import new_document
from edgekit.data import read_text_dataset
from edgekit.estimate.for_bench import estimated_section
from edgekit.progress import ConsoleReporter
from edgekit.targets.host import detect_host
from edgekit.targets.profiles import load_target

DEFAULT_VARIANTS = ["executorch-fp32", "executorch-int8", "ort-mobile-fp32", "ort-mobile-int8", "coreml",
                    "ort-int8-dynamic"]  # fmt: skip
ESTIMATE_TARGETS = ["iphone-15-pro", "snapdragon-8-gen3-phone", "raspberry-pi-5"]
SHAPES = (16, 32, 64, 128)


def convert_bundle(model: Path, dev_path: Path, variants: list[str]) -> Path:
    from edgekit.convert.pipeline import convert
    from edgekit.convert.recipe import build_recipe

    out = CACHE / "phones-sst2" / "edgekit"
    recipe = build_recipe({"model": str(model), "out": str(out), "data": {"path": str(dev_path)},
                           "variants": ["onnx-fp32", *variants], "bench": {"enabled": False}})  # fmt: skip
    return convert(recipe, ConsoleReporter()).out


def quality_rows(bundle: Path) -> list[dict]:
    """Parity, gate accuracy and drop, batch consistency and build settings of every variant."""
    from edgekit.artifact import read_summary

    summary = read_summary(bundle)
    rows = []
    for name, location in summary["locations"].items():
        manifest = load_manifest(bundle / location)
        gate = manifest.metrics.get("gate") or {}
        entry = next((v for v in summary["variants"] if v["name"] == name), {})
        rows.append({
            "name": name, "location": location, "engine": manifest.engine, "precision": manifest.precision,
            "passed": entry.get("passed", True), "batch_invariant": manifest.batch_invariant,
            "parity_max_abs_diff": (manifest.parity or {}).get("max_abs_diff"),
            "accuracy": gate.get("accuracy"), "reference_accuracy": gate.get("reference_accuracy"),
            "drop_points": gate.get("drop_points"), "agreement": gate.get("agreement"),
            "batch_consistency": gate.get("batch_consistency"), "build": manifest.metrics.get("build"),
            "size_mb": entry.get("size_mb"), "not_runnable": entry.get("not_runnable"),
        })  # fmt: skip
    return rows


def quality_table(rows: list[dict]) -> str:
    lines = ["| variant | engine | precision | parity max abs diff | dev accuracy | drop vs FP32 (points) | agreement "
             "| passed |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    reference = next((r["reference_accuracy"] for r in rows if r["reference_accuracy"] is not None), None)
    for r in rows:
        parity = "—" if r["parity_max_abs_diff"] is None else f"{r['parity_max_abs_diff']:.1e}"
        value = r["accuracy"] if r["accuracy"] is not None else reference  # the reference has no gate of its own
        accuracy = "—" if value is None or r["not_runnable"] else f"{value:.4f}"
        passed = "not gated: not runnable here" if r["not_runnable"] else r["passed"]
        agreement = "—" if r["agreement"] is None else f"{r['agreement']:.4f}"
        drop = "—" if r["drop_points"] is None else f"{r['drop_points']:.2f}"
        lines.append(f"| `{r['name']}` | {r['engine']} | {r['precision']} | {parity} | {accuracy} | {drop} | "
                     f"{agreement} | {passed} |")  # fmt: skip
    return "\n".join(lines)


def estimates_table(estimates: dict[str, dict]) -> str:
    """Per target and variant: the estimated batch-1 latency at each measured sequence length with its band."""
    tokens = sorted({e["tokens"] for s in estimates.values() for v in s["variants"] for e in v.get("estimates", [])})
    lines = ["## Estimated latency on devices that are not here (batch 1; value [low, high] ms)", "",
             "| target | variant | " + " | ".join(f"{n} tokens" for n in tokens) + " |",
             "|---|---|" + "---|" * len(tokens)]  # fmt: skip
    bases = []
    for target, section in estimates.items():
        for entry in section["variants"]:
            if "error" in entry:
                lines.append(f"| {target} | `{entry['name']}` | {entry['error']} |" + " |" * (len(tokens) - 1))
                continue
            by_tokens = {e["tokens"]: e for e in entry["estimates"]}
            cells = [f"{by_tokens[n]['value_ms']:.2f} [{by_tokens[n]['low_ms']:.2f}, {by_tokens[n]['high_ms']:.2f}]"
                     if n in by_tokens else "—" for n in tokens]  # fmt: skip
            lines.append(f"| {target} | `{entry['name']}` | " + " | ".join(cells) + " |")
            if not any(b.startswith(target) for b in bases):
                first = entry["estimates"][0]
                bases.append(f"{target}: {first['basis']}; assumptions: {'; '.join(first['assumptions'])}")
    return "\n".join(lines) + "\n\n" + "\n".join(f"- {b}" for b in bases)


def render(document: dict) -> str:
    text = markdown(document, title="Phone formats on SST-2 dev: ExecuTorch (XNNPACK) and ONNX Runtime INT8")
    text += "\n\n## Parity and accuracy (edgekit convert gate, batch 1, 872 dev sentences)\n\n"
    text += quality_table(document["quality"]) + "\n\n" + estimates_table(document["estimates"])
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=SST2_TEACHER)
    parser.add_argument("--variants", default=",".join(DEFAULT_VARIANTS), help="comma-separated variant kinds")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=0, help="timed batch-1 runs per round; 0: all dev sentences")
    parser.add_argument("--render-only", action="store_true", help="rewrite the .md from the existing .json")
    parser.add_argument("--build-only", action="store_true", help="convert (cached by recipe) and stop: no timing")
    parser.add_argument("--shape-runs", type=int, default=60, help="timed batch-1 runs per sequence length")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "phones-sst2.json")
    args = parser.parse_args()
    if args.render_only:  # re-render the markdown from the results file, no measuring
        text = render(json.loads(args.out.read_text()))
        args.out.with_suffix(".md").write_text(text + "\n")
        print(text)
        return

    model = require(args.model, "The SST-2 teacher")
    dev_path = require(SST2 / "dev.tsv", "SST-2 dev")
    dev = read_text_dataset(dev_path)
    bundle = convert_bundle(model, dev_path, [v for v in args.variants.split(",") if v and v != "onnx-fp32"])
    rows = quality_rows(bundle)
    if args.build_only:
        print(quality_table(rows))
        return
    from edgekit.runtime.engines import get_engine

    runnable = [r for r in rows if r["passed"] and get_engine(r["engine"]).unavailable_reason() is None]
    variants = [Variant("pytorch-fp32", "pytorch", model)]
    variants += [Variant(r["name"], "artifact", bundle / r["location"]) for r in runnable]
    settings = BenchSettings(threads=args.threads, runs=args.runs or len(dev), warmup=50, rounds=args.rounds,
                             sequence_lengths=SHAPES, shape_runs=args.shape_runs)  # fmt: skip
    summaries = run_benchmark(variants, dev, settings, on_progress=lambda m: print(m, flush=True))
    folders = [bundle / r["location"] for r in rows if r["passed"] or r["not_runnable"]]  # Core ML: estimated only
    document = new_document({"name": "host", "mode": "measured-on-device"},
                            {**settings.__dict__, "data": f"SST-2 dev ({len(dev)} sentences)"}, summaries)  # fmt: skip
    document["quality"] = rows
    document["estimates"] = {t: estimated_section(load_target(t), detect_host(), args.threads, folders, summaries)
                             for t in ESTIMATE_TARGETS}  # fmt: skip
    dump(document, args.out)
    text = render(document)
    args.out.with_suffix(".md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
