"""An ONNX text classifier made elsewhere (Optimum, tf2onnx, torch.onnx) as a conversion source.

There is no PyTorch model, so the given graph *is* the FP32 reference (``onnx-fp32``): it is
checked (``onnx_check.py``), copied into the artifact (inputs renamed to the runtime's names when
an exporter used others), and the parity check compares the artifact run by edgekit's runtime
with its ``tokenizer.json`` against ONNX Runtime on the given file with the source tokenizer:
that proves the packaging and the tokenizer, not an export. Variants built from the reference
(ORT INT8, OpenVINO, ORT Mobile) are gated as usual; those that need the PyTorch module
(ExecuTorch, Core ML) and distillation are refused before any work.

Recipe form: ``model: {onnx: FILE, tokenizer: DIR, labels: [...]}``, like the image factory
mapping; ``model: FILE.onnx`` and an Optimum export folder (``model.onnx`` + ``config.json`` +
tokenizer files, no PyTorch weights) are read as the same thing, labels from ``id2label``.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from edgekit.artifact import sha256_file
from edgekit.convert.onnx_check import GraphFacts, check_graph, external_data_files
from edgekit.convert.sources import LoadedSource, weight_files
from edgekit.errors import RecipeError, SourceError

KIND = "onnx"  # LoadedSource.info["kind"] (and the manifest's source.kind)
TASK = "text-classification"
REFERENCE_NOTE = "reference is the given ONNX graph"
_TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model", "sentencepiece.bpe.model",
                    "tokenizer.model")  # fmt: skip
_PROBE_TEXTS = ["ok", "a longer probe sentence, to try a second sequence length", "and a third one"]


class OnnxSpec(BaseModel):
    """A recipe's ``model:`` mapping for an ONNX file."""

    model_config = ConfigDict(extra="forbid")
    onnx: Path = Field(description="the .onnx file (external-data files beside it)")
    tokenizer: Path | None = Field(None, description="folder with the fast tokenizer; None: the ONNX file's folder")
    labels: list[str] | None = Field(None, min_length=2, description="None: config.json's id2label beside the file")

    def __str__(self) -> str:  # progress lines and messages
        return str(self.onnx)

    def __fspath__(self) -> str:
        # What the source is on disk: code that treats a recipe's model as a path (inputs of the run,
        # the public source name) sees the graph file.
        return str(self.onnx)

    @property
    def tokenizer_dir(self) -> Path:
        return Path(self.tokenizer) if self.tokenizer is not None else Path(self.onnx).parent


def onnx_spec(model: Any) -> OnnxSpec | None:
    """The recipe's model as an ``OnnxSpec`` when it is one: the mapping, a ``.onnx`` file, or an
    export folder holding ``model.onnx`` and no PyTorch weights. ``None`` for anything else."""
    if isinstance(model, OnnxSpec):
        return model
    if not isinstance(model, str):
        return None
    path = Path(model).expanduser()
    if path.is_file() and path.suffix == ".onnx":
        return OnnxSpec(onnx=path)
    if path.is_dir() and (path / "model.onnx").is_file() and not weight_files(path):
        return OnnxSpec(onnx=path / "model.onnx", tokenizer=path)
    return None


def fingerprint(path: Path) -> tuple[str, list[str]]:
    """sha256 of the graph (with its external data: every file's name and sha256) and the files it covers."""
    external = external_data_files(path)
    if not external:
        return sha256_file(path), [path.name]
    digest = hashlib.sha256()
    for name in [path.name, *external]:
        digest.update(f"{name}:{sha256_file(path.parent / name)}\n".encode())
    return digest.hexdigest(), [path.name, *external]


def describe(spec: OnnxSpec) -> dict[str, Any]:
    """The source's kind and weights' sha256 without loading it (the reuse check)."""
    path = Path(spec.onnx).expanduser()
    if not path.is_file():
        return {"kind": KIND}  # nothing to reuse; loading says what is missing
    return {"kind": KIND, "weights_sha256": fingerprint(path)[0]}


def refuse_pytorch_stages(recipe: Any) -> None:
    """Distillation and the kinds that export from the PyTorch module cannot start from an ONNX file."""
    from edgekit.convert.variants import get_variant

    if recipe.task != TASK:
        raise RecipeError(f"An ONNX file is converted as {TASK}; the recipe asks for {recipe.task}.")
    if recipe.distill is not None:
        raise RecipeError(
            "Distillation trains a student from the PyTorch teacher, and an ONNX file has none. Distil the "
            "checkpoint the ONNX file was exported from, or drop `distill:` / --distill-layers."
        )
    needs = [name for name in recipe.variant_names if needs_pytorch(get_variant(name))]
    needs += [name for name in recipe.variant_names if getattr(recipe.variant_options(name), "qat", None)]
    if needs:
        raise RecipeError(
            f"Variants {needs} are exported from (or fine-tuned on: `qat`) the PyTorch module, and an ONNX file "
            "has none. Build them from the Hugging Face checkpoint instead, or choose variants made from ONNX "
            "(onnx-fp32, ort-int8-* without `qat`, ov-*, ort-mobile-*)."
        )


def needs_pytorch(kind: Any) -> bool:
    """Whether a variant kind builds from the PyTorch module (ctx.source.model) rather than the ONNX reference."""
    return bool(kind.needs_source_model)


class OnnxReference:
    """Stands in for the PyTorch model where conversion compares against the source (parity, strict
    parity of fp32 variants): ONNX Runtime on the given file, fed by the source tokenizer."""

    def __init__(self, facts: GraphFacts, max_positions: int | None, config: dict[str, Any] | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # parity runs a handful of texts; leave the cores to the rest
        try:
            self.session = ort.InferenceSession(str(facts.path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # ORT raises its own Fail/InvalidGraph/NotImplemented types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise SourceError(f"ONNX Runtime cannot load {facts.path.name}: {first}") from None
        self.facts = facts
        self.config = SimpleNamespace(max_position_embeddings=max_positions)
        if config is not None:  # an export folder's config.json: the artifact keeps it for Optimum (hf_files.py)
            self.config.to_dict = lambda: dict(config)

    def eval(self) -> OnnxReference:
        return self

    def run(self, encoded: dict[str, Any]) -> np.ndarray:
        ids = np.asarray(encoded["input_ids"], dtype=np.int64)
        feed = {}
        for name, canonical in self.facts.input_map.items():
            value = encoded.get(canonical)
            feed[name] = np.zeros_like(ids) if value is None else np.asarray(value, dtype=np.int64)
        return self.session.run([self.facts.output_name], feed)[0]

    def __call__(self, **encoded: Any) -> Any:
        import torch

        numpy = {k: v.numpy() if hasattr(v, "numpy") else v for k, v in encoded.items()}
        return SimpleNamespace(logits=torch.from_numpy(np.ascontiguousarray(self.run(numpy), dtype=np.float32)))


def _tokenizer(folder: Path) -> Any:
    import transformers

    if not folder.is_dir() or not any((folder / name).is_file() for name in _TOKENIZER_FILES):
        raise SourceError(
            f"No tokenizer for the ONNX model: {folder} has none of {', '.join(_TOKENIZER_FILES)}. Pass "
            "--tokenizer DIR (recipe: `model: {onnx: ..., tokenizer: DIR}`), the folder the tokenizer was saved "
            "to with `tokenizer.save_pretrained(DIR)`."
        )
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder), use_fast=True)
    except Exception as exc:  # transformers raises many types for damaged tokenizer files
        raise SourceError(f"Could not load the tokenizer in {folder}: {str(exc).strip()[:200]}") from None
    if not tokenizer.is_fast:
        raise SourceError(f"The tokenizer in {folder} is not a fast tokenizer (tokenizer.json); the runtime needs one.")
    return tokenizer


def _config(spec: OnnxSpec) -> dict[str, Any] | None:
    """config.json beside the graph or the tokenizer (an Optimum export folder has one), if any."""
    from edgekit.tasks.detect import read_config

    for folder in dict.fromkeys([Path(spec.onnx).parent, spec.tokenizer_dir]):
        if (folder / "config.json").is_file():
            return read_config(folder)
    return None


def _labels(spec: OnnxSpec, config: dict[str, Any] | None) -> list[str]:
    if spec.labels is not None:
        return list(spec.labels)
    if config is None:
        raise SourceError(
            f"No labels for {Path(spec.onnx).name}: pass --labels neg,pos (recipe: `labels: [...]`), one per "
            "logit in the head's order, or put the model's config.json (with id2label) beside it."
        )
    from edgekit.tasks.detect import detect_task

    detect_task(config, [TASK])  # a sequence-classification head, id2label 0..n-1, not regression
    id2label = config.get("id2label") or {}
    return [str(id2label[key]) for key in sorted(id2label, key=int)] or ["LABEL_0", "LABEL_1"]


def _probe(reference: OnnxReference, tokenizer: Any, labels: list[str], max_length: int) -> None:
    """Run the graph on two batch sizes and lengths: dynamic axes that only look dynamic fail here."""
    for texts in (_PROBE_TEXTS[:1], _PROBE_TEXTS):
        encoded = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="np")
        try:
            logits = reference.run(dict(encoded))
        except Exception as exc:  # ORT's RuntimeException: a Reshape to a fixed size and the like
            first = str(exc).strip().splitlines()[0][:300]
            raise SourceError(
                f"{reference.facts.path.name} fails on a batch of {len(texts)} texts of "
                f"{encoded['input_ids'].shape[1]} tokens ({first}): its shapes are fixed inside the graph. "
                "Re-export with dynamic batch and sequence axes."
            ) from None
        if logits.shape != (len(texts), len(labels)):
            raise SourceError(
                f"{reference.facts.path.name} returns logits of shape {list(logits.shape)} for {len(texts)} texts; "
                f"expected [{len(texts)}, {len(labels)}] (one logit per label)."
            )


def load_onnx_source(spec: OnnxSpec, record_path: bool = False) -> LoadedSource:
    """Check the graph, load the tokenizer and labels, and probe the graph under ONNX Runtime."""
    path = Path(spec.onnx).expanduser()
    if not path.is_file():
        raise SourceError(f"ONNX file {path} does not exist (or is not a file).")
    config = _config(spec)
    labels = _labels(spec, config)
    facts = check_graph(path, len(labels))
    tokenizer = _tokenizer(spec.tokenizer_dir.expanduser())
    positions = facts.max_positions or (config or {}).get("max_position_embeddings")
    reference = OnnxReference(facts, positions if isinstance(positions, int) else None, config)
    source = LoadedSource(reference, tokenizer, labels, TASK, _info(spec, facts, record_path, config), str(path))
    try:
        max_length = source.max_length
    except ValueError:  # min() of nothing: neither the graph nor the tokenizer says how long an input may be
        raise SourceError(
            f"Neither {path.name} nor the tokenizer says how many tokens the model takes. Save the tokenizer with "
            "its limit (`tokenizer.model_max_length = 512; tokenizer.save_pretrained(DIR)`)."
        ) from None
    _probe(reference, tokenizer, labels, max_length)
    return source


def _info(spec: OnnxSpec, facts: GraphFacts, record_path: bool, config: dict[str, Any] | None) -> dict[str, Any]:
    path = Path(spec.onnx).expanduser().resolve()
    digest, files = fingerprint(path)
    named = (config or {}).get("architectures")
    folder_export = path.name == "model.onnx" and spec.tokenizer_dir.expanduser().resolve() == path.parent
    info: dict[str, Any] = {
        "kind": KIND,
        "name": path.parent.name if folder_export else path.name,  # an export folder is named by its folder
        "weights_files": files,
        "weights_sha256": digest,
        "opset": facts.opset,
        "architecture": named[0] if isinstance(named, list) and named and isinstance(named[0], str) else "onnx",
    }
    if facts.needs_renaming:
        info["renamed_inputs"] = {name: new for name, new in facts.input_map.items() if name != new}
    if facts.producer:
        info["producer"] = facts.producer
    if facts.max_positions:
        info["max_positions"] = facts.max_positions
    if record_path:
        info["path"] = str(path)
    return info


def write_reference(source: LoadedSource, folder: Path) -> Any:
    """The given graph as the artifact's ``model.onnx`` (external data beside it), inputs renamed if needed."""
    from edgekit.export.graph import describe_onnx

    facts: GraphFacts = source.model.facts
    target = folder / "model.onnx"
    if facts.needs_renaming:
        _write_renamed(facts, target)
    else:  # byte for byte: the artifact's graph is the file that was checked
        shutil.copyfile(facts.path, target)
        for location in facts.external_data:
            (folder / location).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(facts.path.parent / location, folder / location)
    return describe_onnx(target, exporter=f"given ONNX file ({facts.producer or 'unknown producer'})")


def _write_renamed(facts: GraphFacts, target: Path) -> None:
    import onnx

    model = onnx.load(str(facts.path))  # external data: checked to lie inside the graph's folder
    renames = {name: canonical for name, canonical in facts.input_map.items() if name != canonical}
    for value in model.graph.input:
        value.name = renames.get(value.name, value.name)
    _rename_uses(model.graph, renames)
    large = model.ByteSize() > 1_800_000_000  # protobuf's 2 GB limit
    onnx.save(model, str(target), save_as_external_data=large, location="model.onnx.data")


def _rename_uses(graph: Any, renames: dict[str, str]) -> None:
    """Every node input (subgraphs of If/Loop included: they may read outer values) that names a renamed input."""
    for node in graph.node:
        for index, name in enumerate(node.input):
            if name in renames:
                node.input[index] = renames[name]
        for attribute in node.attribute:
            for subgraph in [attribute.g, *attribute.graphs] if attribute.HasField("g") else attribute.graphs:
                _rename_uses(subgraph, renames)
