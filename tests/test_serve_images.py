"""``edgekit serve`` with an image artifact: multipart uploads and base64 JSON, bounds, errors, text unchanged."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
from image_helpers import IMAGE_LABELS, encode, photo

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("python_multipart")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from edgekit.runtime import EdgeModel  # noqa: E402
from edgekit.serve import ServeLimits  # noqa: E402
from edgekit.serve.app import ModelInfo, create_app  # noqa: E402

MAX_IMAGES, MAX_IMAGE_BYTES, MAX_BODY_BYTES = 3, 20_000, 100_000
PNGS = [encode(photo(24 + 4 * i, 30, seed=i)) for i in range(4)]


@pytest.fixture(scope="module")
def model(image_artifact) -> EdgeModel:
    return EdgeModel.load(image_artifact, threads=1)


def _app(model: EdgeModel, artifact, **limits):
    settings_ = {"max_images": MAX_IMAGES, "max_image_bytes": MAX_IMAGE_BYTES, "max_body_bytes": MAX_BODY_BYTES,
                 **limits}  # fmt: skip
    return create_app(model, ServeLimits(**settings_), ModelInfo.describe(artifact, model, 1))


@pytest.fixture(scope="module")
def app(model, image_artifact):
    application = _app(model, image_artifact)
    yield application
    application.state.pool.shutdown()


def post(app, **request) -> httpx.Response:
    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://edgekit") as client:
            return await client.post("/v1/predict", **request)

    return asyncio.run(send())


def _expect(row: dict, expected) -> None:
    assert (row["label"], row["label_id"]) == (expected.label, expected.label_id)
    assert list(row["scores"]) == IMAGE_LABELS
    assert list(row["scores"].values()) == pytest.approx(expected.scores, abs=1e-6)


def test_multipart_uploads_answer_like_the_model(app, model):
    one = post(app, files={"image": ("cat.png", PNGS[0], "image/png")})
    assert one.status_code == 200, one.text
    _expect(one.json()["prediction"], model.predict(PNGS[0]))
    many = post(app, files=[("image", (f"{i}.png", png, "image/png")) for i, png in enumerate(PNGS[:3])])
    assert many.status_code == 200, many.text
    for row, png in zip(many.json()["predictions"], PNGS[:3], strict=True):
        _expect(row, model.predict(png))


def test_base64_json_answers_like_the_model(app, model):
    encoded = [base64.b64encode(png).decode() for png in PNGS[:2]]
    one = post(app, json={"image": encoded[0]})
    assert one.status_code == 200, one.text
    _expect(one.json()["prediction"], model.predict(PNGS[0]))
    many = post(app, json={"images": [encoded[0], "data:image/png;base64," + encoded[1]]})
    assert many.status_code == 200, many.text
    for row, png in zip(many.json()["predictions"], PNGS[:2], strict=True):
        _expect(row, model.predict(png))
    assert "queue_ms" in many.json() and "inference_ms" in many.json()


BIG_PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 120  # over MAX_IMAGE_BYTES, under MAX_BODY_BYTES
BAD_REQUESTS = {
    "empty body": ({"content": b""}, 400, "empty"),
    "not JSON": ({"content": b"\x89PNG..."}, 400, "neither multipart"),
    "text field": ({"json": {"text": "a cat"}}, 422, "classifies images"),
    "both fields": ({"json": {"image": "AA==", "images": []}}, 422, "exactly one"),
    "no images": ({"json": {"images": []}}, 422, "no image"),
    "too many": ({"json": {"images": [base64.b64encode(PNGS[0]).decode()] * 4}}, 422, "at most 3"),
    "not base64": ({"json": {"image": "not base64!"}}, 422, "base64"),
    "not a string": ({"json": {"image": 5}}, 422, "base64 string"),
    "image too big": ({"json": {"image": base64.b64encode(BIG_PNG).decode()}}, 422, "max_image_bytes"),
    "not an image": ({"json": {"image": base64.b64encode(b"hello world" * 5).decode()}}, 422, "in a format"),
    "truncated": ({"json": {"image": base64.b64encode(PNGS[0][:200]).decode()}}, 422, "truncated or damaged"),
    "bomb": ({"json": {"image": base64.b64encode(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x01\x86\xa0\x00\x01"
                                                  b"\x86\xa0\x08\x02\x00\x00\x00\x00\x00\x00\x00").decode()}},
             422, "Input 0"),  # fmt: skip
    "file too big": ({"files": {"image": ("big.png", BIG_PNG, "image/png")}}, 422, "max_image_bytes"),
    "too many files": ({"files": [("image", ("a.png", PNGS[0], "image/png"))] * 4}, 422, "at most 3"),
    "wrong field": ({"files": {"photo": ("a.png", PNGS[0], "image/png")}}, 422, "named 'image'"),
    "a form field": ({"data": {"image": "a path/cat.png"}, "files": {"image": ("a.png", PNGS[0])}}, 422, "Input 0"),
    "no boundary": ({"content": b"--x\r\n", "headers": {"content-type": "multipart/form-data"}}, 400, "boundary"),
    "cut short": ({"content": b'--xx\r\nContent-Disposition: form-data; name="image"; filename="a"\r\n\r\nabc',
                   "headers": {"content-type": "multipart/form-data; boundary=xx"}}, 400, "closing boundary"),
    "body too big": ({"files": {"image": ("a.png", b"\0" * (MAX_BODY_BYTES + 1))}}, 413, "max-body-bytes"),
}  # fmt: skip


@pytest.mark.parametrize("name", list(BAD_REQUESTS))
def test_bad_requests_get_a_4xx_json_error(app, name):
    request, status, message = BAD_REQUESTS[name]
    response = post(app, **request)
    assert response.status_code == status, response.text
    document = response.json()
    assert document["status"] == status and message in document["error"]


@given(body=st.binary(max_size=400), boundary=st.sampled_from(["xx", "----b", ""]))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_random_multipart_bodies_never_get_a_500(app, body, boundary):
    headers = {"content-type": f"multipart/form-data; boundary={boundary}" if boundary else "multipart/form-data"}
    framed = f'--{boundary}\r\nContent-Disposition: form-data; name="image"\r\n\r\n'.encode() + body
    for content in (body, framed):
        response = post(app, content=content, headers=headers)
        assert response.status_code in (200, 400, 413, 422), response.text
        assert response.json()["status"] == response.status_code or response.status_code == 200


def test_server_limits_cannot_raise_the_manifests_byte_bound(model, image_artifact):
    application = _app(model, image_artifact, max_image_bytes=10**9)
    try:
        assert application.state.limits.max_image_bytes == model.manifest.preprocessing["max_image_bytes"]
    finally:
        application.state.pool.shutdown()


def test_text_artifacts_do_not_take_images(tiny_artifact):
    text_model = EdgeModel.load(tiny_artifact, threads=1)
    application = create_app(text_model, ServeLimits(), ModelInfo.describe(tiny_artifact, text_model, 1))
    try:
        upload = post(application, files={"image": ("a.png", PNGS[0], "image/png")})
        assert upload.status_code == 400 and "not valid JSON" in upload.json()["error"]  # as before images existed
        text = post(application, json={"text": "this film was great fun"})
        assert text.status_code == 200 and text.json()["prediction"]["label"] in text_model.labels
        assert application.state.limits.max_image_bytes is None
    finally:
        application.state.pool.shutdown()


def test_a_launched_server_serves_an_upload(image_artifact, model, tmp_path):
    from test_serve import serving  # the launch helper of the text server tests

    with serving(image_artifact, tmp_path / "server.log") as served:
        response = httpx.post(f"{served.url}/v1/predict", files={"image": ("cat.png", PNGS[1], "image/png")})
        assert response.status_code == 200, response.text
        _expect(response.json()["prediction"], model.predict(PNGS[1]))
        described = httpx.get(f"{served.url}/v1/model").json()
        assert described["manifest"]["task"] == "image-classification"
        assert json.dumps(described["limits"]) and described["limits"]["max_images"] == 16
