"""edgekit: take a fine-tuned model to an edge device and prove how fast and accurate it is there.

This package root stays import-light (no torch, no transformers) because the slim
runtime, ``edgekit.runtime``, is installed on devices without them.
"""

# 0.2.0: manifests gained `runtime` (0.1.0 runtimes refuse such artifacts; 0.2.0 and later
# ignore manifest fields they do not know).
# 0.3.0: manifests gained `batch_invariant` and name their source instead of its path; bundles
# record each variant's manifest sha256; outputs carry an ownership marker. Format version 1 still.
# 0.3.1: fused dynamic INT8 keeps Add + LayerNormalization (no SkipLayerNormalization): a new
# graph for the same recipe, so the version (part of every reuse key) changes and caches rebuild.
# 0.3.2: the x86-avx2 class fuses before dynamic INT8 (measured there), and ort-int8-static takes
# `qat`: x86-avx2 targets get a new graph for the same recipe.
__version__ = "0.3.2"
