"""The manifest: its dataclasses and the validation every reader applies before using a field."""

from __future__ import annotations

import dataclasses
import json
import posixpath
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from edgekit.errors import ArtifactError

MANIFEST_NAME = "manifest.json"
SUMMARY_NAME = "summary.json"  # marks a bundle: several variant artifacts in sub-folders
FORMAT_VERSION = 1
_HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str  # numpy dtype name: int64, float32 ...
    shape: list[str | int]  # symbolic names are dynamic axes, e.g. ["batch", "sequence"]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TensorSpec:
        return cls(data["name"], data["dtype"], data["shape"])  # other keys: ignored, as in Manifest


@dataclass
class Manifest:
    """Everything a runtime (in any language) needs to load and feed the model.

    ``docs/artifact-format.md`` is the human description of these fields; keep both in step.
    """

    task: str
    labels: list[str]
    engine: str  # "onnxruntime"
    precision: str  # "fp32", "fp16", "int8"
    model_file: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    tokenizer: dict[str, Any]  # {"file": "tokenizer.json", "max_length": 128, ...}
    source: dict[str, Any]
    recipe_hash: str
    edgekit_version: str
    target: str | None = None
    exporter: str | None = None
    runtime: dict[str, Any] = field(default_factory=dict)  # defaults from the target: threads, engines
    parity: dict[str, Any] | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # Whether a row's outputs are independent of the other rows in its batch (padding included).
    # None (older artifacts): the runtime decides; it runs ONNX Runtime INT8 row by row.
    batch_invariant: bool | None = None
    files: dict[str, str] = field(default_factory=dict)  # relative path -> sha256
    format_version: int = FORMAT_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_dict(cls, data: Any) -> Manifest:
        """A manifest from parsed JSON; anything of the wrong type or shape is an ``ArtifactError``."""
        validate_manifest(data)
        # Readers ignore fields they do not know: additions keep format_version 1, so an
        # older runtime still loads a newer artifact (a breaking change bumps the version).
        known = {f.name for f in dataclasses.fields(cls)}
        fields = {key: value for key, value in data.items() if key in known}
        fields["inputs"] = [TensorSpec.from_dict(spec) for spec in data["inputs"]]
        fields["outputs"] = [TensorSpec.from_dict(spec) for spec in data["outputs"]]
        return cls(**fields)

    def label_for(self, index: int) -> str:
        return self.labels[index]


# ---------------------------------------------------------------------------------------------
# Manifest validation: every field a reader uses has the type and shape it expects, so a
# hostile or damaged manifest is one ArtifactError instead of a KeyError deep in the runtime.

INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")  # the only inputs version 1 feeds
MAX_LENGTH_LIMIT = 1 << 20  # tokens; far above any model, and small enough for `tokenizers` (usize)
_U32 = 1 << 32  # tokenizers takes pad_id as an unsigned 32-bit id
_THREADS_LIMIT = 4096
_HEX64 = re.compile(r"[0-9a-f]{64}")
_FIX = "re-export the artifact with `edgekit convert` (and do not load an artifact you did not make)"


def _show(value: Any) -> str:
    """A short description of a bad value for a one-line error message."""
    text = repr(value)
    return f"{type(value).__name__} {text[:60]}{'...' if len(text) > 60 else ''}"


def _bad(what: str, expected: str, value: Any) -> ArtifactError:
    return ArtifactError(f"{MANIFEST_NAME} is malformed: {what} must be {expected}, not {_show(value)}; {_FIX}.")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # JSON true is no number


def _require(data: dict[str, Any], key: str, check: Any, expected: str, where: str = "") -> Any:
    if key not in data:
        raise ArtifactError(f"{MANIFEST_NAME} is malformed: it has no `{where}{key}` ({expected}); {_FIX}.")
    value = data[key]
    if not check(value):
        raise _bad(f"`{where}{key}`", expected, value)
    return value


def _is_str(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _check_labels(labels: Any) -> None:
    if not isinstance(labels, list) or not labels or not all(_is_str(label) for label in labels):
        raise _bad("`labels`", "a non-empty list of non-empty strings (one per model output)", labels)
    if len(set(labels)) != len(labels):
        raise _bad("`labels`", "a list of distinct names", labels)


def _check_tensors(key: str, specs: Any, inputs: bool) -> None:
    if not isinstance(specs, list) or not specs or not all(isinstance(spec, dict) for spec in specs):
        raise _bad(f"`{key}`", "a non-empty list of {name, dtype, shape} objects", specs)
    for index, spec in enumerate(specs):
        where = f"{key}[{index}]."
        name = _require(spec, "name", _is_str, "a non-empty string", where)
        _require(spec, "dtype", _is_str, "a numpy dtype name such as int64", where)
        shape = _require(spec, "shape", lambda s: isinstance(s, list), "a list of axis names or sizes", where)
        # 0 is what an exporter writes for an axis it could neither size nor name
        if not all(isinstance(axis, str) or (_is_int(axis) and 0 <= axis < _U32) for axis in shape):
            raise _bad(f"`{where}shape`", "a list of axis names (dynamic) or sizes", shape)
        if inputs and (name not in INPUT_NAMES or spec["dtype"] != "int64"):
            raise _bad(f"`{where}name`/`dtype`", f"an int64 input named one of {', '.join(INPUT_NAMES)}", spec)


def _check_tokenizer(tokenizer: Any) -> None:
    if not isinstance(tokenizer, dict):
        raise _bad("`tokenizer`", "an object with file, max_length, pad_id and pad_token", tokenizer)
    check_relative_path(_require(tokenizer, "file", _is_str, "a relative path", "tokenizer."), "`tokenizer.file`")
    _require(tokenizer, "max_length", lambda v: _is_int(v) and 0 < v <= MAX_LENGTH_LIMIT,
             f"a positive integer (at most {MAX_LENGTH_LIMIT})", "tokenizer.")  # fmt: skip
    _require(tokenizer, "pad_id", lambda v: _is_int(v) and 0 <= v < _U32, "a token id (integer >= 0)", "tokenizer.")
    _require(tokenizer, "pad_token", lambda v: isinstance(v, str), "a string", "tokenizer.")
    side = tokenizer.get("truncation_side", "right")
    if side not in ("left", "right"):
        raise _bad("`tokenizer.truncation_side`", "'left' or 'right'", side)


def _check_runtime(runtime: Any) -> None:
    """The target's defaults that ``runtime/settings.py`` reads: threads and engines -> providers/devices."""
    if not isinstance(runtime, dict):
        raise _bad("`runtime`", "an object (threads, engines)", runtime)
    threads = runtime.get("threads")
    if threads is not None and not (_is_int(threads) and 0 < threads <= _THREADS_LIMIT):
        raise _bad("`runtime.threads`", f"null or a positive integer (at most {_THREADS_LIMIT})", threads)
    engines = runtime.get("engines", {})
    if not isinstance(engines, dict) or not all(isinstance(choice, dict) for choice in engines.values()):
        raise _bad("`runtime.engines`", "an object mapping engine names to {providers, devices}", engines)
    for name, choice in engines.items():
        for key in ("providers", "devices"):
            if choice.get(key) is not None and not _is_str_list(choice[key]):
                raise _bad(f"`runtime.engines.{name}.{key}`", "a list of strings", choice[key])


def _check_files(files: Any) -> None:
    if not isinstance(files, dict) or not files:
        raise _bad("`files`", "a non-empty object mapping relative paths to sha256 hex digests", files)
    for rel, digest in files.items():
        check_relative_path(rel, "A `files` entry")
        if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
            raise _bad(f"`files[{rel!r}]`", "a sha256 as 64 lower-case hex digits", digest)


def _check_optional_types(data: dict[str, Any]) -> None:
    for key in ("target", "exporter"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise _bad(f"`{key}`", "a string or null", data[key])
    _require(data, "source", lambda v: isinstance(v, dict), "an object (where the model came from)")
    if not isinstance(data.get("metrics", {}), dict):
        raise _bad("`metrics`", "an object", data["metrics"])
    if data.get("parity") is not None and not isinstance(data["parity"], dict):
        raise _bad("`parity`", "an object or null", data["parity"])
    if not _is_str_list(data.get("notes", [])):
        raise _bad("`notes`", "a list of strings", data["notes"])


def required_files(manifest_data: dict[str, Any]) -> list[str]:
    """Files the runtime opens by name, which must therefore be listed (and so hashed) in ``files``.

    ONNX external-data files are named inside the graph, not the manifest: ``model_file_path``
    checks them once the graph is there to read.
    """
    model_file = manifest_data["model_file"]
    needed = [model_file, manifest_data["tokenizer"]["file"]]
    if model_file.endswith(".xml"):  # OpenVINO IR reads its weights from the .bin beside it
        needed.append(model_file[: -len(".xml")] + ".bin")
    return needed


def validate_manifest(data: Any) -> None:
    """Raise ``ArtifactError`` (one line: what is wrong, how to fix it) unless ``data`` is a usable manifest."""
    if not isinstance(data, dict):
        raise _bad("the manifest", "a JSON object", data)
    version = data.get("format_version")
    if not _is_int(version) or version != FORMAT_VERSION:
        raise ArtifactError(
            f"Artifact format version {version!r} is not supported by this edgekit "
            f"(it reads version {FORMAT_VERSION}). Re-export the model with this version."
        )
    for key in ("task", "engine", "precision", "recipe_hash", "edgekit_version"):
        _require(data, key, lambda v: isinstance(v, str), "a string")
    model_file = check_relative_path(_require(data, "model_file", _is_str, "a relative path"), "`model_file`")
    suffix = posixpath.splitext(model_file)[1]
    if suffix != suffix.lower():  # engines match suffixes case-blind; the side-file rules here must too
        raise _bad("`model_file`", "a file name with a lower-case suffix (model.onnx, model.xml)", model_file)
    _check_labels(data.get("labels"))
    _check_tensors("inputs", data.get("inputs"), inputs=True)
    _check_tensors("outputs", data.get("outputs"), inputs=False)
    width = data["outputs"][0]["shape"][-1:]
    if width and _is_int(width[0]) and width[0] > 0 and width[0] != len(data["labels"]):
        raise ArtifactError(
            f"{MANIFEST_NAME} is malformed: the model outputs {width[0]} scores but `labels` names "
            f"{len(data['labels'])}; {_FIX}."
        )
    _check_tokenizer(data.get("tokenizer"))
    _check_runtime(data.get("runtime", {}))
    _check_optional_types(data)
    _check_files(data.get("files"))
    for rel in required_files(data):
        if rel not in data["files"]:
            raise ArtifactError(
                f"{MANIFEST_NAME} names {rel!r} but does not list it in `files`, so no hash covers it "
                f"and the runtime will not open it; {_FIX}."
            )


def check_relative_path(rel: Any, what: str) -> str:
    """``rel`` if it is a plain relative POSIX path that cannot leave its folder (checked on the string)."""
    if not isinstance(rel, str) or not rel:
        raise ArtifactError(f"{what} must be a non-empty relative path, not {_show(rel)}; {_FIX}.")
    problem = None
    if "\x00" in rel:
        problem = "contains a NUL character"
    elif "\\" in rel or ":" in rel:
        problem = "contains '\\' or ':' (paths are '/'-separated; no drive letters or streams)"
    elif rel.startswith("/"):
        problem = "is absolute"
    elif any(part in ("", ".", "..") for part in rel.split("/")):
        problem = "has an empty, '.' or '..' component"
    if problem:
        raise ArtifactError(f"{what} {rel!r} {problem}: an artifact may only name files inside its own folder; {_FIX}.")
    return rel
