"""Property-based tests of the predict payload parser: any body gets texts or a 4xx with a message, never a crash."""

from __future__ import annotations

import asyncio
import json

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from edgekit.serve.limits import ServeLimits  # noqa: E402
from edgekit.serve.payload import PayloadError, PredictRequest, parse_predict_body  # noqa: E402

LIMITS = ServeLimits(max_texts=8, max_text_chars=200, max_request_chars=600)

json_leaves = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30)
json_values = st.recursive(json_leaves, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)  # fmt: skip
# Bodies shaped like requests, so that the checks past "is it JSON" are reached often.
near_requests = st.one_of(
    st.fixed_dictionaries({"text": json_values}),
    st.fixed_dictionaries({"texts": st.lists(st.text(max_size=300) | json_leaves, max_size=12)}),
    st.dictionaries(st.sampled_from(["text", "texts", "txt", ""]), json_values, max_size=3),
)


def check(body: bytes) -> PredictRequest | PayloadError:
    """The parser's answer; anything but texts or a PayloadError fails the test."""
    try:
        parsed = parse_predict_body(body, LIMITS)
    except PayloadError as error:
        assert error.status in (400, 413, 422), error.status
        assert error.message.strip() and "Traceback" not in error.message and len(error.message) < 2000
        json.dumps({"error": error.message})  # it can be sent back as JSON
        return error
    assert 1 <= len(parsed.texts) <= LIMITS.max_texts
    assert sum(map(len, parsed.texts)) <= LIMITS.max_request_chars
    for text in parsed.texts:
        assert isinstance(text, str) and text.strip() and len(text) <= LIMITS.max_text_chars
        text.encode("utf-8")  # no lone surrogate reaches the tokenizer
    return parsed


@given(st.binary(max_size=2000))
def test_random_bytes(body):
    check(body)


@given(near_requests)
def test_request_shaped_json(document):
    check(json.dumps(document).encode())


@given(near_requests, st.data())
def test_mutated_json(document, data):
    """Bytes of a valid-looking body flipped, cut or repeated."""
    body = bytearray(json.dumps(document).encode())
    for _ in range(data.draw(st.integers(1, 4))):
        if not body:
            break
        where = data.draw(st.integers(0, len(body) - 1))
        action = data.draw(st.sampled_from(["flip", "cut", "repeat", "insert"]))
        if action == "flip":
            body[where] ^= data.draw(st.integers(1, 255))
        elif action == "cut":
            del body[where:]
        elif action == "repeat":
            body[where:where] = body[where : where + 8] * data.draw(st.integers(2, 50))
        else:
            body[where:where] = data.draw(st.sampled_from([b"\\ud800", b"\\udfff", b"\x00", b"\xff", b"[", b"{"]))
    check(bytes(body))


@given(st.integers(1, 200_000), st.sampled_from(["[", '{"a":', '{"text": [']))
@settings(max_examples=30)
def test_deep_nesting(depth, opener):
    assert isinstance(check((opener * depth).encode()), PayloadError)


@given(st.sampled_from(["1" * 5000, "1e999999", "-1e999999", "1" * 4300 + ".5", "NaN", "Infinity"]))
def test_huge_numbers(number):
    error = check(f'{{"text": {number}}}'.encode())
    assert isinstance(error, PayloadError) and error.status in (400, 422)


@given(st.lists(st.integers(0xD800, 0xDFFF), min_size=1, max_size=3), st.text(max_size=20))
def test_lone_surrogates(codes, around):
    escaped = "".join(f"\\u{code:04x}" for code in codes)
    body = f'{{"texts": ["ok", {json.dumps(around)[:-1]}{escaped}"]}}'.encode()
    result = check(body)
    if isinstance(result, PredictRequest):  # only a high surrogate followed by a low one is a valid pair
        assert all(c < "\ud800" or c > "\udfff" for text in result.texts for c in text)


@pytest.fixture(scope="module")
def app(tiny_artifact):
    from edgekit.runtime import EdgeModel
    from edgekit.serve.app import ModelInfo, create_app

    model = EdgeModel.load(tiny_artifact, threads=1)
    application = create_app(model, LIMITS, ModelInfo.describe(tiny_artifact, model, 1))
    yield application
    application.state.pool.shutdown()


@given(body=st.binary(max_size=300) | near_requests.map(lambda d: json.dumps(d).encode()))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_through_the_app_every_answer_is_json_and_never_500(app, body):
    httpx = pytest.importorskip("httpx")

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://edgekit") as client:
            return await client.post("/v1/predict", content=body)

    response = asyncio.run(send())
    assert response.status_code in (200, 400, 413, 422), response.text
    assert response.headers["content-type"] == "application/json"
    document = response.json()
    if response.status_code != 200:
        assert document["status"] == response.status_code and document["error"]
