"""`edgekit optimize` on W1: the SST-2 MiniLM-L6 teacher, students of 4, 3 and 2 layers, ONNX FP32,
ORT dynamic INT8 and OpenVINO INT8, a 1.0-point budget on SST-2 dev.

    python benchmarks/optimize_sst2.py --build-only   # the search's trials (distillation, conversions), cached
    python benchmarks/optimize_sst2.py --rounds 3     # reuses every trial; the final interleaved benchmark

Students are distilled on all 67,349 SST-2 train rows (1 epoch) unless --max-train-rows N; each
row count has its own cached search folder. --prune ffn=0.5 adds pruned students to the search
(--prune 3:ffn=0.5: the 3-layer one only); --extra NAME=ARTIFACT times an artifact built elsewhere
(e.g. a longer-trained student) in the same final run.

The timing part measures the search's survivors, the PyTorch FP32 teacher and Optimum's one-line
INT8 (`optimum-cli onnxruntime quantize --avx2`, built as in quantization_sst2.py) in ONE run: batch 1,
tokenization included, every dev sentence per round, rounds alternating, each variant in its own process.
Writes benchmarks/results/optimize-sst2.{json,md}.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from common import CACHE, REPO, SST2, SST2_TEACHER, dump, require
from quantization_sst2 import optimum_anchor

from edgekit.data import read_text_dataset
from edgekit.optimize.search import SearchSettings, run_search
from edgekit.optimize.space import parse_prune
from edgekit.progress import ConsoleReporter
from edgekit.targets.host import detect_host

WORK = CACHE / "optimize-sst2"
ANCHOR = "optimum-avx2 (teacher)"


def settings(args: argparse.Namespace, bench: bool) -> SearchSettings:
    # trial_bench_runs=0: the trials run under `heavy` (paused and loaded), so convert's own timings there
    # are not figures; every gate-passing artifact is re-measured in the quiet final run instead.
    dev = require(SST2 / "dev.tsv", "SST-2 dev")
    return SearchSettings(
        model=require(SST2_TEACHER, "The SST-2 teacher"), data=dev,
        train_data=require(SST2 / "train.tsv", "SST-2 train"),
        out=WORK / search_folder(args), target="host",
        max_accuracy_drop=args.max_accuracy_drop, depths=[int(d) for d in args.depths.split(",")],
        variants=["onnx-fp32", "ort-int8-dynamic", "ov-int8"], max_train_rows=args.max_train_rows, epochs=args.epochs,
        threads=args.threads, trial_bench_runs=0, bench=bench, bench_runs=len(read_text_dataset(dev).texts),
        bench_rounds=args.rounds, prunes=[parse_prune(p) for p in args.prune],
        distill={"learning_rate": args.learning_rate} if args.learning_rate else {},
    )  # fmt: skip


def search_folder(args: argparse.Namespace) -> str:
    """One cached search per row count and training schedule (the 1-epoch default keeps its old name)."""
    name = f"search-{args.max_train_rows or 'all'}-rows"
    name += f"-e{args.epochs:g}" if args.epochs != 1.0 else ""
    return name + (f"-lr{args.learning_rate:g}" if args.learning_rate else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build-only", action="store_true", help="run the trials and build the anchor, time nothing")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-train-rows", type=int, help="distil on a seeded subset (default: all 67,349 rows)")
    parser.add_argument("--max-accuracy-drop", type=float, default=1.0)
    parser.add_argument("--depths", default="4,3,2", help="student depths, deepest first")
    parser.add_argument("--epochs", type=float, default=1.0, help="distillation epochs per student")
    parser.add_argument("--learning-rate", type=float, help="distillation learning rate (default: the recipe's)")
    parser.add_argument("--prune", action="append", default=[], help="also pruned students, e.g. ffn=0.5 (repeatable)")
    parser.add_argument("--extra", action="append", default=[], help="NAME=ARTIFACT also timed in the final run")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "optimize-sst2.json")
    args = parser.parse_args()

    if args.build_only:
        result = run_search(settings(args, bench=False), ConsoleReporter())
        optimum_anchor(SST2_TEACHER, result.out / "runs" / "teacher" / "onnx-fp32", WORK, False)
        print(f"built: {len(result.plan.entries)} trials in {result.out}; now run without --build-only")
        return
    search = settings(args, bench=True)
    anchor = WORK / "optimum-avx2-artifact"
    require(anchor, "The Optimum anchor (run with --build-only first)")
    search.baselines = {ANCHOR: str(anchor), **dict(extra.split("=", 1) for extra in args.extra)}
    result = run_search(search, ConsoleReporter())
    document = json.loads((result.out / "optimize.json").read_text())
    host = detect_host()
    document["cpu"] = {"model": host.cpu_model, "isa_features": list(host.isa_features), "cores": host.usable_cores}
    document["workload"] = "W1: SST-2 MiniLM-L6 teacher, SST-2 dev (872 sentences), batch 1, tokenization included"
    dump(document, args.out)
    text = (result.out / "optimize.md").read_text()
    text = text.replace("# edgekit optimize:", "# edgekit optimize on W1 (SST-2):", 1)
    args.out.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
