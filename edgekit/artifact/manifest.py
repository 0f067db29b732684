"""The manifest: its dataclasses and the validation every reader applies before using a field."""

from __future__ import annotations

import dataclasses
import json
import posixpath
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from edgekit.artifact.checks import (  # noqa: F401  (re-exported: paths, integrity, bundles import them here)
    _FIX,
    MANIFEST_NAME,
    _bad,
    _is_int,
    _is_str,
    _is_str_list,
    _require,
    _show,
    check_relative_path,
)
from edgekit.artifact.task_fields import MAX_LENGTH_LIMIT, check_task_fields, task_files  # noqa: F401
from edgekit.artifact.task_fields import TEXT_INPUT_NAMES as INPUT_NAMES  # noqa: F401
from edgekit.errors import ArtifactError

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
    # Text: {"file": "tokenizer.json", "max_length": 128, ...}; None for tasks without one (images).
    tokenizer: dict[str, Any] | None
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
    # Images: decode, resize, crop, normalize (docs/artifact-format.md); None for text.
    preprocessing: dict[str, Any] | None = None
    mobile: dict[str, Any] | None = None  # Core ML / mobile packaging facts; None when not built for mobile
    # Provenance: versions of the libraries that built it ({"python": ..., "torch": ...}); None: older artifacts.
    toolchain: dict[str, str] | None = None
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
        fields.setdefault("tokenizer", None)  # absent for tasks without one (images)
        fields["inputs"] = [TensorSpec.from_dict(spec) for spec in data["inputs"]]
        fields["outputs"] = [TensorSpec.from_dict(spec) for spec in data["outputs"]]
        return cls(**fields)

    def label_for(self, index: int) -> str:
        return self.labels[index]


# ---------------------------------------------------------------------------------------------
# Manifest validation: every field a reader uses has the type and shape it expects, so a
# hostile or damaged manifest is one ArtifactError instead of a KeyError deep in the runtime.

_U32 = 1 << 32  # axis sizes are stored as unsigned 32-bit by the engines
_THREADS_LIMIT = 4096
_HEX64 = re.compile(r"[0-9a-f]{64}")
_TOOLCHAIN_LIMIT = 64  # libraries; a name or version is at most _TOOLCHAIN_TEXT characters
_TOOLCHAIN_TEXT = 100


def _check_labels(labels: Any) -> None:
    if not isinstance(labels, list) or not labels or not all(_is_str(label) for label in labels):
        raise _bad("`labels`", "a non-empty list of non-empty strings (one per model output)", labels)
    if len(set(labels)) != len(labels):
        raise _bad("`labels`", "a list of distinct names", labels)


def _check_tensors(key: str, specs: Any) -> None:
    if not isinstance(specs, list) or not specs or not all(isinstance(spec, dict) for spec in specs):
        raise _bad(f"`{key}`", "a non-empty list of {name, dtype, shape} objects", specs)
    for index, spec in enumerate(specs):
        where = f"{key}[{index}]."
        _require(spec, "name", _is_str, "a non-empty string", where)
        _require(spec, "dtype", _is_str, "a numpy dtype name such as int64", where)
        shape = _require(spec, "shape", lambda s: isinstance(s, list), "a list of axis names or sizes", where)
        # 0 is what an exporter writes for an axis it could neither size nor name
        if not all(isinstance(axis, str) or (_is_int(axis) and 0 <= axis < _U32) for axis in shape):
            raise _bad(f"`{where}shape`", "a list of axis names (dynamic) or sizes", shape)


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


def _check_toolchain(toolchain: Any) -> None:
    """Provenance only (nothing loads by it), but printed and compared: a bounded map of short strings."""
    if toolchain is None:
        return
    if not isinstance(toolchain, dict) or len(toolchain) > _TOOLCHAIN_LIMIT:
        raise _bad("`toolchain`", f"null or an object of at most {_TOOLCHAIN_LIMIT} library versions", toolchain)
    for name, version in toolchain.items():
        if not (_is_str(name) and len(name) <= _TOOLCHAIN_TEXT and name.isprintable()):
            raise _bad("a `toolchain` key", f"a library name (printable, 1 to {_TOOLCHAIN_TEXT} characters)", name)
        if not (_is_str(version) and len(version) <= _TOOLCHAIN_TEXT and version.isprintable()):
            raise _bad(f"`toolchain[{name!r}]`", f"a version string (printable, 1 to {_TOOLCHAIN_TEXT} characters)",
                       version)  # fmt: skip


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
    if data.get("mobile") is not None and not isinstance(data["mobile"], dict):
        raise _bad("`mobile`", "an object or null", data["mobile"])
    _check_toolchain(data.get("toolchain"))


def required_files(manifest_data: dict[str, Any]) -> list[str]:
    """Files the runtime opens by name, which must therefore be listed (and so hashed) in ``files``.

    ONNX external-data files are named inside the graph, not the manifest: ``model_file_path``
    checks them once the graph is there to read. A Core ML ``.mlpackage`` is a folder: its
    ``Manifest.json`` (which names the package's other files) must be listed, as must they.
    """
    model_file = manifest_data["model_file"]
    needed = [model_file] if not model_file.endswith(".mlpackage") else [f"{model_file}/Manifest.json"]
    needed += task_files(manifest_data)
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
    _check_tensors("inputs", data.get("inputs"))
    _check_tensors("outputs", data.get("outputs"))
    width = data["outputs"][0]["shape"][-1:]
    if width and _is_int(width[0]) and width[0] > 0 and width[0] != len(data["labels"]):
        raise ArtifactError(
            f"{MANIFEST_NAME} is malformed: the model outputs {width[0]} scores but `labels` names "
            f"{len(data['labels'])}; {_FIX}."
        )
    check_task_fields(data)  # inputs, tokenizer, preprocessing: what the task's pre-processing needs
    _check_runtime(data.get("runtime", {}))
    _check_optional_types(data)
    _check_files(data.get("files"))
    for rel in required_files(data):
        if rel not in data["files"]:
            raise ArtifactError(
                f"{MANIFEST_NAME} names {rel!r} but does not list it in `files`, so no hash covers it "
                f"and the runtime will not open it; {_FIX}."
            )
