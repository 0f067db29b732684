"""Open Inference Protocol (KServe v2) bodies: an infer request in, the answer out.

Inputs: one tensor, ``text`` (text models) or ``image`` (image models), datatype ``BYTES``, shape
``[N]`` or ``[N, 1]``, in JSON ``data`` (strings; base64 for images) or in the binary tensor
extension (what ``tritonclient`` sends by default: the JSON header's length in the
``Inference-Header-Content-Length`` header, then each tensor's bytes; a BYTES element is a 4-byte
little-endian length and its bytes). Outputs: ``label`` (BYTES [N]), ``label_id`` (INT64 [N]) and
``probabilities`` (FP32 [N, labels]), in JSON or binary as asked. Every bound of ``/v1`` applies
(texts, characters, images, bytes); every refusal is a 400 whose message says what to send.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgekit.runtime import Prediction
from edgekit.serve.image_payload import _check_count, _check_size, _decode_base64
from edgekit.serve.limits import ServeLimits
from edgekit.serve.payload import PayloadError, PredictRequest, _check_text, _check_total, json_type

HEADER_LENGTH = "inference-header-content-length"
OUTPUTS = ("label", "label_id", "probabilities")
_DATATYPES = {"label": "BYTES", "label_id": "INT64", "probabilities": "FP32"}
_REQUEST_KEYS = {"id", "parameters", "inputs", "outputs"}
_INPUT_KEYS = {"name", "shape", "datatype", "parameters", "data"}


def bad(message: str) -> PayloadError:
    return PayloadError(400, message)


@dataclass(frozen=True)
class Kind:
    """What the model takes: ``text`` or ``image``, and the bounds of a request."""

    input_name: str
    limits: ServeLimits
    image_bytes: int | None = None  # images only: the bound per encoded image

    @property
    def max_rows(self) -> int:
        return self.limits.max_images if self.image_bytes is not None else self.limits.max_texts

    def example(self) -> str:
        return (f'{{"inputs": [{{"name": "{self.input_name}", "datatype": "BYTES", "shape": [2], '
                f'"data": ["...", "..."]}}]}}')  # fmt: skip


@dataclass
class InferRequest:
    inputs: list[Any]  # texts, or encoded images
    id: str | None = None
    outputs: list[str] = field(default_factory=lambda: list(OUTPUTS))
    binary: set[str] = field(default_factory=set)  # outputs to answer in the binary extension


def parse_infer(body: bytes, header_length: str | None, kind: Kind) -> InferRequest:
    header, binary = _split(body, header_length)
    try:
        document = json.loads(header)
    except (ValueError, RecursionError):
        raise bad(f"The request body is not valid JSON; send {kind.example()}.") from None
    if not isinstance(document, dict):
        raise bad(f"The request body must be a JSON object, not {json_type(document)}; send {kind.example()}.")
    unknown = sorted(set(document) - _REQUEST_KEYS)
    if unknown:
        raise bad(f"Unknown field(s) {', '.join(map(repr, unknown))} in the infer request; send {kind.example()}.")
    request_id = document.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise bad(f"'id' must be a string, not {json_type(request_id)}.")
    parameters = _object(document.get("parameters", {}), "parameters")
    tensors = document.get("inputs")
    if not isinstance(tensors, list) or len(tensors) != 1:
        raise bad(f"'inputs' must be an array of exactly one tensor named {kind.input_name!r}; send {kind.example()}.")
    inputs, used = _read_input(tensors[0], binary, kind)
    if used != len(binary):
        raise bad(f"The body holds {len(binary) - used:,} bytes after the tensors its header describes; "
                  "binary_data_size must count every byte sent after the JSON header.")  # fmt: skip
    outputs, binary_out = _requested_outputs(document.get("outputs"), parameters.get("binary_data_output", False))
    request = InferRequest(inputs, request_id, outputs, binary_out)
    check_request_total(request, kind)
    return request


def _split(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    if header_length is None:
        return body, b""
    if not header_length.isdigit() or not 0 < int(header_length) <= len(body):
        raise bad(f"Inference-Header-Content-Length is {header_length[:20]!r}; it must be the byte length of the "
                  f"JSON header, between 1 and the body's {len(body):,} bytes.")  # fmt: skip
    return body[: int(header_length)], body[int(header_length) :]


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise bad(f"'{where}' must be an object, not {json_type(value)}.")
    return value


def _read_input(tensor: Any, binary: bytes, kind: Kind) -> tuple[list[Any], int]:
    """The rows of the one input tensor, and how many binary bytes it took."""
    tensor = _object(tensor, "inputs[0]")
    unknown = sorted(set(tensor) - _INPUT_KEYS)
    if unknown:
        raise bad(f"Unknown field(s) {', '.join(map(repr, unknown))} in inputs[0].")
    if tensor.get("name") != kind.input_name:
        raise bad(f"inputs[0] is named {tensor.get('name')!r}; this model takes one input named "
                  f"{kind.input_name!r}.")  # fmt: skip
    if tensor.get("datatype") != "BYTES":
        raise bad(f"Input {kind.input_name!r} has datatype {tensor.get('datatype')!r}; it must be \"BYTES\" "
                  f"({'UTF-8 texts' if kind.image_bytes is None else 'encoded images (PNG, JPEG ...)'}).")  # fmt: skip
    rows = _rows(tensor.get("shape"), kind)
    parameters = _object(tensor.get("parameters", {}), "inputs[0].parameters")
    if "shared_memory_region" in parameters:
        raise bad("The shared-memory extension is not supported; send the data in the body (JSON or binary).")
    if "binary_data_size" in parameters:
        size = parameters["binary_data_size"]
        if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= len(binary):
            raise bad(f"binary_data_size is {size!r}; it must be the tensor's byte count, at most the "
                      f"{len(binary):,} bytes after the JSON header.")  # fmt: skip
        if "data" in tensor:
            raise bad("inputs[0] has both 'data' and binary_data_size; send the tensor one way.")
        elements = _bytes_elements(binary[:size], rows)
        return [_binary_row(e, i, kind) for i, e in enumerate(elements)], size
    data = tensor.get("data")
    if isinstance(data, list) and data and all(isinstance(row, list) and len(row) == 1 for row in data):
        data = [row[0] for row in data]  # [N, 1] sent nested, row-major
    if not isinstance(data, list) or len(data) != rows:
        what = f"{len(data)} elements" if isinstance(data, list) else json_type(data)
        raise bad(f"inputs[0].data holds {what}, but its shape says {rows}; send one element per row.")
    return [_json_row(value, i, kind) for i, value in enumerate(data)], 0


def _rows(shape: Any, kind: Kind) -> int:
    valid = isinstance(shape, list) and all(isinstance(d, int) and not isinstance(d, bool) for d in shape)
    if not valid or len(shape) not in (1, 2) or (len(shape) == 2 and shape[1] != 1) or shape[0] < 1:
        raise bad(f"Input {kind.input_name!r} has shape {shape!r}; send [N] or [N, 1] with N >= 1.")
    if shape[0] > kind.max_rows:
        raise bad(f"The request holds {shape[0]} rows; this server takes at most {kind.max_rows} per request. "
                  "Split them over several requests.")  # fmt: skip
    return int(shape[0])


def _bytes_elements(blob: bytes, rows: int) -> list[bytes]:
    """BYTES tensor, binary form: each element a 4-byte little-endian length, then that many bytes."""
    elements, offset = [], 0
    while offset < len(blob):
        if offset + 4 > len(blob):
            raise bad("The binary BYTES tensor ends inside an element's 4-byte length prefix.")
        (length,) = struct.unpack_from("<I", blob, offset)
        if offset + 4 + length > len(blob):
            raise bad(f"A binary BYTES element says {length:,} bytes, more than the tensor holds.")
        elements.append(blob[offset + 4 : offset + 4 + length])
        offset += 4 + length
        if len(elements) > rows:
            break
    if len(elements) != rows:
        raise bad(f"The binary BYTES tensor holds {len(elements)}{'+' if offset < len(blob) else ''} elements, "
                  f"but its shape says {rows}.")  # fmt: skip
    return elements


def _binary_row(element: bytes, index: int, kind: Kind) -> Any:
    if kind.image_bytes is not None:
        _check_size(len(element), f"image[{index}]", kind.image_bytes)
        return element
    max_chars = kind.limits.max_text_chars or kind.limits.max_request_chars
    if len(element) > 4 * max_chars:  # UTF-8: at most 4 bytes a character; refused before decoding
        raise bad(f"text[{index}] is {len(element):,} bytes; this server takes at most {max_chars:,} characters.")
    try:
        text = element.decode("utf-8")
    except UnicodeDecodeError:
        raise bad(f"text[{index}] is not valid UTF-8; send texts encoded as UTF-8.") from None
    return _text(text, index, kind)


def _json_row(value: Any, index: int, kind: Kind) -> Any:
    if kind.image_bytes is not None:
        try:
            return _decode_base64(value, f"image[{index}]", kind.image_bytes)
        except PayloadError as exc:
            raise bad(exc.message) from None
    if not isinstance(value, str):
        raise bad(f"text[{index}] must be a string, not {json_type(value)}.")
    return _text(value, index, kind)


def _text(text: str, index: int, kind: Kind) -> str:
    try:
        return _check_text(text, f"text[{index}]", kind.limits)
    except PayloadError as exc:
        raise bad(exc.message) from None


def check_request_total(request: InferRequest, kind: Kind) -> None:
    """All the rows together within the request bounds (characters of text, count of images)."""
    try:
        if kind.image_bytes is not None:
            _check_count(len(request.inputs), kind.limits)
        else:
            _check_total(PredictRequest(request.inputs, single=False), kind.limits)
    except PayloadError as exc:
        raise bad(exc.message) from None


def _requested_outputs(requested: Any, binary_default: Any) -> tuple[list[str], set[str]]:
    if not isinstance(binary_default, bool):
        raise bad(f"parameters.binary_data_output must be true or false, not {json_type(binary_default)}.")
    if requested is None:
        return list(OUTPUTS), set(OUTPUTS) if binary_default else set()
    if not isinstance(requested, list) or not requested:
        raise bad(f"'outputs' must be a non-empty array of {{\"name\": ...}} objects; the outputs are {OUTPUTS}.")
    names, binary = [], set()
    for i, item in enumerate(requested):
        item = _object(item, f"outputs[{i}]")
        name = item.get("name")
        if name not in OUTPUTS:
            raise bad(f"outputs[{i}] asks for {name!r}; this model's outputs are {', '.join(OUTPUTS)}.")
        flag = _object(item.get("parameters", {}), f"outputs[{i}].parameters").get("binary_data", binary_default)
        if not isinstance(flag, bool):
            raise bad(f"outputs[{i}].parameters.binary_data must be true or false.")
        names.append(name)
        if flag:
            binary.add(name)
    return names, binary


def encode_response(model_name: str, request: InferRequest, predictions: Sequence[Prediction],
                    labels: Sequence[str]) -> tuple[bytes, dict[str, str]]:  # fmt: skip
    """The response body and its headers (``Inference-Header-Content-Length`` when a tensor is binary)."""
    rows = len(predictions)
    values = {
        "label": [p.label for p in predictions],
        "label_id": np.array([p.label_id for p in predictions], dtype="<i8"),
        "probabilities": np.array([p.scores for p in predictions], dtype="<f4").reshape(rows, len(labels)),
    }
    outputs, blobs = [], []
    for name in request.outputs:
        value = values[name]
        shape = [rows, len(labels)] if name == "probabilities" else [rows]
        tensor: dict[str, Any] = {"name": name, "datatype": _DATATYPES[name], "shape": shape}
        if name in request.binary:
            blob = _bytes_blob(value) if name == "label" else value.tobytes()
            tensor["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            tensor["data"] = value if name == "label" else value.reshape(-1).tolist()
        outputs.append(tensor)
    document: dict[str, Any] = {"model_name": model_name, "model_version": "1", "outputs": outputs}
    if request.id is not None:
        document["id"] = request.id
    header = json.dumps(document).encode()
    if not blobs:
        return header, {"content-type": "application/json"}
    return header + b"".join(blobs), {"content-type": "application/octet-stream",
                                      HEADER_LENGTH: str(len(header))}  # fmt: skip


def _bytes_blob(texts: list[str]) -> bytes:
    return b"".join(struct.pack("<I", len(e)) + e for e in (t.encode("utf-8") for t in texts))
