"""Which ORT static INT8 setting keeps EfficientNet-Lite0's ImageNet top-5 labels on the 9 real photos
of ``benchmarks/image_efficientnet.py`` (its ImageNet check): calibration set, calibration method,
activation symmetry, and mixed precision (the last K MBConv blocks, the final 1x1 conv and the
classifier kept in FP32), each built by edgekit's own ``ort-int8-static`` kind.

    light python benchmarks/imagenet_int8.py --build-only     # build + score every setting (cached)
    quiet python benchmarks/imagenet_int8.py                  # + batch-1 latency, writes the results

Calibration never uses the scored photos (except the ``leak-48`` row, there to show what that
hides): ``image_efficientnet.calibration_crops`` of scikit-image's other real photos (two colour
motorcycle views, ten grey photos as RGB). Scores against PyTorch FP32 on the 9 photos: top-5 label
sets kept (of 45), top-1 kept (of 9), Kendall tau and Spearman rho of the FP32 top-5's order under
INT8 (mean over photos), and the misses (which label left, which came in, their FP32 logit gap).
Latency: batch 1 at 224 px, model only (pre-processed tensor), every setting's ONNX Runtime session
(the runtime's own engine, 2 threads) in one process, interleaved over ``--rounds``: the median of
all calls. A quick comparison between settings, not the isolated per-process harness.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from benign_changes import changed_logits, stable_kept, stable_top5
from common import CACHE, REPO, dump
from image_efficientnet import IMAGENET_SPEC, calibration_crops, convert_variants, photos, reference_logits
from quantization_cnn import build

WORK = CACHE / "imagenet-int8"
# name -> (count, grey photos too, augmented, crops of the scored photos instead)
CALIBRATION_SETS = {
    "leak-48": (48, True, True, True),
    "plain-12": (12, True, False, False),
    "colour-48": (48, False, True, False),
    "other-48": (48, True, True, False),
    "other-96": (96, True, True, False),
    "other-192": (192, True, True, False),
}


AUTO_NODES = (4, 8, 16, 24, 32)
AUTO_ROUNDS_NODES = (16, 24, 32)


def _leading(blocks: int) -> dict[str, Any]:
    """The stem and the first ``blocks`` MBConv blocks in FP32 (block 0 has 2 convs, the others 3), and the
    classifier: the variant's own ``exclude_leading_convs`` option."""
    return {"exclude_leading_convs": 1 + 2 + 3 * (blocks - 1), "exclude_last_matmul": True}


# (label, calibration set, ort-int8-static options, kept in FP32: (last K blocks, final 1x1 conv) or None;
# a tail also keeps the classifier in FP32)
SETTINGS: list[tuple[str, str, dict[str, Any], tuple[int, bool] | None]] = [
    ("minmax, crops of the scored photos (leak)", "leak-48", {}, None),
    ("minmax, 12 whole other photos", "plain-12", {}, None),
    ("minmax, 48 crops of the 2 colour photos", "colour-48", {}, None),
    ("minmax, 48 crops of 12 other photos", "other-48", {}, None),
    ("minmax, 96 crops", "other-96", {}, None),
    ("minmax, 192 crops", "other-192", {}, None),
    ("percentile 99.99, 96 crops", "other-96", {"calibration_method": "percentile", "percentile": 99.99}, None),
    ("percentile 99.999, 96 crops", "other-96", {"calibration_method": "percentile"}, None),
    ("entropy, 96 crops", "other-96", {"calibration_method": "entropy"}, None),
    ("symmetric activations, 96 crops", "other-96", {"symmetric_activations": True}, None),
    ("stem + classifier FP32, 96 crops", "other-96", {"exclude_first_conv": True, "exclude_last_matmul": True}, None),
    ("K=0: final 1x1 conv + classifier FP32", "other-96", {}, (0, True)),
    ("K=1: last block + final conv + classifier FP32", "other-96", {}, (1, True)),
    ("K=2: last 2 blocks + final conv + classifier FP32", "other-96", {}, (2, True)),
    ("K=3: last 3 blocks + final conv + classifier FP32", "other-96", {}, (3, True)),
    ("K=1 blocks only (final conv INT8)", "other-96", {}, (1, False)),
    ("Conv + Gemm only (Clip, Add, pooling FP32)", "other-96", {"op_types": ["Conv", "Gemm"]}, None),
    ("K=5: last 5 blocks + final conv + classifier FP32", "other-96", {}, (5, True)),
    ("K=3 + stem FP32", "other-96", {"exclude_first_conv": True}, (3, True)),
    ("stem + first 2 blocks + classifier FP32", "other-96", _leading(2), None),
    ("stem + first 4 blocks + classifier FP32", "other-96", _leading(4), None),
    ("stem + first 8 blocks + classifier FP32", "other-96", _leading(8), None),
    ("depthwise convs FP32", "other-96", {"exclude_depthwise": True}, None),
    ("stem + first 6 blocks + classifier FP32", "other-96", _leading(6), None),
    ("stem + first 12 blocks + classifier FP32", "other-96", _leading(12), None),
    ("stem + first 2 blocks + classifier FP32, 192 crops", "other-192", _leading(2), None),
    # Sensitivity-guided (edgekit.quantize.sensitivity): the N nodes whose FP32 most raises the logits' SQNR on
    # 32 of the calibration crops, each measured alone; the scored photos are never looked at.
    *[
        (f"auto_fp32: {n} most sensitive nodes FP32", "other-96", {"auto_fp32": {"max_nodes": n}}, None)
        for n in AUTO_NODES
    ],
    *[
        (
            f"auto_fp32: {n} nodes FP32, greedy in 4 rounds",
            "other-96",
            {"auto_fp32": {"max_nodes": n, "rounds": 4}},
            None,
        )
        for n in AUTO_ROUNDS_NODES
    ],  # fmt: skip
    ("minmax, 96 crops + bias correction", "other-96", {"bias_correction": True}, None),
    (
        "stem + first 8 blocks + classifier FP32 + bias correction",
        "other-96",
        {**_leading(8), "bias_correction": True},
        None,
    ),  # fmt: skip
    (
        "stem + first 2 blocks + classifier FP32 + bias correction",
        "other-96",
        {**_leading(2), "bias_correction": True},
        None,
    ),  # fmt: skip
    # Quantization-aware fine-tuning against the FP32 logits on the calibration crops (edgekit.quantize.qat).
    ("QAT (8 epochs), all INT8", "other-96", {"qat": {}}, None),
    ("QAT (8 epochs) + stem + first 8 blocks + classifier FP32", "other-96", {**_leading(8), "qat": {}}, None),
    ("QAT (8 epochs) at learning rate 3e-6, all INT8", "other-96", {"qat": {"learning_rate": 3e-6}}, None),
    (
        "QAT (8 epochs) + stem + first 8 blocks + classifier FP32 + bias correction",
        "other-96",
        {**_leading(8), "qat": {}, "bias_correction": True},
        None,
    ),  # fmt: skip
    (
        "QAT (16 epochs) + stem + first 8 blocks + classifier FP32",
        "other-96",
        {**_leading(8), "qat": {"epochs": 16}},
        None,
    ),  # fmt: skip
    (
        "QAT (8 epochs) on 192 crops + stem + first 8 blocks + classifier FP32",
        "other-192",
        {**_leading(8), "qat": {}},
        None,
    ),  # fmt: skip
    # How much FP32 the 45/45 top-5 needs: three photos' FP32 rank-5/6 gaps are 0.03-0.06 logits.
    *[
        (
            f"stem + first {n} blocks + classifier FP32 + bias correction",
            "other-96",
            {**_leading(n), "bias_correction": True},
            None,
        )
        for n in (10, 12, 14)
    ],  # fmt: skip
    # The FP32 prefix chosen from the calibration crops (edgekit.quantize.prefix_search), never the photos.
    *[
        (
            f"leading_fp32: fewest leading convs reaching {db} dB",
            "other-96",
            {"leading_fp32": {"target_sqnr_db": db}},
            None,
        )
        for db in (20, 25, 30)
    ],  # fmt: skip
]


def calibration_set(name: str) -> list[str]:
    count, grey, augment, leak = CALIBRATION_SETS[name]
    folder = WORK / "calibration" / name
    if not folder.exists():
        sources = [photos()[k] for k in sorted(photos())] if leak else None
        calibration_crops(folder.with_suffix(".partial"), count, grey=grey, augment=augment, sources=sources)
        folder.with_suffix(".partial").rename(folder)
    return sorted(str(p) for p in folder.glob("*.png"))


def tail_nodes(model: Path, blocks: int, final_conv: bool) -> list[str]:
    """Node names of the last ``blocks`` MBConv blocks (``/model/_blocks.N/...``) and the final 1x1 conv
    with its activation (``/model/_conv_head``, ``/model/_swish_1``), read from the exported graph."""
    import onnx

    names = [node.name for node in onnx.load(str(model), load_external_data=False).graph.node]
    indices = sorted({int(n.split("/_blocks.")[1].split("/")[0]) for n in names if "/_blocks." in n})
    prefixes = [f"/model/_blocks.{i}/" for i in indices[len(indices) - blocks :]] if blocks else []
    prefixes += ["/model/_conv_head/", "/model/_swish_1/"] if final_conv else []
    return [n for n in names if n.startswith(tuple(prefixes))]


def score(logits: np.ndarray, reference: np.ndarray, names: list[str]) -> dict:
    from scipy.stats import kendalltau, spearmanr

    top5, ref5 = np.argsort(-logits, axis=1)[:, :5], np.argsort(-reference, axis=1)[:, :5]
    taus, rhos, misses = [], [], []
    for i, name in enumerate(names):
        taus.append(kendalltau(reference[i, ref5[i]], logits[i, ref5[i]]).statistic)
        rhos.append(spearmanr(reference[i, ref5[i]], logits[i, ref5[i]]).statistic)
        order, int8_order = np.argsort(-reference[i]).tolist(), np.argsort(-logits[i]).tolist()
        for left, came in zip(sorted(set(ref5[i]) - set(top5[i])), sorted(set(top5[i]) - set(ref5[i])), strict=True):
            misses.append({"photo": name, "left": int(left), "left_fp32_rank": order.index(left) + 1,
                           "left_int8_rank": int8_order.index(left) + 1, "came": int(came),
                           "came_fp32_rank": order.index(came) + 1,
                           "fp32_logit_gap": round(float(reference[i, left] - reference[i, came]), 4)})  # fmt: skip
    return {"top5_kept": int(sum(len(set(a) & set(b)) for a, b in zip(top5, ref5, strict=True))),
            "top1_kept": int((top5[:, 0] == ref5[:, 0]).sum()), "kendall_tau": round(float(np.mean(taus)), 3),
            "spearman_rho": round(float(np.mean(rhos)), 3), "misses": misses,
            "rms_dlogit": round(float(np.sqrt(np.mean((logits - reference) ** 2))), 4)}  # fmt: skip


def fp32_margins(reference: np.ndarray, names: list[str]) -> list[dict]:
    """Per photo: the FP32 logit gap between ranks 5 and 6 (a near-tie INT8 may swap)."""
    ordered = -np.sort(-reference, axis=1)
    return [{"photo": n, "gap_5_6": round(float(ordered[i, 4] - ordered[i, 5]), 4),
             "gap_4_5": round(float(ordered[i, 3] - ordered[i, 4]), 4)} for i, n in enumerate(names)]  # fmt: skip


def build_setting(
    number: int, reference: Path, evaluate: list, truth: np.ndarray, names: list[str], stable: list[set[int]]
) -> dict:
    label, calibration, options, tail = SETTINGS[number - 1]
    given = dict(options)
    if tail is not None:
        given["exclude_nodes"] = tail_nodes(reference / "model.onnx", *tail)
        given["exclude_last_matmul"] = True
    chosen = [calibration, given] + ([] if host_reduce_range() is False else ["reduce_range"])  # older tags kept
    tag = hashlib.sha256(json.dumps(chosen, sort_keys=True).encode()).hexdigest()[:8]
    folder = WORK / "settings" / f"{number:02d}-{tag}"
    record = {}
    if not folder.exists():
        source = imagenet_source() if "qat" in given else None
        record = build("ort-int8-static", given, reference, calibration_set(calibration), folder, source)
        kept = {
            "build_s": record["build_s"],
            **{k: record["settings"].get(k) for k in ("auto_fp32", "qat", "leading_fp32")},
        }
        (folder.parent / f"{folder.name}.build.json").write_text(json.dumps(kept))
    from edgekit.runtime import EdgeModel

    logits = np.asarray(EdgeModel.load(folder).logits(evaluate), dtype=np.float32)
    built = json.loads((folder.parent / f"{folder.name}.build.json").read_text())
    build_s, auto, qat = built["build_s"], built.get("auto_fp32"), built.get("qat")
    shown = {k: v for k, v in given.items() if k != "exclude_nodes"}
    excluded = len(auto["chosen"]) if auto else len(given.get("exclude_nodes", []))
    return {"number": number, "setting": label, "calibration": calibration, "options": shown, "tail": tail,
            "excluded_nodes": excluded, "folder": folder.name, "build_s": build_s, "auto_fp32": auto, "qat": qat,
            "leading_fp32": built.get("leading_fp32"),
            "runtime_float_convs": runtime_float_convs(folder / "model.onnx"),
            "calibration_sqnr_db": calibration_sqnr(reference, folder / "model.onnx"),
            **score(logits, truth, names), "stable_top5_kept": stable_kept(logits, stable)}  # fmt: skip


def host_reduce_range() -> bool:
    """The host profile's choice, which every setting here uses unless it sets ``reduce_range`` itself."""
    from edgekit.targets.profiles import load_target

    return load_target("host").precision.quantization.reduce_range


def imagenet_source() -> Any:
    """The PyTorch EfficientNet-Lite0 the reference was exported from (QAT fine-tunes a copy of it)."""
    from edgekit.convert.image_sources import FactorySpec, load_factory_source

    return load_factory_source(FactorySpec(**IMAGENET_SPEC))


_SCORED: dict[str, Any] = {}


def calibration_sqnr(reference: Path, model: Path) -> float:
    """Logit SQNR (dB) vs ONNX FP32 on the 32 calibration crops that ``auto_fp32`` scores by default (seed 0):
    the measure the automatic choice maximises, for every row, next to the photos' top-5."""
    from edgekit.quantize.calibration import calibration_feeds
    from edgekit.quantize.sensitivity import AutoFp32, model_logits, scoring_feeds, sqnr_db

    if not _SCORED:
        feeds = calibration_feeds(reference, calibration_set("other-96"))
        _SCORED["feeds"] = scoring_feeds(feeds, AutoFp32(max_nodes=1))[1]
        _SCORED["truth"] = model_logits(reference / "model.onnx", _SCORED["feeds"])
    return round(sqnr_db(_SCORED["truth"], model_logits(model, _SCORED["feeds"])), 2)


def runtime_float_convs(model: Path) -> int:
    """Convolutions ONNX Runtime runs in FP32 after its own graph optimisation (the runtime's level): its
    WeightBiasQuantization pass re-quantizes (per-tensor) an FP32 Conv that sits between a DequantizeLinear
    and a QuantizeLinear, so a node kept FP32 in the file is not always FP32 when it runs."""
    import tempfile

    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as scratch:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.optimized_model_filepath = str(Path(scratch) / "optimized.onnx")
        options.log_severity_level = 3
        ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        graph = onnx.load(options.optimized_model_filepath).graph
    return sum(1 for node in graph.node if node.op_type in ("Conv", "FusedConv") or "Conv" in node.op_type
               and not node.op_type.startswith("QLinear"))  # fmt: skip


def latency(folders: dict[str, Path], feed: dict, rounds: int, runs: int) -> dict[str, float]:
    """Median batch-1 ms per model, sessions interleaved round by round in this one process."""
    from edgekit.runtime.engines.onnxruntime_engine import OnnxRuntimeEngine

    engines = {key: OnnxRuntimeEngine(folder / "model.onnx", threads=2) for key, folder in folders.items()}
    samples: dict[str, list[float]] = {key: [] for key in engines}
    for _ in range(rounds):
        for key, engine in engines.items():
            for _ in range(3):
                engine.run(feed)  # warm the caches after the other sessions ran
            for _ in range(runs):
                started = time.perf_counter()
                engine.run(feed)
                samples[key].append(1000 * (time.perf_counter() - started))
    return {key: round(float(np.median(values)), 2) for key, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build-only", action="store_true", help="build and score every setting, no timing")
    parser.add_argument("--only", default=None, help="comma-separated setting numbers (1-based)")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "imagenet-int8.json")
    parser.add_argument("--rescore", action="store_true",
                        help="add the stable-label columns to --out (a run from any host) from its recorded misses, "
                             "without building or timing anything")  # fmt: skip
    parser.add_argument("--host", type=json.loads, default=None,
                        help="with --rescore, for a run that did not record its CPU: "
                             '\'{"isa_class": ..., "isa_features": [...], "reduce_range": ...}\'')  # fmt: skip
    args = parser.parse_args()
    reference = WORK / "reference"  # one variant: convert writes the artifact itself there
    if not (reference / "manifest.json").exists():
        convert_variants(IMAGENET_SPEC, Path(calibration_set("plain-12")[0]).parent, reference, ["onnx-fp32"],
                         atol=1e-3)  # fmt: skip
    images = photos()
    names = sorted(images)
    evaluate = [images[n] for n in names]
    truth_file = WORK / "pytorch-logits.npy"
    if not truth_file.exists():
        np.save(truth_file, reference_logits(IMAGENET_SPEC, evaluate))
    truth = np.load(truth_file)
    changed = changed_logits(lambda batch: reference_logits(IMAGENET_SPEC, batch), evaluate)
    stable = stable_top5(truth, changed)
    fp32_changed = [{"change": name, **score(logits, truth, names), "stable_top5_kept": stable_kept(logits, stable)}
                    for name, logits in changed.items()]  # fmt: skip
    stability = {"stable_labels": [sorted(s) for s in stable], "fp32_after_change": fp32_changed}
    if args.rescore:
        rescore(args.out, stability, names, args)
        return
    chosen = [int(x) for x in args.only.split(",")] if args.only else range(1, len(SETTINGS) + 1)
    rows = []
    for number in chosen:
        rows.append(build_setting(number, reference, evaluate, truth, names, stable))
        print(json.dumps({k: v for k, v in rows[-1].items() if k != "misses"}), flush=True)
    if not args.build_only:
        from edgekit.artifact import read_manifest
        from edgekit.runtime.image_preprocess import ImagePreprocessor

        feed = ImagePreprocessor.for_artifact(reference, read_manifest(reference))([evaluate[0]])
        folders = {"onnx-fp32": reference, **{str(r["number"]): WORK / "settings" / r["folder"] for r in rows}}
        timed = latency(folders, feed, args.rounds, args.runs)
        for row in rows:
            row["p50_ms"] = timed[str(row["number"])]
        write(args.out, rows, timed["onnx-fp32"], fp32_margins(truth, names), stability, this_host(), args)


def rescore(out: Path, stability: dict, names: list[str], args: argparse.Namespace) -> None:
    """The stable-label count of every row of an earlier run, from its misses (each label that left FP32's
    top-5 is recorded there): FP32's logits, the photos and their changes are the same on every host."""
    saved = json.loads(out.read_text())
    stable = dict(zip(names, map(set, stability["stable_labels"]), strict=True))
    for row in saved["settings"]:
        lost = sum(1 for m in row["misses"] if m["left"] in stable[m["photo"]])
        row["stable_top5_kept"] = sum(map(len, stable.values())) - lost
    cpu = saved.get("host") or args.host
    if cpu is None:
        raise SystemExit(f"{out} does not record its host's CPU: pass --host with what it ran on")
    args.rounds, args.runs = saved["timing"]["rounds"], saved["timing"]["runs_per_round"]
    write(out, saved["settings"], saved["onnx_fp32_p50_ms"], saved["fp32_margins"], stability, cpu, args)


def this_host() -> dict:
    from edgekit.targets.preflight import isa_class
    from edgekit.targets.profiles import load_target

    host = load_target("host")
    return {"isa_class": isa_class(host.arch, host.isa_features), "isa_features": list(host.isa_features),
            "reduce_range": host_reduce_range()}  # fmt: skip


def write(
    out: Path,
    rows: list[dict],
    fp32_ms: float,
    margins: list[dict],
    stability: dict,
    cpu: dict,
    args: argparse.Namespace,
) -> None:
    dump({"host": cpu, "settings": rows, "onnx_fp32_p50_ms": fp32_ms, "fp32_margins": margins, **stability,
          "timing": {"batch": 1, "size": 224, "threads": 2, "rounds": args.rounds, "runs_per_round": args.runs,
                     "mode": "one process, sessions interleaved, model only"}}, out)  # fmt: skip
    stable_total = sum(map(len, stability["stable_labels"]))
    default = next((r["p50_ms"] for r in rows if r["calibration"] == "other-96" and not r["options"]
                    and r["tail"] is None), float("nan"))  # fmt: skip
    lines = ["# ORT static INT8 settings for EfficientNet-Lite0's ImageNet top-5 on 9 real photos", "",
             f"Reference: PyTorch FP32. ONNX FP32 batch-1 p50 {fp32_ms:.2f} ms (same interleaved run). Host: "
             f"{cpu['isa_class']} ({', '.join(cpu['isa_features'])}); weights reduce_range "
             f"{'on' if cpu['reduce_range'] else 'off'} unless a row sets it.", "",
             f"| # | setting | calibration | top-5 kept /45 | stable top-5 kept /{stable_total} | top-1 kept /9 | "
             "Kendall tau | Spearman rho | RMS Δlogit | SQNR dB (32 calib. crops) | FP32 convs at run time | p50 ms | "
             "vs default INT8 | build s |", "|---" * 14 + "|"]  # fmt: skip
    for r in rows:
        lines.append(f"| {r['number']} | {r['setting']} | {r['calibration']} | {r['top5_kept']} | "
                     f"{r['stable_top5_kept']} | {r['top1_kept']} | "
                     f"{r['kendall_tau']:.3f} | {r['spearman_rho']:.3f} | {r['rms_dlogit']} | "
                     f"{r['calibration_sqnr_db']} | {r['runtime_float_convs']} | {r['p50_ms']:.2f} | "
                     f"{r['p50_ms'] / default:.2f}x | {r['build_s']} |")  # fmt: skip
    lines += ["", "PyTorch FP32 itself after a change to the photo, scored the same way (stable labels: those in "
              "PyTorch FP32's top-5 that stay there under every change but the mirror; "
              "`benchmarks/benign_changes.py`):",
              "", f"| change | top-5 kept /45 | stable top-5 kept /{stable_total} | top-1 kept /9 | RMS Δlogit |",
              "|---|---|---|---|---|",
              *[f"| {c['change']} | {c['top5_kept']} | {c['stable_top5_kept']} | {c['top1_kept']} | {c['rms_dlogit']} |"
                for c in stability["fp32_after_change"]]]  # fmt: skip
    lines += ["", "FP32 logit gaps at the top-5 boundary (PyTorch):", "", "| photo | rank 4 - 5 | rank 5 - 6 |",
              "|---|---|---|", *[f"| {m['photo']} | {m['gap_4_5']} | {m['gap_5_6']} |" for m in margins]]  # fmt: skip
    lines += ["", "Nodes kept FP32 by `auto_fp32` (logit SQNR gain in dB when each alone is FP32, on 32 calibration "
              "crops; greedy rows: the gain in the round that chose it):", ""]  # fmt: skip
    for r in rows:
        if r.get("auto_fp32"):
            auto = r["auto_fp32"]
            picks = ", ".join(f"{c['node'].replace('/model/', '').replace('/Conv', '')} {c['gain_db']}"
                              for c in auto["chosen"])  # fmt: skip
            lines.append(f"- #{r['number']} ({auto['all_int8_sqnr_db']} → {auto['result_sqnr_db']} dB, "
                         f"{auto['candidates']} candidates): {picks}")  # fmt: skip
    searched = [r for r in rows if r.get("leading_fp32")]
    if searched:
        lines += ["", "Prefixes tried by `leading_fp32` (leading convolutions in FP32: logit SQNR dB on 32 calibration "
                  "crops):", ""]  # fmt: skip
        for r in searched:
            found = r["leading_fp32"]
            tried = ", ".join(f"{k}: {v}" for k, v in found["tried"].items())
            lines.append(f"- #{r['number']} (target {found['target_sqnr_db']} dB): chose "
                         f"{found['exclude_leading_convs']} of {found['convolutions']}; tried {tried}")  # fmt: skip
    lines += ["", "Misses (label left the top-5 / label came in, FP32 ranks, FP32 logit gap):", ""]
    for r in rows:
        for m in r["misses"]:
            lines.append(f"- #{r['number']} {m['photo']}: {m['left']} (FP32 rank {m['left_fp32_rank']}, INT8 "
                         f"{m['left_int8_rank']}) -> {m['came']} (FP32 rank {m['came_fp32_rank']}), "
                         f"gap {m['fp32_logit_gap']}")  # fmt: skip
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
