"""Turn a ``POST /v1/predict`` body for an image model into encoded images, or say exactly what is wrong.

Two ways to send images: ``multipart/form-data`` with one file field ``image`` per image (what
``curl -F image=@cat.jpg`` sends), or JSON ``{"image": "<base64>"}`` / ``{"images": [...]}``. The
body was already read within ``max_body_bytes``; here each image is bounded in count and bytes
before a request takes a worker. Images are never paths: the server reads no file a client
names. Pixel bounds (decompression bombs) and decoding are the runtime pre-processor's, whose
``InputError`` the app answers with 422 like any other bad input.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from edgekit.serve.limits import ServeLimits
from edgekit.serve.payload import PayloadError, json_type

IMAGE_EXAMPLE = ("multipart/form-data with one file field 'image' per image (curl -F image=@cat.jpg), "
                 'or JSON {"image": "<base64>"} or {"images": ["<base64>", ...]}')  # fmt: skip
IMAGE_FIELDS = ("image", "images")
_DATA_URL = ";base64,"  # "data:image/png;base64,...." as a browser's FileReader gives it


@dataclass(frozen=True)
class ImageRequest:
    images: list[bytes]  # encoded images (PNG, JPEG ...), each within the byte bound
    single: bool  # sent as one image ({"image": ...} or one file part): answer with one prediction

    @property
    def inputs(self) -> list[bytes]:
        return self.images


def parse_image_body(body: bytes, content_type: str, limits: ServeLimits, max_image_bytes: int) -> ImageRequest:
    """The images of a request (``max_image_bytes``: the bound per image, the manifest's and the server's)."""
    if not body.strip():
        raise PayloadError(400, f"The request body is empty; send {IMAGE_EXAMPLE}.")
    if content_type.lower().startswith("multipart/form-data"):
        images = _multipart_images(body, content_type, limits, max_image_bytes)
        return ImageRequest(images, single=len(images) == 1)
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise PayloadError(
            400, f"The request body is neither multipart/form-data nor valid JSON; send {IMAGE_EXAMPLE}."
        ) from None
    if not isinstance(document, dict):
        raise PayloadError(
            422, f"The request body must be a JSON object, not {json_type(document)}; send {IMAGE_EXAMPLE}."
        )
    unknown = sorted(set(document) - set(IMAGE_FIELDS))
    if unknown:
        raise PayloadError(422, f"Unknown field(s) {', '.join(map(repr, unknown))}: this model classifies images; "
                                f"send {IMAGE_EXAMPLE}.")  # fmt: skip
    if len([name for name in IMAGE_FIELDS if name in document]) != 1:
        raise PayloadError(422, f"Send exactly one of 'image' and 'images': {IMAGE_EXAMPLE}.")
    if "image" in document:
        return ImageRequest([_decode_base64(document["image"], "image", max_image_bytes)], single=True)
    encoded = document["images"]
    if not isinstance(encoded, list):
        raise PayloadError(422, f"'images' must be an array of base64 strings, not {json_type(encoded)}.")
    _check_count(len(encoded), limits)
    return ImageRequest([_decode_base64(v, f"images[{i}]", max_image_bytes) for i, v in enumerate(encoded)], False)


def _check_count(count: int, limits: ServeLimits) -> None:
    if count == 0:
        raise PayloadError(422, f"The request holds no image; send {IMAGE_EXAMPLE}.")
    if count > limits.max_images:
        raise PayloadError(
            422, f"The request holds {count} images; this server takes at most {limits.max_images} per request "
            "(max_images). Split them over several requests."
        )  # fmt: skip


def _check_size(size: int, where: str, max_image_bytes: int) -> None:
    if size == 0:
        raise PayloadError(422, f"{where} is empty; send the bytes of an image file (PNG, JPEG ...).")
    if size > max_image_bytes:
        raise PayloadError(
            422, f"{where} is {size:,} bytes; this server takes images of at most {max_image_bytes:,} bytes "
            "(max_image_bytes). Re-encode or downscale it."
        )  # fmt: skip


def _decode_base64(value: object, where: str, max_image_bytes: int) -> bytes:
    if not isinstance(value, str):
        raise PayloadError(422, f"{where} must be a base64 string, not {json_type(value)}.")
    if value.startswith("data:") and _DATA_URL in value[:100]:
        value = value.split(_DATA_URL, 1)[1]
    _check_size(len(value) * 3 // 4 - value.count("=", -2), where, max_image_bytes)  # before decoding it
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):  # ValueError: non-ASCII characters
        raise PayloadError(
            422, f"{where} is not valid base64 (RFC 4648, with padding); encode the file's bytes."
        ) from None
    _check_size(len(data), where, max_image_bytes)
    return data


def _multipart_images(body: bytes, content_type: str, limits: ServeLimits, max_image_bytes: int) -> list[bytes]:
    """The file parts of a multipart body (python-multipart's parser, within the bounds here)."""
    from python_multipart.multipart import MultipartParseError, MultipartParser, parse_options_header

    boundary = parse_options_header(content_type)[1].get(b"boundary")
    if not boundary:
        raise PayloadError(400, "The multipart/form-data Content-Type has no boundary; let the HTTP client set it.")
    parts: list[dict] = []
    header: list[bytes] = [b"", b""]
    ended = []

    def begin() -> None:
        if len(parts) >= limits.max_images:  # counted as parts arrive: no list beyond the bound is built
            _check_count(len(parts) + 1, limits)
        parts.append({"headers": {}, "data": bytearray()})

    def data(chunk: bytes, start: int, end: int) -> None:
        part = parts[-1]["data"]
        if len(part) + end - start > max_image_bytes:
            _check_size(len(part) + end - start, f"Image {len(parts) - 1}", max_image_bytes)
        part += chunk[start:end]

    def header_end() -> None:
        parts[-1]["headers"][header[0].lower()] = header[1]
        header[:] = [b"", b""]

    callbacks = {
        "on_part_begin": begin, "on_part_data": data, "on_end": lambda: ended.append(True),
        "on_header_field": lambda chunk, start, end: header.__setitem__(0, header[0] + chunk[start:end]),
        "on_header_value": lambda chunk, start, end: header.__setitem__(1, header[1] + chunk[start:end]),
        "on_header_end": header_end,
    }  # fmt: skip
    try:
        parser = MultipartParser(boundary, callbacks)
        parser.write(body)
        parser.finalize()
    except (MultipartParseError, ValueError) as exc:
        raise PayloadError(400, f"The multipart/form-data body is malformed ({exc}); send {IMAGE_EXAMPLE}.") from None
    if not ended:
        raise PayloadError(400, "The multipart/form-data body ends before its closing boundary; send the whole body.")
    return _file_parts(parts, limits, max_image_bytes)


def _file_parts(parts: list[dict], limits: ServeLimits, max_image_bytes: int) -> list[bytes]:
    from python_multipart.multipart import parse_options_header

    images = []
    for index, part in enumerate(parts):
        disposition, options = parse_options_header(part["headers"].get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("latin-1")
        if disposition != b"form-data" or name not in IMAGE_FIELDS:
            raise PayloadError(
                422, f"Part {index} of the form is field {name!r}; this server reads only file fields named 'image' "
                "(or 'images'), one image each."
            )  # fmt: skip
        _check_size(len(part["data"]), f"Image {index}", max_image_bytes)
        images.append(bytes(part["data"]))
    _check_count(len(images), limits)
    return images
