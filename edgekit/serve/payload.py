"""Turn a ``POST /v1/predict`` body into texts, or say exactly what is wrong with it.

Checked here, before a request takes a worker, so bad input costs no queue slot and always
gets a 4xx with a message; the model's own ``InputError`` checks stay as a second line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from edgekit.serve.limits import ServeLimits

EXAMPLE = '{"text": "turn off the lights"} or {"texts": ["play some jazz", "what time is it"]}'
FIELDS = ("text", "texts")


class PayloadError(Exception):
    """A client error: ``status`` is the HTTP status to answer with, the message says how to fix it."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class PredictRequest:
    texts: list[str]
    single: bool  # sent as {"text": ...}: answer with one prediction, not a list

    @property
    def inputs(self) -> list[str]:  # what the app hands the model, as for an ImageRequest
        return self.texts


def json_type(value: Any) -> str:
    """The JSON name of a decoded value's type, for messages a non-Python client understands."""
    if value is None:
        return "null"
    if isinstance(value, bool):  # before int: bool is an int in Python
        return "a boolean"
    names = {str: "a string", int: "a number", float: "a number", list: "an array", dict: "an object"}
    return names.get(type(value), type(value).__name__)


def parse_predict_body(body: bytes, limits: ServeLimits) -> PredictRequest:
    if not body.strip():
        raise PayloadError(400, f"The request body is empty; send a JSON object such as {EXAMPLE}.")
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:  # ValueError covers bad JSON and bad UTF-8; deep nesting recurses
        reason = str(exc) if isinstance(exc, ValueError) else "nested too deeply"
        raise PayloadError(400, f"The request body is not valid JSON ({reason}); send {EXAMPLE}.") from None
    if not isinstance(document, dict):
        raise PayloadError(422, f"The request body must be a JSON object, not {json_type(document)}; send {EXAMPLE}.")
    unknown = sorted(set(document) - set(FIELDS))
    if unknown:
        raise PayloadError(422, f"Unknown field(s) {', '.join(map(repr, unknown))}; send {EXAMPLE}.")
    given = [name for name in FIELDS if name in document]
    if len(given) != 1:
        what = "both" if given else "neither"
        raise PayloadError(422, f"Send exactly one of 'text' and 'texts' (got {what}): {EXAMPLE}.")
    if "text" in document:
        return _check_total(PredictRequest([_check_text(document["text"], "text", limits)], single=True), limits)
    texts = document["texts"]
    if not isinstance(texts, list):
        raise PayloadError(422, f"'texts' must be an array of strings, not {json_type(texts)}.")
    if not texts:
        raise PayloadError(422, "'texts' is empty; send at least one text.")
    if len(texts) > limits.max_texts:
        raise PayloadError(
            422, f"'texts' has {len(texts)} items; this server takes at most {limits.max_texts} per request "
            "(--max-texts). Split them over several requests."
        )  # fmt: skip
    checked = [_check_text(t, f"texts[{i}]", limits) for i, t in enumerate(texts)]
    return _check_total(PredictRequest(checked, single=False), limits)


def _check_total(request: PredictRequest, limits: ServeLimits) -> PredictRequest:
    """All the texts together: what bounds the time one request takes (inference is per token)."""
    total = sum(map(len, request.texts))
    if total > limits.max_request_chars:
        raise PayloadError(
            422, f"The request holds {total:,} characters of text in all; this server takes at most "
            f"{limits.max_request_chars:,} per request (--max-request-chars). Split them over several requests."
        )  # fmt: skip
    return request


def _check_text(value: Any, where: str, limits: ServeLimits) -> str:
    if not isinstance(value, str):
        raise PayloadError(422, f"{where} must be a string, not {json_type(value)}.")
    if not value.strip():
        raise PayloadError(422, f"{where} is empty or whitespace; send some text to classify.")
    max_chars = limits.max_text_chars or limits.max_request_chars  # None until resolved from the model
    if len(value) > max_chars:
        raise PayloadError(
            422, f"{where} has {len(value):,} characters; this server takes at most {max_chars:,} "
            "(--max-text-chars). The model reads only its first tokens anyway: send a shorter text."
        )  # fmt: skip
    if not value.isascii():
        try:  # JSON may carry lone surrogates (\ud800) that the tokenizer cannot encode
            value.encode("utf-8")
        except UnicodeEncodeError:
            message = f"{where} holds an unpaired surrogate (\\ud800-\\udfff); send valid Unicode."
            raise PayloadError(422, message) from None
    return value
