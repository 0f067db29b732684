"""Runtime overhead: `EdgeModel.predict` against a hand-written onnxruntime + tokenizers loop.

    python benchmarks/runtime_overhead.py [ARTIFACT] [--passes 3] [--threads 1]

Both run in this one process on the same ONNX Runtime build and the same session options,
interleaved input by input (A, B, then B, A, ...), over the SST-2 dev sentences, batch 1,
tokenization included, after a warm-up. Interleaving is safe here because both sides are
the same engine (the rule against interleaving is about different runtimes).
Default artifact: the ort-int8-dynamic variant built by quantization_sst2.py. Default threads:
1, because two sessions in one process with 2 intra-op threads each steal cores from each
other while their threads spin, which drowns a few-percent difference in noise.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from common import CACHE, SST2, require
from tokenizers import Tokenizer

from edgekit.artifact import read_manifest
from edgekit.data import read_text_dataset
from edgekit.runtime import EdgeModel


class HandWritten:
    """What an app developer would write without edgekit: the minimum to get a label."""

    def __init__(self, artifact: Path, threads: int):
        manifest = read_manifest(artifact)
        self.tokenizer = Tokenizer.from_file(str(artifact / manifest.tokenizer["file"]))
        self.tokenizer.enable_truncation(max_length=manifest.tokenizer["max_length"])
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(artifact / manifest.model_file), options,
                                            providers=["CPUExecutionProvider"])  # fmt: skip
        self.names = [i.name for i in self.session.get_inputs()]

    def predict(self, text: str) -> int:
        encoding = self.tokenizer.encode(text)
        columns = {"input_ids": encoding.ids, "attention_mask": encoding.attention_mask,
                   "token_type_ids": encoding.type_ids}  # fmt: skip
        feed = {name: np.array([columns[name]], dtype=np.int64) for name in self.names}
        return int(self.session.run(None, feed)[0][0].argmax())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("artifact", type=Path, nargs="?",
                        default=CACHE / "quantization-sst2" / "edgekit" / "ort-int8-dynamic")  # fmt: skip
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    require(args.artifact, "The artifact (run benchmarks/quantization_sst2.py first)")
    texts = read_text_dataset(require(SST2 / "dev.tsv", "SST-2 dev")).texts

    edge = EdgeModel.load(args.artifact, threads=args.threads)
    hand = HandWritten(args.artifact, args.threads)
    for text in texts[:50]:  # warm-up, both
        edge.predict(text)
        hand.predict(text)
    timings: dict[str, list[float]] = {"edgekit": [], "hand-written": []}
    disagreements = 0
    calls = {"edgekit": lambda t: edge.predict(t).label_id, "hand-written": hand.predict}
    for _ in range(args.passes):
        for index, text in enumerate(texts):
            # Swap who goes first on every input: the second call runs while the first one's
            # ORT threads may still spin, and neither side should always pay for that.
            order = ("edgekit", "hand-written") if index % 2 == 0 else ("hand-written", "edgekit")
            labels = {}
            for name in order:
                started = time.perf_counter_ns()
                labels[name] = calls[name](text)
                timings[name].append((time.perf_counter_ns() - started) / 1e6)
            disagreements += labels["edgekit"] != labels["hand-written"]
    medians = {name: float(np.median(values)) for name, values in timings.items()}
    overhead = medians["edgekit"] / medians["hand-written"] - 1
    print(f"artifact: {args.artifact}")
    print(f"{len(texts)} sentences x {args.passes} passes, batch 1, {args.threads} threads, interleaved")
    for name, value in medians.items():
        p90 = float(np.percentile(timings[name], 90))
        print(f"{name:>13}: median {value:.3f} ms, p90 {p90:.3f} ms")
    print(f"overhead of EdgeModel.predict: {overhead:+.1%} of the median; label disagreements: {disagreements}")


if __name__ == "__main__":
    main()
