"""Which external-data files an ONNX graph names, read from its protobuf without the onnx package."""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edgekit.artifact.manifest import _FIX
from edgekit.errors import ArtifactError

# ---------------------------------------------------------------------------------------------
# ONNX external data, read from the graph's protobuf without the onnx package (the runtime
# must stay light): only the few message fields that can hold a TensorProto are followed.

_EXTERNAL_DATA, _LOCATION_KEY = 13, b"location"  # TensorProto.external_data: [{key, value}]
_CHILDREN = {  # message -> {field number: child message} (onnx.proto3)
    "model": {7: "graph", 25: "function"},
    "function": {7: "node"},
    "graph": {1: "node", 5: "tensor", 15: "sparse"},
    "node": {5: "attribute"},
    "attribute": {5: "tensor", 6: "graph", 10: "tensor", 11: "graph", 22: "sparse", 23: "sparse"},
    "sparse": {1: "tensor", 2: "tensor"},
    "tensor": {},
}
_MAX_DEPTH = 64


class _Malformed(Exception):
    pass


def _varint(data: Any, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise _Malformed("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _messages(data: Any, pos: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(field number, start, end) of each length-delimited field of one message; others skipped."""
    while pos < end:
        key, pos = _varint(data, pos, end)
        wire = key & 7
        if wire == 0:
            _, pos = _varint(data, pos, end)
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        elif wire == 2:
            length, pos = _varint(data, pos, end)
            if pos + length > end:
                raise _Malformed("field runs past its message")
            yield key >> 3, pos, pos + length
            pos += length
        else:
            raise _Malformed(f"unsupported wire type {wire}")
    if pos != end:
        raise _Malformed("field runs past its message")


def _location(raw: bytes) -> str:
    """An external-data file name, exactly as the engine will open it: printable ASCII only, so the
    name checked and hashed here can never differ from the bytes ONNX Runtime resolves."""
    if not raw or not all(0x20 <= byte < 0x7F for byte in raw):
        raise _Malformed(f"an external-data location is not a printable ASCII file name ({raw[:80]!r})")
    return raw.decode("ascii")


def _scan(data: Any, kind: str, pos: int, end: int, depth: int, found: list[str]) -> None:
    if depth > _MAX_DEPTH:
        raise _Malformed("nested too deeply")
    children = _CHILDREN[kind]
    for number, start, stop in _messages(data, pos, end):
        if kind == "tensor" and number == _EXTERNAL_DATA:
            entry = {n: bytes(data[a:b]) for n, a, b in _messages(data, start, stop)}
            if entry.get(1) == _LOCATION_KEY:
                found.append(_location(entry.get(2, b"")))
        elif number in children:
            _scan(data, children[number], start, stop, depth + 1, found)


def onnx_external_data(path: Path) -> list[str]:
    """The external-data locations an ONNX graph names (relative to its folder), in order."""
    found: list[str] = []
    with path.open("rb") as handle:
        if os.fstat(handle.fileno()).st_size == 0:
            raise ArtifactError(f"{path.name} is empty, not an ONNX graph; {_FIX}.")
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            try:
                _scan(data, "model", 0, len(data), 0, found)
            except _Malformed as exc:
                raise ArtifactError(f"{path.name} is not a valid ONNX graph ({exc}); {_FIX}.") from None
    return list(dict.fromkeys(found))
