"""Where does dynamic INT8's time go, and does fusing the transformer before quantizing pay?

    python benchmarks/int8_profile.py --build-only      # conversions, cached (run under `heavy`)
    python benchmarks/int8_profile.py [--rounds 3]      # profile + timing (run under `quiet`)

Teacher: the SST-2 MiniLM-L6 teacher (common.SST2_TEACHER; SST-2 dev 0.8899). Every INT8 form is built by the
``ort-int8-dynamic`` variant's own code (``fuse``, ``per_channel``, ``reduce_range`` options), plus two
forms made only here to measure choices the variant does not offer (u8 weights, FP32 embeddings).

1. Per-op profile: ONNX Runtime's built-in profiler (``SessionOptions.enable_profiling``), session
   options as the runtime's engine sets them, batch 1, SST-2 dev sentences tokenized by the runtime's
   tokenizer; the kernel time of every "Node" event summed per operator type (after ORT's load-time
   fusions: the operator types are those that ran).
2. Batch-1 p50 and accuracy through ``edgekit.bench.harness.run_benchmark``: each variant in its own
   process, alternating, all 872 dev sentences x rounds, tokenization included. OpenVINO FP32/INT8 are
   also timed with oneDNN capped at AVX2 (``ONEDNN_MAX_CPU_ISA``): the one AVX2 data point this VNNI
   host can give. ONNX Runtime's MLAS picks its kernels from CPUID with no override, so no ORT row
   here says anything about an AVX2-only CPU.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from common import CACHE, REPO, SST2, SST2_TEACHER, dump, package_foreign_onnx, require
from quantization_sst2 import optimum_anchor

from edgekit.artifact import read_manifest
from edgekit.bench.harness import BenchSettings, Variant, run_benchmark
from edgekit.bench.report import markdown
from edgekit.bench.results import new_document
from edgekit.data import read_text_dataset
from edgekit.outputs import atomic_directory

WORK = CACHE / "int8-profile"
# name -> ort-int8-dynamic options (the variant's own build)
FORMS: dict[str, dict[str, Any]] = {
    "int8-dynamic": {"fuse": False, "per_channel": True, "reduce_range": False},  # edgekit before this change
    "int8-fused": {"fuse": True, "per_channel": True, "reduce_range": False},
    "int8-fused-per-tensor": {"fuse": True, "per_channel": False, "reduce_range": False},
    "int8-fused-reduce-range": {"fuse": True, "per_channel": True, "reduce_range": True},
}
# Measured only here (not variant options): name -> quantize_dynamic keyword arguments on the fused graph.
PROBES: dict[str, dict[str, Any]] = {
    "int8-fused-u8-weights": {"weight_type": "QUInt8"},
    "int8-fused-fp32-embeddings": {"op_types_to_quantize": ["MatMul", "Attention"]},
    # edgekit 0.3.0's fused graph: ORT's CPU SkipLayerNormalization kernel instead of Add + LayerNormalization
    "int8-fused-skiplayernorm": {"skip_layer_norm": True},
}
AVX2_CAP = (("ONEDNN_MAX_CPU_ISA", "AVX2"),)


def bundle(dev_path: Path) -> Path:
    """The FP32 reference and the OpenVINO variants, converted once (gate on SST-2 dev)."""
    from edgekit.convert.pipeline import convert
    from edgekit.convert.recipe import build_recipe
    from edgekit.progress import ConsoleReporter

    out = WORK / "bundle"
    if (out / "summary.json").is_file():
        return out
    recipe = build_recipe({"model": str(require(SST2_TEACHER, "The SST-2 teacher")), "out": str(out),
                           "data": {"path": str(dev_path)}, "variants": ["onnx-fp32", "ov-fp32", "ov-int8"],
                           "bench": {"enabled": False}})  # fmt: skip
    return convert(recipe, ConsoleReporter()).out


def build_form(reference: Path, name: str, options: dict[str, Any]) -> Path:
    """One INT8 form through the ort-int8-dynamic variant's build, packaged and sealed like convert's."""
    from edgekit.convert.packaging import package_variant
    from edgekit.convert.variants import BuildContext, get_variant
    from edgekit.outputs import seal
    from edgekit.targets.profiles import load_target

    out = WORK / name
    if (out / "manifest.json").is_file():
        return out
    kind = get_variant("ort-int8-dynamic")
    with atomic_directory(out) as staging:
        built = kind.build(BuildContext(reference, load_target("host"), []), staging, kind.Options(**options))
        manifest = package_variant(reference, staging, kind, built.model_file)
        manifest.metrics["build"] = built.settings
        seal(staging, manifest)
    return out


def build_probe(reference: Path, name: str, kwargs: dict[str, Any]) -> Path:
    """A measured-only form: the fused graph quantized with other quantize_dynamic arguments."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from edgekit.quantize.fusion import attention_shape, fuse_transformer

    out = WORK / name
    if (out / "manifest.json").is_file():
        return out
    options = {**kwargs, "weight_type": getattr(QuantType, kwargs.get("weight_type", "QInt8"))}
    skip_layer_norm = options.pop("skip_layer_norm", False)
    with tempfile.TemporaryDirectory() as scratch:
        fused, quantized = Path(scratch) / "fused.onnx", Path(scratch) / "model.onnx"
        fuse_transformer(reference / "model.onnx", fused, *attention_shape(reference), skip_layer_norm)
        quantize_dynamic(str(fused), str(quantized), per_channel=True, reduce_range=False,
                         extra_options={"DefaultTensorType": 1}, **options)  # fmt: skip
        return package_foreign_onnx(quantized, reference, out, "int8", f"quantize_dynamic {kwargs} after fusion")


def build_all(dev_path: Path) -> dict[str, Path]:
    reference = bundle(dev_path) / "onnx-fp32"
    built = {"onnx-fp32": reference}
    built |= {name: build_form(reference, name, options) for name, options in FORMS.items()}
    built |= {name: build_probe(reference, name, kwargs) for name, kwargs in PROBES.items()}
    anchor = WORK / "optimum-avx2-artifact"
    built["optimum-avx2"] = anchor if (anchor / "manifest.json").is_file() else (
        optimum_anchor(SST2_TEACHER, reference, WORK, per_channel=False))  # fmt: skip
    return built


def profile_ops(model_file: Path, feeds: list[dict], threads: int, skip: int = 20) -> dict[str, Any]:
    """Kernel time per operator type over batch-1 runs (the first ``skip`` runs are warm-up, not counted)."""
    import onnxruntime as ort

    from edgekit.runtime.engines.onnxruntime_engine import disabled_fusions

    with tempfile.TemporaryDirectory() as scratch:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL  # as the runtime engine
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(scratch) / "trace")
        session = ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"],
                                       disabled_optimizers=disabled_fusions(["CPUExecutionProvider"]))  # fmt: skip
        for feed in feeds:
            session.run(None, feed)
        events = json.loads(Path(session.end_profiling()).read_text())
    runs = sorted((e for e in events if e.get("name") == "model_run"), key=lambda e: e["ts"])
    cutoff = runs[skip - 1]["ts"] + runs[skip - 1]["dur"]
    counted = [r for r in runs if r["ts"] >= cutoff]
    per_op: dict[str, float] = defaultdict(float)
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time") and event["ts"] >= cutoff:
            per_op[event["args"]["op_name"]] += event["dur"]
    n = len(counted)
    return {"runs": n, "model_run_ms": sum(r["dur"] for r in counted) / n / 1000,
            "ops_ms": {op: us / n / 1000 for op, us in sorted(per_op.items(), key=lambda kv: -kv[1])}}  # fmt: skip


def op_table(name: str, profile: dict[str, Any]) -> str:
    total = sum(profile["ops_ms"].values())
    lines = [f"**{name}**: {profile['model_run_ms']:.3f} ms per inference in `model_run`, of which kernels "
             f"{total:.3f} ms ({profile['runs']} batch-1 runs)", "",
             "| op type | share of kernel time | ms per inference |", "|---|---|---|"]  # fmt: skip
    lines += [f"| {op} | {ms / total:.1%} | {ms:.3f} |" for op, ms in profile["ops_ms"].items() if ms / total >= 0.005]
    return "\n".join(lines)


def cpu_flags() -> str:
    from edgekit.targets.host import detect_host

    host = detect_host()
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")
    return f"{host.cpu_model}, {host.usable_cores} cores, " + " ".join(f for f in wanted if f in host.isa_features)


def timing_variants(built: dict[str, Path]) -> list[Variant]:
    variants = [Variant("pytorch-fp32", "pytorch", SST2_TEACHER)]
    variants += [Variant(name, "artifact", path) for name, path in built.items()]
    ov = built["onnx-fp32"].parent
    for name in ("ov-fp32", "ov-int8"):
        variants += [Variant(name, "artifact", ov / name), Variant(f"{name}-avx2-cap", "artifact", ov / name, AVX2_CAP)]
    return variants


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build-only", action="store_true", help="convert and quantize (cached), then stop")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--profile-runs", type=int, default=300)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "int8-profile.json")
    args = parser.parse_args()

    dev_path = require(SST2 / "dev.tsv", "SST-2 dev")
    dev = read_text_dataset(dev_path)
    built = build_all(dev_path)
    if args.build_only:
        print("built:", ", ".join(built))
        return
    from edgekit.quantize.calibration import calibration_feeds

    feeds = calibration_feeds(built["onnx-fp32"], dev.sample(args.profile_runs + 20, seed=0).texts)
    profiles = {name: profile_ops(path / read_manifest(path).model_file, feeds, args.threads)
                for name, path in built.items()}  # fmt: skip
    settings = BenchSettings(threads=args.threads, runs=len(dev), warmup=50, rounds=args.rounds)
    summaries = run_benchmark(timing_variants(built), dev, settings, on_progress=lambda m: print(m, flush=True))
    document = new_document({"name": "host", "mode": "measured-on-device"},
                            {**settings.__dict__, "data": "SST-2 dev (872 sentences)"}, summaries)  # fmt: skip
    for row in document["variants"]:  # the teacher's folder by name: no build-machine path in the results
        if row["kind"] == "pytorch":
            row["path"] = SST2_TEACHER.name
    document["cpu"] = cpu_flags()
    document["profiles"] = profiles
    document["builds"] = {name: read_manifest(path).metrics.get("build") for name, path in built.items()}
    dump(document, args.out)
    text = markdown(document, title="Dynamic INT8 on SST-2 dev: fusion before quantization, per-op profile")
    text += f"\n\nCPU: {document['cpu']}. `-avx2-cap` rows: OpenVINO with `ONEDNN_MAX_CPU_ISA=AVX2`.\n"
    text += "\n## Per-op profile (ONNX Runtime, batch 1)\n\n" + "\n\n".join(op_table(n, p) for n, p in profiles.items())
    args.out.with_suffix(".md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
