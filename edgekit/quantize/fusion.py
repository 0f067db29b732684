"""Offline transformer fusion before dynamic INT8 (ONNX Runtime's transformer optimizer).

ONNX Runtime fuses attention, layer norm and GELU itself when it loads an FP32 graph, but not
once dynamic quantization has split every MatMul into ``DynamicQuantizeLinear`` +
``MatMulInteger`` + casts: the patterns no longer match. Fusing first turns the attention
block into one ``Attention`` node, which the quantizer then makes a ``QAttention`` (one
quantized QKV projection and the attention core in one kernel). Measured per ISA in
benchmarks/int8_profile.py; ``fusion_default`` in edgekit/targets/preflight.py decides when
it is used by default.

``SkipLayerNormalization`` is left unfused on purpose: ONNX Runtime's CPU kernel for it is a plain
per-element loop with a divide (no MLAS vector code), measured 5.7x slower at one thread (2.5x at
two) than the ``Add`` + ``LayerNormalization`` pair it replaces, for a 25-token x 384 activation;
dropping it made a 3-layer INT8 student's model run 12% faster (docs/quantization.md). The runtime
also stops ORT from re-fusing the pair at load (edgekit/runtime/engines/onnxruntime_engine.py).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from edgekit.errors import ExportError

# The fused operators whose presence means the attention fusion happened (what QAttention needs).
ATTENTION_OPS = ("Attention", "MultiHeadAttention")
# Families whose fused INT8 was checked (parity, accuracy, batch behaviour): only these are fused by default.
DEFAULT_FAMILIES = frozenset({"bert"})


def _config(reference_dir: Path) -> dict[str, object]:
    """The artifact's config.json (written for HF sources); {} for an ONNX source, which has none."""
    config_file = reference_dir / "config.json"
    if not config_file.is_file():
        return {}
    try:
        config = json.loads(config_file.read_text())
    except (OSError, ValueError) as exc:
        raise ExportError(f"Could not read {config_file} for the attention shape: {exc}") from exc
    if not isinstance(config, dict):
        raise ExportError(f"{config_file} is not a JSON object; re-export the model.")
    return config


def attention_shape(reference_dir: Path) -> tuple[int, int]:
    """(heads, hidden size) from the artifact's config.json; (0, 0) lets the optimizer read them
    from the graph (an ONNX source has no config)."""
    config_file = reference_dir / "config.json"
    config = _config(reference_dir)
    heads, hidden = config.get("num_attention_heads", 0), config.get("hidden_size", 0)
    if not (isinstance(heads, int) and isinstance(hidden, int) and heads >= 0 and hidden >= 0):
        raise ExportError(f"{config_file}: num_attention_heads and hidden_size must be whole numbers.")
    return heads, hidden


def fuse_transformer(
    source: Path, target: Path, heads: int, hidden: int, skip_layer_norm: bool = False
) -> dict[str, int]:
    """Write ``source`` with BERT-style fusions applied to ``target``; returns the op counts.
    ``skip_layer_norm=True`` also makes ``SkipLayerNormalization`` (slower on CPUs; for measuring).

    ``opt_level=0``: the Python fusions only. ORT's own graph optimizations run again when the
    runtime loads the artifact, and an offline ORT pass would bake in this machine's kernels.
    """
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    fusions = FusionOptions("bert")
    fusions.enable_skip_layer_norm = skip_layer_norm  # off: the slow CPU kernel, see the module docstring
    try:
        model = optimize_model(str(source), model_type="bert", num_heads=heads, hidden_size=hidden,
                               opt_level=0, use_gpu=False, optimization_options=fusions)  # fmt: skip
        model.save_model_to_file(str(target))
    except Exception as exc:  # the optimizer raises assorted errors on graphs it cannot parse
        raise ExportError(
            f"ONNX Runtime's transformer optimizer failed on {source.name}: {exc}. "
            "Set `fuse: false` on the ort-int8-dynamic variant to quantize without fusion."
        ) from exc
    return op_counts(target)


def op_counts(model_file: Path) -> dict[str, int]:
    import onnx

    graph = onnx.load(str(model_file), load_external_data=False).graph
    return dict(Counter(node.op_type for node in graph.node))


def attention_fused(counts: dict[str, int]) -> bool:
    return any(counts.get(op, 0) for op in ATTENTION_OPS)


def dynamic_int8(reference_dir: Path, target: Path, per_channel: bool, reduce_range: bool, fuse: bool,
                 required: bool) -> dict[str, object]:  # fmt: skip
    """Dynamic INT8 of the reference's model.onnx into ``target``, fused first when ``fuse``.

    ``required`` (the user asked for ``fuse: true``): a graph the optimizer finds no attention in is
    an error; otherwise (the ISA default) such a graph is quantized unfused and the build says why.
    Returns what the manifest's ``metrics.build`` records about the fusion.
    """
    import tempfile

    from edgekit.quantize.ort import quantize_dynamic_int8

    source = reference_dir / "model.onnx"
    if not fuse:
        quantize_dynamic_int8(source, target, per_channel, reduce_range)
        return {"fused": False}
    family = _config(reference_dir).get("model_type")
    if not required and family not in DEFAULT_FAMILIES:
        quantize_dynamic_int8(source, target, per_channel, reduce_range)
        why = f"fused by default only for {sorted(DEFAULT_FAMILIES)}, not {family or 'an ONNX source'}"
        return {"fused": False, "fusion_skipped": f"{why}; set fuse: true to try"}
    # The scratch folder sits next to the target (same disk) and is gone before the folder is sealed.
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".fusion-") as scratch:
        fused = Path(scratch) / "fused.onnx"
        counts = fuse_transformer(source, fused, *attention_shape(reference_dir))
        if not attention_fused(counts):
            why = "ONNX Runtime's transformer optimizer found no BERT-style attention in this graph"
            if required:
                raise ExportError(f"fuse: true, but {why}. Set `fuse: false` (or leave it unset) for this model.")
            quantize_dynamic_int8(source, target, per_channel, reduce_range)
            return {"fused": False, "fusion_skipped": why}
        quantize_dynamic_int8(fused, target, per_channel, reduce_range, contrib_ops=True)
    quantized = op_counts(target)
    kept = ("QAttention", "QEmbedLayerNormalization", "LayerNormalization", "BiasGelu", "MatMulInteger")
    return {"fused": True, "fused_ops": {op: quantized[op] for op in kept if quantized.get(op)}}
