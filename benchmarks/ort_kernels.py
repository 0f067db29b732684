"""ONNX Runtime CPU kernels at batch-1 transformer shapes: is a fused contrib op faster than the
standard ops it replaces, on *this* CPU?

    python benchmarks/ort_kernels.py [--tokens 25] [--hidden 384] [--calls 3000]

Each case is a one-node (or two-node) graph run by its own session at 1 and 2 intra-op threads;
median of ``--calls`` runs after a warm-up, the cases interleaved in rounds. What it decides:
``SkipLayerNormalization`` (what ORT's transformer optimizer and its load-time
``SkipLayerNormFusion`` make of ``Add`` + ``LayerNormalization``) against the pair itself, which
is why edgekit keeps the pair on CPUs (edgekit/runtime/engines/onnxruntime_engine.py); and GELU
forms for comparison. Writes results/ort-kernels.{json,md} with this host's CPU and ISA flags: run
it on the device before carrying a conclusion to another CPU.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from common import REPO, dump
from onnx import TensorProto, helper, numpy_helper

from edgekit.targets.host import detect_host

MS = "com.microsoft"


def _graph(nodes: list, inputs: list[str], width: int, constants: dict[str, np.ndarray]) -> bytes:
    declared = [helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, None, width]) for name in inputs]
    output = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    initializers = [numpy_helper.from_array(value, name) for name, value in constants.items()]
    graph = helper.make_graph(nodes, "case", declared, [output], initializers)
    opsets = [helper.make_opsetid("", 20), helper.make_opsetid(MS, 1)]
    return helper.make_model(graph, opset_imports=opsets).SerializeToString()


def cases(hidden: int) -> dict[str, tuple[bytes, list[str], int]]:
    """name -> (model bytes, input names, width of each input)."""
    rng = np.random.default_rng(0)
    norm = {"gamma": np.ones(hidden, np.float32), "beta": np.zeros(hidden, np.float32)}
    ffn = 4 * hidden
    bias = {"bias": rng.standard_normal(ffn).astype(np.float32)}
    return {
        "SkipLayerNormalization (contrib)": (_graph(
            [helper.make_node("SkipLayerNormalization", ["x", "skip", "gamma", "beta"], ["y"], domain=MS,
                              epsilon=1e-12)], ["x", "skip"], hidden, norm), ["x", "skip"], hidden),
        "Add + LayerNormalization": (_graph(
            [helper.make_node("Add", ["x", "skip"], ["sum"]),
             helper.make_node("LayerNormalization", ["sum", "gamma", "beta"], ["y"], axis=-1, epsilon=1e-12)],
            ["x", "skip"], hidden, norm), ["x", "skip"], hidden),
        "BiasGelu (contrib)": (_graph([helper.make_node("BiasGelu", ["x", "bias"], ["y"], domain=MS)], ["x"], ffn,
                                      bias), ["x"], ffn),
        "Add + Gelu (opset 20)": (_graph([helper.make_node("Add", ["x", "bias"], ["a"]),
                                          helper.make_node("Gelu", ["a"], ["y"])], ["x"], ffn, bias), ["x"], ffn),
    }  # fmt: skip


def measure(model: bytes, feed: dict[str, np.ndarray], threads: int, calls: int) -> list[float]:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    # The case is timed as written: no load-time fusion may turn one form into the other.
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"],
                                   disabled_optimizers=["SkipLayerNormFusion"])  # fmt: skip
    for _ in range(200):
        session.run(None, feed)
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        session.run(None, feed)
        samples.append(1e6 * (time.perf_counter() - started))
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=25, help="sequence length (SST-2 dev averages ~25)")
    parser.add_argument("--hidden", type=int, default=384, help="hidden size (MiniLM: 384)")
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "ort-kernels.json")
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    samples: dict[tuple[str, int], list[float]] = {}
    for _ in range(args.rounds):
        for name, (model, inputs, width) in cases(args.hidden).items():
            feed = {i: rng.standard_normal((1, args.tokens, width)).astype(np.float32) for i in inputs}
            for threads in (1, 2):
                samples.setdefault((name, threads), []).extend(measure(model, feed, threads, args.calls))
    rows = [{"case": name, "threads": threads, "median_us": round(float(np.median(values)), 1),
             "p90_us": round(float(np.percentile(values, 90)), 1)}
            for (name, threads), values in samples.items()]  # fmt: skip
    host = detect_host()
    dump({"host": host.to_dict(), "onnxruntime": ort.__version__, "tokens": args.tokens, "hidden": args.hidden,
          "calls_per_round": args.calls, "rounds": args.rounds, "rows": rows}, args.out)  # fmt: skip
    lines = [f"# ONNX Runtime {ort.__version__} CPU kernels, {args.tokens} tokens x hidden {args.hidden}", "",
             f"Host: {host.cpu_model}, {host.usable_cores} usable cores; ISA: {', '.join(host.isa_features)}.", "",
             "| case | threads | median µs | p90 µs |", "|---|---|---|---|",
             *[f"| {r['case']} | {r['threads']} | {r['median_us']} | {r['p90_us']} |" for r in rows]]  # fmt: skip
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
