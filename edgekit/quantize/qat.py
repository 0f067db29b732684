"""Quantization-aware fine-tuning (QAT) of an image classifier before ONNX Runtime's static INT8.

Post-training INT8 rounds every weight and activation once; the small errors add up over a deep
CNN and swap labels whose FP32 logits are nearly tied (docs/images.md). QAT lets the weights absorb
the rounding: a copy of the model is fine-tuned with ORT's QDQ arithmetic simulated in its forward
pass (fake quantization, straight-through gradients) to reproduce the FP32 model's own logits on the
calibration images, a distillation from itself that needs no labels. The fine-tuned weights are
written into the FP32 ONNX graph, which ORT then calibrates and quantizes as usual. The artifact is
an ordinary QDQ model, and the gate still compares it with the untouched FP32 reference.

What is simulated (edgekit/quantize/qdq_simulation.py), as ORT's QDQ quantizer does it:
- weights: symmetric INT8 (±127, or ±64 with ``reduce_range``), per output channel or per tensor;
- activations: asymmetric UINT8 (or INT8 on Arm), zero inside the range, min-max over the calibration
  inputs, at the input of every quantized Conv/Gemm and at the output of one that feeds an addition
  (the residual joins, whose inputs ORT also quantizes). Nodes the variant keeps in FP32 are not
  simulated, but they are fine-tuned too.

Batch norms are folded into their convolutions first (``torch.fx``), as ORT's graph optimizer folds
them, so the simulated weights are the ones ORT rounds. Each layer is found in the ONNX graph by
value (its folded weights equal one initializer), and a run of the written graph against the
fine-tuned module checks the mapping before anything is quantized.
"""

from __future__ import annotations

import operator
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.fx
from torch import nn

from edgekit.errors import ExportError, RecipeError
from edgekit.quantize.calibration import Feed
from edgekit.quantize.qdq_simulation import QuantScheme, SimulatedLayer, set_mode

_INPUT = "pixel_values"
_LOGIT_TOLERANCE = 1e-3  # written graph vs fine-tuned module, relative to the logits' scale


@dataclass(frozen=True)
class QatSettings:
    epochs: float = 8.0
    learning_rate: float = 1e-5
    batch_size: int = 16
    flip: bool = True  # each input also mirrored left-right (the FP32 targets are computed on the mirror too)
    max_samples: int = 256  # calibration inputs used at most: bounds the memory the rows take
    seed: int = 0


@dataclass
class _Layer:
    """A Conv/Linear of the folded module and the ONNX initializers that hold its weights."""

    path: str  # its qualified name in the traced module
    node: str  # the ONNX node's name
    weight: str
    bias: str | None  # None when the ONNX node has no bias initializer (the bias is then frozen)
    transposed: bool  # the ONNX weight is the transpose of the module's (Gemm transB=0, MatMul)
    feeds_addition: bool


def quantization_aware_finetune(
    module: Any,
    prepared_onnx: Path,
    target_onnx: Path,
    feeds: list[Feed],
    fp32_nodes: set[str],
    scheme: QuantScheme,
    settings: QatSettings,
) -> dict[str, Any]:
    """Fine-tune a copy of ``module`` under simulated INT8 and write its weights into a copy of
    ``prepared_onnx`` (the pre-processed FP32 graph) at ``target_onnx``. Returns the manifest record."""
    if not feeds:
        raise ExportError("Quantization-aware fine-tuning needs calibration images; the calibration set is empty.")
    started = time.perf_counter()
    folded = _folded_copy(module)
    layers = _match_layers(folded, prepared_onnx)
    simulated = _simulate(folded, [layer for layer in layers if layer.node not in fp32_nodes], scheme)
    pixels = _rows(feeds[: settings.max_samples], settings.flip)
    with torch.inference_mode():
        teacher = _logits(module, pixels)
    set_mode(simulated, "observe")
    with torch.inference_mode():
        _logits(folded, pixels)
    set_mode(simulated, "simulate")
    before = _rms_error(folded, pixels, teacher)
    trainable = _trainable(folded, layers)
    _train(folded, pixels, teacher, settings)
    after = _rms_error(folded, pixels, teacher)
    set_mode(simulated, "fp32")
    drift = _rms_error(folded, pixels, teacher)
    _write_weights(folded, layers, prepared_onnx, target_onnx)
    _check_written(folded, target_onnx, pixels[:4])
    return {
        "layers_fine_tuned": len(layers),
        "parameters_fine_tuned": trainable,
        "layers_simulated_int8": len(simulated),
        "rows": int(pixels.shape[0]),
        "epochs": settings.epochs,
        "learning_rate": settings.learning_rate,
        "flip": settings.flip,
        # RMS of (logits - FP32 logits) on the rows: INT8 simulated before and after, FP32 after
        "simulated_int8_rms_error": {"before": round(before, 5), "after": round(after, 5)},
        "fp32_rms_drift": round(drift, 5),
        "seconds": round(time.perf_counter() - started, 1),
    }


class _LayerTracer(torch.fx.Tracer):
    """Keeps every Conv/Linear/BatchNorm a module of the trace, subclasses too (a "same"-padding Conv2d
    subclass would otherwise be traced into a bare ``conv2d`` call that cannot be folded or simulated)."""

    def is_leaf_module(self, module: nn.Module, qualified_name: str) -> bool:
        return isinstance(module, _LAYERS + _NORMS) or super().is_leaf_module(module, qualified_name)


_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Linear)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


def _folded_copy(module: Any) -> Any:
    """A traced copy of ``module`` with each batch norm that follows a convolution folded into it."""
    import copy

    from torch.nn.utils.fusion import fuse_conv_bn_eval

    model = copy.deepcopy(module).eval()
    try:
        traced = torch.fx.GraphModule(model, _LayerTracer().trace(model))
    except Exception as exc:  # tracing fails on data-dependent control flow
        raise RecipeError(
            f"Quantization-aware fine-tuning traces the model with torch.fx, which failed on "
            f"{type(module).__name__}: {exc}. Drop the variant's `qat` option (plain static INT8 still works), "
            "or make the module traceable (no Python control flow on tensor values)."
        ) from exc
    modules = dict(traced.named_modules())
    for node in list(traced.graph.nodes):
        norm = modules.get(node.target) if node.op == "call_module" else None
        conv = node.args[0] if isinstance(norm, _NORMS) and node.args else None
        if not isinstance(conv, torch.fx.Node) or conv.op != "call_module" or len(conv.users) != 1:
            continue
        layer = modules[conv.target]
        if isinstance(layer, (nn.Conv1d, nn.Conv2d)) and not layer.transposed:
            _replace_module(traced, conv.target, fuse_conv_bn_eval(layer, norm))
            node.replace_all_uses_with(conv)
            traced.graph.erase_node(node)
    traced.graph.lint()
    traced.recompile()
    return traced


def _replace_module(root: nn.Module, path: str, replacement: nn.Module) -> None:
    parent_path, _, child = path.rpartition(".")
    setattr(root.get_submodule(parent_path) if parent_path else root, child, replacement)


def _match_layers(folded: Any, prepared_onnx: Path) -> list[_Layer]:
    """Each Conv/Linear of ``folded`` whose weights are an initializer of a Conv/Gemm/MatMul node."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(prepared_onnx)).graph
    initializers = {init.name: init for init in graph.initializer}
    candidates: dict[tuple[int, ...], list[tuple[Any, str, str | None, bool, np.ndarray]]] = {}
    for node in graph.node:
        if node.op_type not in ("Conv", "Gemm", "MatMul") or len(node.input) < 2 or node.input[1] not in initializers:
            continue
        weight = numpy_helper.to_array(initializers[node.input[1]])
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        transposed = node.op_type == "MatMul" or (node.op_type == "Gemm" and not trans_b)
        weight = weight.T if transposed else weight
        bias = node.input[2] if node.op_type != "MatMul" and len(node.input) > 2 else None
        bias = bias if bias in initializers else None
        candidates.setdefault(weight.shape, []).append((node, node.input[1], bias, transposed, weight))
    modules = dict(folded.named_modules())
    layers = []
    for fx_node in folded.graph.nodes:
        layer = modules.get(fx_node.target) if fx_node.op == "call_module" else None
        if not isinstance(layer, _LAYERS):
            continue
        ours = layer.weight.detach().numpy()
        found = [c for c in candidates.get(ours.shape, []) if _same(ours, c[4])]
        if len(found) == 1:
            node, weight, bias, transposed, _ = found[0]
            layers.append(_Layer(fx_node.target, node.name, weight, bias, transposed, _feeds_addition(fx_node)))
    if not layers:
        raise ExportError(
            "Quantization-aware fine-tuning found none of the model's convolutions in the ONNX graph (matched by "
            "their batch-norm-folded weights). Was the ONNX reference exported from this model?"
        )
    return layers


def _same(ours: np.ndarray, theirs: np.ndarray) -> bool:
    """Equal up to the rounding of two batch-norm folds (ORT's and torch.fx's)."""
    return bool(np.allclose(ours, theirs, rtol=1e-4, atol=1e-5 * max(1.0, float(np.abs(theirs).max()))))


def _feeds_addition(fx_node: Any) -> bool:
    return any(
        (user.op == "call_function" and user.target in (operator.add, operator.iadd))
        or (user.op == "call_method" and user.target in ("add", "add_"))
        for user in fx_node.users
    )


def _simulate(folded: Any, layers: list[_Layer], scheme: QuantScheme) -> list[Any]:
    """Swap each layer for a wrapper that can observe ranges, simulate INT8, or run in FP32."""
    wrappers = []
    for layer in layers:
        wrapper = SimulatedLayer(folded.get_submodule(layer.path), scheme, layer.feeds_addition)
        _replace_module(folded, layer.path, wrapper)
        wrappers.append(wrapper)
    return wrappers


def _rows(feeds: list[Feed], flip: bool) -> Any:

    pixels = torch.from_numpy(np.concatenate([feed[_INPUT] for feed in feeds]).astype(np.float32))
    return torch.cat([pixels, pixels.flip(-1)]) if flip else pixels


def _logits(model: Any, pixels: Any, chunk: int = 16) -> Any:

    from edgekit.convert.image_sources import image_logits

    return torch.cat([image_logits(model, pixels[i : i + chunk]) for i in range(0, len(pixels), chunk)])


def _rms_error(model: Any, pixels: Any, teacher: Any) -> float:

    with torch.inference_mode():
        return float(((_logits(model, pixels) - teacher) ** 2).mean().sqrt())


def _trainable(folded: Any, layers: list[_Layer]) -> int:
    """Only the matched layers' weights (and biases the ONNX graph holds) learn: nothing else can be written back."""
    for parameter in folded.parameters():
        parameter.requires_grad_(False)
    count = 0
    for layer in layers:
        module = folded.get_submodule(layer.path)
        module = getattr(module, "layer", module)  # a simulated layer wraps the original
        for name in ("weight", "bias") if layer.bias else ("weight",):
            parameter = getattr(module, name)
            parameter.requires_grad_(True)
            count += parameter.numel()
    return count


def _train(folded: Any, pixels: Any, teacher: Any, settings: QatSettings) -> None:
    """HF ``Trainer``: minimise the mean squared logit error against the FP32 model (Adam, linear decay)."""
    import transformers

    from edgekit.convert.image_sources import image_logits
    from edgekit.train.hf_progress import progress_bar_only, transformers_errors_only
    from edgekit.train.trainer_setup import training_arguments

    class MatchFp32(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.student = folded

        def forward(self, pixel_values: torch.Tensor, fp32_logits: torch.Tensor) -> dict[str, torch.Tensor]:
            logits = image_logits(self.student, pixel_values)
            return {"loss": nn.functional.mse_loss(logits, fp32_logits), "logits": logits}

        def train(self, mode: bool = True) -> MatchFp32:
            return super().train(False)  # dropout and drop-connect stay off: the target is the eval-mode model

    class Rows(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(pixels)

        def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
            return {"pixel_values": pixels[index], "fp32_logits": teacher[index]}

    scratch = Path(tempfile.mkdtemp(prefix="edgekit-qat-"))  # Trainer's output_dir: nothing is saved there
    args = training_arguments(scratch, settings.epochs, settings.batch_size, settings.learning_rate,
                              weight_decay=0.0, warmup_ratio=0.1, seed=settings.seed)  # fmt: skip
    try:
        with transformers_errors_only():
            trainer = transformers.Trainer(model=MatchFp32(), args=args, train_dataset=Rows())
            progress_bar_only(trainer)
            trainer.train()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _write_weights(folded: Any, layers: list[_Layer], prepared_onnx: Path, target_onnx: Path) -> None:
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(prepared_onnx))
    initializers = {init.name: init for init in model.graph.initializer}
    for layer in layers:
        module = folded.get_submodule(layer.path)
        module = getattr(module, "layer", module)
        weight = module.weight.detach().numpy()
        values = {layer.weight: weight.T if layer.transposed else weight}
        if layer.bias:
            values[layer.bias] = module.bias.detach().numpy()
        for name, value in values.items():
            dtype = numpy_helper.to_array(initializers[name]).dtype
            initializers[name].CopyFrom(numpy_helper.from_array(np.ascontiguousarray(value, dtype=dtype), name))
    onnx.save(model, str(target_onnx))


def _check_written(folded: Any, target_onnx: Path, pixels: Any) -> None:
    """The written FP32 graph must compute what the fine-tuned module computes: proof the mapping is right."""
    import onnxruntime as ort

    with torch.inference_mode():
        expected = _logits(folded, pixels).numpy()
    session = ort.InferenceSession(str(target_onnx), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: pixels.numpy()})[0]
    worst = float(np.abs(got - expected).max())
    if worst > _LOGIT_TOLERANCE * max(1.0, float(np.abs(expected).max())):
        raise ExportError(
            f"Quantization-aware fine-tuning wrote weights the ONNX graph does not reproduce (max |Δlogit| "
            f"{worst:.3g}): some layer was matched to the wrong initializer. Drop the `qat` option."
        )
