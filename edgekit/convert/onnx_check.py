"""Check an ONNX text classifier made elsewhere before anything is built from it.

The file is untrusted input: it may not be ONNX at all, may name external-data files outside
its folder (a ``location`` such as ``../../etc/passwd``), may have static shapes, other inputs
than a tokenizer gives, or several outputs. Every problem is one ``SourceError`` that says what
is wrong and how to fix it, raised before any output folder is opened.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit.artifact.checks import check_relative_path
from edgekit.artifact.onnx_scan import onnx_external_data
from edgekit.artifact.paths import confined_path
from edgekit.artifact.task_fields import TEXT_INPUT_NAMES
from edgekit.errors import ArtifactError, SourceError

MIN_OPSET = 11  # the oldest opset with the dynamic shapes and ops transformer exports need (as export.opset)
# Input names other exporters use for what a tokenizer gives (tf2onnx keeps TensorFlow's ":0",
# Google's BERT calls them input_mask and segment_ids); anything else is refused.
INPUT_ALIASES = {
    **{name: name for name in TEXT_INPUT_NAMES},
    **{f"{name}:0": name for name in TEXT_INPUT_NAMES},
    "input_mask": "attention_mask",
    "input_mask:0": "attention_mask",
    "segment_ids": "token_type_ids",
    "segment_ids:0": "token_type_ids",
}
_INT64, _FLOAT = 7, 1  # onnx.TensorProto.INT64 / FLOAT
_FIX = "Re-export it with Optimum (`optimum-cli export onnx --task text-classification`), which gives that form."


@dataclass(frozen=True)
class GraphFacts:
    """What the checks found: the graph's inputs mapped to the runtime's names, and its limits."""

    path: Path
    input_map: dict[str, str]  # graph input name -> input_ids / attention_mask / token_type_ids
    output_name: str
    num_labels: int | None  # None when the graph leaves the label axis symbolic (checked by running it)
    opset: int
    external_data: list[str] = field(default_factory=list)  # relative to the graph's folder
    max_positions: int | None = None  # rows of the position-embedding table, when one is found
    producer: str = ""

    @property
    def needs_renaming(self) -> bool:
        return any(name != canonical for name, canonical in self.input_map.items())


def external_data_files(path: Path) -> list[str]:
    """The graph's external-data files, each a plain relative path confined to the graph's folder."""
    try:
        locations = onnx_external_data(path)
    except ArtifactError:
        raise SourceError(f"{path} is not an ONNX model (its bytes are not an ONNX protobuf). {_FIX}") from None
    for location in locations:
        try:
            check_relative_path(location, "location")
            resolved = confined_path(path.parent, location, "External data")
        except ArtifactError:
            raise SourceError(
                f"{path.name} names external data {location!r}, which is not a file inside its own folder "
                f"({path.parent}). edgekit reads only files beside the graph: move the tensor data next to "
                "model.onnx and save with a plain relative location (onnx.save(..., location='model.onnx.data'))."
            ) from None
        if not resolved.is_file():
            raise SourceError(f"{path.name} names external data {location!r}, which is missing from {path.parent}.")
    return locations


def _load(path: Path) -> Any:
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError and friends: the file is not ONNX
        raise SourceError(f"{path} is not a readable ONNX model ({type(exc).__name__}). {_FIX}") from None
    try:  # on the path, so the checker also sees external data and files over 2 GB
        onnx.checker.check_model(str(path))
    except Exception as exc:  # onnx.checker.ValidationError, or the model is newer than this onnx
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SourceError(f"{path} fails onnx.checker: {first}. {_FIX}") from None
    return model


def _opset(model: Any) -> int:
    import onnx

    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    newest = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= opset <= newest:
        raise SourceError(
            f"The graph uses ONNX opset {opset}; edgekit converts opsets {MIN_OPSET}-{newest} (what the installed "
            "onnx, ONNX Runtime and OpenVINO read). Re-export with an opset in that range (`--opset 17`)."
        )
    return opset


def _dims(value: Any) -> list[int | str]:
    """Each axis: its fixed size, or its symbolic name ('?' when unnamed)."""
    return [dim.dim_value if dim.HasField("dim_value") else (dim.dim_param or "?")
            for dim in value.type.tensor_type.shape.dim]  # fmt: skip


def _inputs(model: Any) -> dict[str, str]:
    initializers = {tensor.name for tensor in model.graph.initializer}  # IR < 4 lists weights as inputs too
    mapping: dict[str, str] = {}
    for value in (v for v in model.graph.input if v.name not in initializers):
        canonical = INPUT_ALIASES.get(value.name)
        if canonical is None:
            raise SourceError(
                f"The graph has an input {value.name!r}; a text classifier's inputs are what a tokenizer gives: "
                f"{', '.join(TEXT_INPUT_NAMES)} (or tf2onnx's ':0' and BERT's input_mask/segment_ids names). {_FIX}"
            )
        if canonical in mapping.values():
            raise SourceError(f"The graph has two inputs for {canonical} ({value.name!r} and another). {_FIX}")
        if value.type.tensor_type.elem_type != _INT64:
            raise SourceError(
                f"Input {value.name!r} is not int64 (ONNX element type {value.type.tensor_type.elem_type}); the "
                f"runtime feeds int64 token ids. {_FIX}"
            )
        dims = _dims(value)
        fixed = [f"axis {i} = {d}" for i, d in enumerate(dims) if isinstance(d, int) and d > 0]
        if len(dims) != 2 or fixed:
            raise SourceError(
                f"Input {value.name!r} has shape {dims}: the graph was exported with static shapes "
                f"({', '.join(fixed) or f'rank {len(dims)}'}), so it takes one batch size and one text length "
                "only. Re-export with dynamic batch and sequence axes (Optimum does; torch.onnx.export needs "
                "dynamic_axes / dynamic_shapes)."
            )
        mapping[value.name] = canonical
    for needed in ("input_ids", "attention_mask"):
        if needed not in mapping.values():
            why = "" if needed == "input_ids" else " (without it padding changes the answers of a batch)"
            raise SourceError(f"The graph has no {needed} input{why}; it has {list(mapping) or 'none'}. {_FIX}")
    return mapping


def _output(model: Any, labels: int) -> tuple[str, int | None]:
    outputs = list(model.graph.output)
    names = [o.name for o in outputs]
    if len(outputs) != 1:
        raise SourceError(
            f"The graph has {len(outputs)} outputs {names}; edgekit needs exactly one, the classifier's logits "
            f"[batch, num_labels]. {_FIX}"
        )
    value = outputs[0]
    dims = _dims(value)
    if value.type.tensor_type.elem_type != _FLOAT or len(dims) != 2:
        raise SourceError(
            f"Output {value.name!r} has shape {dims} (ONNX element type {value.type.tensor_type.elem_type}); a text "
            f"classifier's output is float32 logits [batch, num_labels]. {_FIX}"
        )
    if isinstance(dims[0], int) and dims[0] > 0:
        raise SourceError(f"Output {value.name!r} has a fixed batch axis ({dims}); re-export with a dynamic batch.")
    count = dims[1] if isinstance(dims[1], int) and dims[1] > 0 else None
    if count is not None and count != labels:
        raise SourceError(
            f"The graph's output {value.name!r} has {count} logits per row but {labels} labels were given; give "
            f"one label per output, in the head's order (e.g. --labels {','.join(f'l{i}' for i in range(count))})."
        )
    return value.name, count


def _max_positions(model: Any) -> int | None:
    """Rows of the position-embedding table (BERT family: ``*position_embeddings*``), when the graph has one."""
    for tensor in model.graph.initializer:
        if "position_embeddings" in tensor.name and len(tensor.dims) == 2:
            return int(tensor.dims[0])
    return None


def check_graph(path: Path, labels: int) -> GraphFacts:
    """Every static check of the graph (file, external data, checker, opset, inputs, output, labels)."""
    if not path.is_file():
        raise SourceError(f"ONNX file {path} does not exist (or is not a file).")
    if path.stat().st_size == 0:
        raise SourceError(f"{path} is empty, not an ONNX model.")
    external = external_data_files(path)  # before onnx reads anything a location names
    model = _load(path)
    opset = _opset(model)
    mapping = _inputs(model)
    output, count = _output(model, labels)
    producer = " ".join(p for p in (model.producer_name, model.producer_version) if p)
    return GraphFacts(path, mapping, output, count, opset, external, _max_positions(model), producer)
