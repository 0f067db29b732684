"""Students that keep accuracy: layer dropping, head pruning, FFN pruning and distillation losses
measured one at a time and together on W1 (the SST-2 MiniLM-L6 teacher, SST-2 dev).

    python benchmarks/students_sst2.py --build-only [--train-rows 20000] [--only NAME ...]   # cached
    python benchmarks/students_sst2.py [--rounds 3] [--threads 2]        # timing + results files

Every student is made by `edgekit convert` with a `distill:` section (layers of the teacher,
optionally `distill.prune`, then distillation from the teacher on a seeded subset of SST-2
train: 1 epoch, batch 32, max length 64, soft-label KL at T=2 + hard-label CE unless a row
says otherwise; best of two dev evaluations) and `variants: [onnx-fp32, ort-int8-dynamic]`
(parity, then the accuracy gate on all 872 dev sentences at batch 1). The timing part runs
every student's ort-int8-dynamic and the teacher's, batch 1, tokenization included, each in its
own process, interleaved over rounds. Expensive parts are cached under
~/.cache/edgekit-benchmarks/students-sst2/.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bundles import convert_and_read, parameter_count
from bundles import train_subset as seeded_subset
from common import CACHE, REPO, SST2, SST2_TEACHER, dump, require

from edgekit.data import read_text_dataset

WORK = CACHE / "students-sst2"
RESULTS = REPO / "benchmarks" / "results" / "students-sst2.json"
KINDS = ["onnx-fp32", "ort-int8-dynamic"]
# Built in this order: the most informative first (the baseline, then each pruning alone, then together).
STUDENTS: dict[str, dict] = {
    "L2": {"student_layers": 2},
    "L3-heads0.5-ffn0.5": {"student_layers": 3, "prune": {"heads": 0.5, "ffn": 0.5}},
    "L6-heads0.5": {"student_layers": 6, "prune": {"heads": 0.5}},
    "L6-ffn0.5": {"student_layers": 6, "prune": {"ffn": 0.5}},
    "L2-hidden-attention": {"student_layers": 2, "weights": {"hidden": 1.0, "attention": 1.0}},
    "L2-map-0-5": {"student_layers": [0, 5]},
    "L2-map-1-5": {"student_layers": [1, 5]},
    "L3": {"student_layers": 3},
}


def train_subset(rows: int, seed: int = 0) -> Path:
    """A seeded subset of SST-2 train as its own TSV (the transfer data of every student)."""
    return seeded_subset(WORK / f"train-{rows}-seed{seed}.tsv", rows, seed)


def bundle(name: str, distill: dict | None, dev: Path, subset: Path | None, max_steps: int | None = None) -> dict:
    """Convert the teacher (distill None) or distil + convert one student; what it measured."""
    fields = {"model": str(SST2_TEACHER), "out": str(WORK / "bundles" / name), "data": {"path": str(dev)},
              "variants": KINDS, "bench": {"enabled": False}}  # fmt: skip
    if distill is not None and subset is not None:
        steps = max_steps or -(-(subset.read_text().count("\n") - 1) // 32)
        fields["distill"] = {**distill, "data": {"path": str(subset)}, "epochs": 1.0, "batch_size": 32,
                             "max_steps": max_steps, "max_length": 64,
                             "eval_steps": max(1, -(-steps // 2)),  # two dev evaluations
                             "work_dir": str(WORK / "work" / name)}  # fmt: skip
    built = convert_and_read(fields)
    checkpoint = WORK / "work" / name / "distill" / "student" if distill is not None else SST2_TEACHER
    record = built.pop("distillation")
    return {"name": name, "distill": distill, **built, "parameters": parameter_count(checkpoint),
            "distillation": {k: v for k, v in record.items() if k not in ("teacher", "cache_key")} or None}  # fmt: skip


def build(args: argparse.Namespace) -> dict:
    dev = require(SST2 / "dev.tsv", "SST-2 dev")
    require(SST2_TEACHER, "The MiniLM-L6 SST-2 teacher")
    subset = train_subset(args.train_rows)
    built = _previous()
    rows = {"teacher": bundle("teacher", None, dev, None)}
    for name, distill in STUDENTS.items():
        if args.only and name not in args.only:
            if name in built:
                rows[name] = built[name]  # keep what an earlier --only run built
            continue
        print(f"== {name}: {json.dumps(distill)}", flush=True)
        rows[name] = bundle(name, distill, dev, subset, args.max_steps)
        print(json.dumps({name: rows[name]["variants"], "wall_s": rows[name]["convert_wall_s"]}), flush=True)
        _save(rows, args)  # a later student failing keeps the earlier ones
    return _save(rows, args)


def _previous() -> dict:
    path = WORK / "built.json"
    return {m["name"]: m for m in json.loads(path.read_text())["models"]} if path.is_file() else {}


def _save(rows: dict, args: argparse.Namespace) -> dict:
    built = {"train_rows": args.train_rows, "max_steps": args.max_steps, "models": list(rows.values())}
    (WORK / "built.json").write_text(json.dumps(built, indent=2) + "\n")
    return built


def time_int8(built: dict, args: argparse.Namespace) -> tuple[list[dict], object]:
    from edgekit.bench.harness import BenchSettings, Variant, run_benchmark

    chosen = [Variant(f"{m['name']}-int8", "artifact", Path(m["out"]) / m["variants"]["ort-int8-dynamic"]["location"])
              for m in built["models"] if "ort-int8-dynamic" in m["variants"]]  # fmt: skip
    dev = read_text_dataset(SST2 / "dev.tsv")
    settings = BenchSettings(threads=args.threads, runs=len(dev), warmup=50, rounds=args.rounds)
    return run_benchmark(chosen, dev, settings, on_progress=lambda m: print(m, flush=True)), settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-rows", type=int, default=20000, help="seeded SST-2 train subset (transfer data)")
    parser.add_argument(
        "--max-steps",
        type=int,
        default=None,
        help="a step budget per student instead of the full epoch (batch 32); for a busy machine",
    )
    parser.add_argument("--only", nargs="*", choices=list(STUDENTS), help="build only these students")
    parser.add_argument("--build-only", action="store_true", help="distil and convert (cached), then stop")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if args.build_only:
        build(args)
        return
    # The timing run builds nothing (it runs under `quiet`, alone): it times what --build-only made.
    built = json.loads((WORK / "built.json").read_text()) if (WORK / "built.json").is_file() else None
    if not built:
        raise SystemExit("Nothing built yet: run `python benchmarks/students_sst2.py --build-only` first.")
    missing = [name for name in STUDENTS if name not in {m["name"] for m in built["models"]}]
    if missing:
        print(f"not built yet, left out of this run: {', '.join(missing)}", flush=True)
    from students_report import render

    from edgekit.bench.results import new_document

    summaries, settings = time_int8(built, args)
    document = new_document({"name": "host", "mode": "measured-on-device"},
                            {**settings.__dict__, "data": "SST-2 dev (872 sentences)"}, summaries)  # fmt: skip
    # No build-machine paths in a results file: bundles by name.
    document["build"] = {**built, "models": [{**m, "out": Path(m["out"]).name} for m in built["models"]]}
    document["variants"] = [{**v, "path": Path(v["path"]).parent.name} for v in document["variants"]]
    dump(document, RESULTS)
    text = render(document)
    RESULTS.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
