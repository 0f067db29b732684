"""The Open Inference Protocol (KServe v2) of ``edgekit serve``: Triton's own client against a real server,
then hostile bodies in process (datatype, shape, sizes, JSON, binary extension, unknown model, overload)."""

from __future__ import annotations

import asyncio
import base64
import json
import struct
import threading

import numpy as np
import pytest
from conftest import TINY_LABELS
from serve_launch import launched, limits_command

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")

from edgekit.runtime import EdgeModel  # noqa: E402
from edgekit.serve import ServeLimits  # noqa: E402
from edgekit.serve.app import ModelInfo, create_app  # noqa: E402

TEXTS = ["this film was great fun", "awful and boring"]


@pytest.fixture(scope="module")
def model(tiny_artifact) -> EdgeModel:
    return EdgeModel.load(tiny_artifact, threads=1)


@pytest.fixture(scope="module")
def app(model, tiny_artifact):
    application = create_app(model, ServeLimits(max_texts=4, max_text_chars=100, max_body_bytes=20_000),
                             ModelInfo.describe(tiny_artifact, model, 1))  # fmt: skip
    yield application
    application.state.pool.shutdown()


def call(app, method: str, path: str, **request) -> httpx.Response:
    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://edgekit") as client:
            return await client.request(method, path, **request)

    return asyncio.run(send())


def infer_body(data, shape=None, datatype="BYTES", name="text", **extra) -> dict:
    tensor = {"name": name, "datatype": datatype, "shape": shape or [len(data)], "data": data}
    return {"inputs": [tensor], **extra}


def test_tritonclient_calls_a_real_server(tiny_artifact, model, tmp_path):
    http = pytest.importorskip("tritonclient.http")
    name = tiny_artifact.name
    with launched(limits_command(tiny_artifact, {}), tmp_path / "serve.log") as (_, match):
        client = http.InferenceServerClient(url=f"{match.group(2)}:{match.group(3)}")
        assert client.is_server_live() and client.is_server_ready() and client.is_model_ready(name)
        metadata = client.get_model_metadata(name)
        assert metadata["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
        assert {o["name"]: o["shape"] for o in metadata["outputs"]}["probabilities"] == [-1, len(TINY_LABELS)]
        expected = model.predict_batch(TEXTS)
        for binary in (True, False):  # tritonclient's default is the binary tensor extension
            text = http.InferInput("text", [2], "BYTES")
            text.set_data_from_numpy(np.array([t.encode() for t in TEXTS], dtype=object), binary_data=binary)
            outputs = [http.InferRequestedOutput(n, binary_data=binary) for n in ("label", "probabilities")]
            result = client.infer(name, [text], outputs=outputs)
            labels = [v.decode() if isinstance(v, bytes) else v for v in result.as_numpy("label")]  # JSON: str
            assert labels == [p.label for p in expected]
            np.testing.assert_allclose(result.as_numpy("probabilities"), [p.scores for p in expected], atol=1e-6)
        text = http.InferInput("text", [2, 1], "BYTES")  # [N, 1], every output, all binary
        text.set_data_from_numpy(np.array([[t.encode()] for t in TEXTS], dtype=object))
        result = client.infer(name, [text])
        assert result.as_numpy("label_id").tolist() == [p.label_id for p in expected]
        with pytest.raises(http.InferenceServerException, match="No model named 'other'"):
            client.get_model_metadata("other")


def test_json_infer_answers_like_v1(app, model):
    answer = call(app, "POST", "/v2/models/tiny-onnx/infer", json=infer_body(TEXTS, id="r1"))
    assert answer.status_code == 200, answer.text
    document = answer.json()
    assert document["id"] == "r1" and document["model_name"] == "tiny-onnx"
    outputs = {o["name"]: o for o in document["outputs"]}
    expected = model.predict_batch(TEXTS)
    assert outputs["label"]["data"] == [p.label for p in expected]
    assert outputs["probabilities"]["shape"] == [2, len(TINY_LABELS)]
    np.testing.assert_allclose(np.reshape(outputs["probabilities"]["data"], (2, -1)), [p.scores for p in expected],
                               atol=1e-6)  # fmt: skip
    nested = call(app, "POST", "/v2/models/tiny-onnx/versions/1/infer", json=infer_body([[t] for t in TEXTS], [2, 1]))
    assert nested.status_code == 200 and nested.json()["outputs"] == document["outputs"]


def test_health_and_metadata_routes(app):
    assert call(app, "GET", "/v2/health/live").json() == {"live": True}
    assert call(app, "GET", "/v2/health/ready").json() == {"ready": True}
    assert call(app, "GET", "/v2").json()["extensions"] == ["binary_tensor_data"]
    assert call(app, "GET", "/v2/models/tiny-onnx/ready").json() == {"name": "tiny-onnx", "ready": True}
    missing = call(app, "GET", "/v2/models/tiny-onnx/versions/7")
    assert missing.status_code == 404 and "only version is '1'" in missing.json()["error"]


def _binary(texts: list[bytes], declared: int | None = None, shape=None, header_extra=0) -> tuple[bytes, dict]:
    blob = b"".join(struct.pack("<I", len(t)) + t for t in texts)
    size = len(blob) if declared is None else declared
    tensor = {"name": "text", "datatype": "BYTES", "shape": shape or [len(texts)],
              "parameters": {"binary_data_size": size}}  # fmt: skip
    header = json.dumps({"inputs": [tensor]}).encode()
    return header + blob, {"Inference-Header-Content-Length": str(len(header) + header_extra)}


HOSTILE_JSON = [
    (infer_body(TEXTS, datatype="FP32"), "datatype 'FP32'"),
    (infer_body(TEXTS, shape=[3]), "shape says 3"),
    (infer_body(TEXTS, shape=[2, 2]), "send [N] or [N, 1]"),
    (infer_body(TEXTS, shape=[-1]), "send [N] or [N, 1]"),
    (infer_body(["x"] * 5), "at most 4 per request"),
    (infer_body(["a" * 101]), "at most 100"),
    (infer_body([7, "x"]), "must be a string, not a number"),
    (infer_body(["  "]), "empty or whitespace"),
    (infer_body(TEXTS, name="input_ids"), "one input named 'text'"),
    (infer_body(TEXTS, outputs=[{"name": "logits"}]), "outputs are label, label_id, probabilities"),
    (infer_body(TEXTS, extra_field=1), "Unknown field(s) 'extra_field'"),
    ({"inputs": []}, "exactly one tensor"),
    ([1, 2], "must be a JSON object"),
    ({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "parameters": {"shared_memory_region": "r"}}]},
     "shared-memory extension is not supported"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "message"), HOSTILE_JSON)
def test_hostile_json_gets_a_400_saying_what_to_send(app, body, message):
    answer = call(app, "POST", "/v2/models/tiny-onnx/infer", json=body)
    assert answer.status_code == 400, answer.text
    assert message in answer.json()["error"] and set(answer.json()) == {"error"}


@pytest.mark.parametrize(
    ("body", "headers", "status", "message"),
    [
        (b"{not json", {}, 400, "not valid JSON"),
        (b"x" * 30_000, {}, 413, "over this server's limit of 20,000 bytes"),
        (*_binary([b"\xff\xfe"]), 400, "not valid UTF-8"),
        (*_binary(TEXTS_B := [t.encode() for t in TEXTS], shape=[3]), 400, "holds 2 elements, but its shape says 3"),
        (*_binary(TEXTS_B, declared=10_000), 400, "binary_data_size is 10000"),
        (*_binary(TEXTS_B, declared=4), 400, "more than the tensor holds"),
        (*_binary(TEXTS_B, header_extra=10_000), 400, "Inference-Header-Content-Length is"),
        (_binary(TEXTS_B)[0] + b"junk", _binary(TEXTS_B)[1], 400, "4 bytes after the tensors"),
        (*_binary([b"a" * 500]), 400, "at most 100 characters"),
    ],
)
def test_hostile_bodies_and_binary_extension(app, body, headers, status, message):
    answer = call(app, "POST", "/v2/models/tiny-onnx/infer", content=body, headers=headers)
    assert answer.status_code == status, answer.text
    assert message in answer.json()["error"]


def test_unknown_model_is_404(app):
    answer = call(app, "POST", "/v2/models/other/infer", json=infer_body(TEXTS))
    assert answer.status_code == 404 and "serves 'tiny-onnx'" in answer.json()["error"]


def test_full_queue_answers_503_like_v1(tiny_artifact, monkeypatch):
    model = EdgeModel.load(tiny_artifact, threads=1)
    entered, release = threading.Event(), threading.Event()
    predict_batch = model.predict_batch

    def held(texts):
        entered.set()
        assert release.wait(30)
        return predict_batch(texts)

    monkeypatch.setattr(model, "predict_batch", held)
    app = create_app(model, ServeLimits(workers=1, queue_size=0), ModelInfo.describe(tiny_artifact, model, 1))

    async def scenario():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://edgekit") as client:
            running = asyncio.create_task(client.post("/v2/models/tiny-onnx/infer", json=infer_body(["one"])))
            assert await asyncio.to_thread(entered.wait, 30)
            turned_away = await client.post("/v2/models/tiny-onnx/infer", json=infer_body(["two"]))
            release.set()
            return await running, turned_away

    try:
        running, turned_away = asyncio.run(scenario())
    finally:
        release.set()
        app.state.pool.shutdown()
    assert running.status_code == 200
    assert turned_away.status_code == 503 and turned_away.headers["retry-after"] == "1"
    assert "The server is busy" in turned_away.json()["error"]


def test_image_model_takes_encoded_images(image_artifact):
    from image_helpers import encode, photo

    model = EdgeModel.load(image_artifact, threads=1)
    app = create_app(model, ServeLimits(max_images=2, max_image_bytes=20_000),
                     ModelInfo.describe(image_artifact, model, 1))  # fmt: skip
    try:
        pngs = [encode(photo(24 + 4 * i, 30, seed=i)) for i in range(2)]
        name = image_artifact.name
        metadata = call(app, "GET", f"/v2/models/{name}").json()
        assert metadata["inputs"][0]["name"] == "image"
        data = [base64.b64encode(p).decode() for p in pngs]
        answer = call(app, "POST", f"/v2/models/{name}/infer", json=infer_body(data, name="image"))
        assert answer.status_code == 200, answer.text
        labels = {o["name"]: o for o in answer.json()["outputs"]}["label"]["data"]
        assert labels == [p.label for p in model.predict_batch(pngs)]
        too_many = call(app, "POST", f"/v2/models/{name}/infer", json=infer_body(data * 2, name="image"))
        assert too_many.status_code == 400 and "at most 2 per request" in too_many.json()["error"]
        not_base64 = call(app, "POST", f"/v2/models/{name}/infer", json=infer_body(["%%%"], name="image"))
        assert not_base64.status_code == 400 and "not valid base64" in not_base64.json()["error"]
    finally:
        app.state.pool.shutdown()
