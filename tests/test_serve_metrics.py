"""``GET /metrics``: scraped and parsed with prometheus-client's own parser."""

from __future__ import annotations

import asyncio
import math
import threading

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
parser = pytest.importorskip("prometheus_client.parser")

from edgekit.runtime import EdgeModel  # noqa: E402
from edgekit.serve import ServeLimits  # noqa: E402
from edgekit.serve.app import ModelInfo, create_app  # noqa: E402


async def _families(client: httpx.AsyncClient) -> dict[str, dict]:
    answer = await client.get("/metrics")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    families = {}
    for family in parser.text_string_to_metric_families(answer.text):
        families[family.name] = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in family.samples}
    return families


def test_metrics_count_requests_latency_queue_overload_and_load_time(tiny_artifact, monkeypatch):
    model = EdgeModel.load(tiny_artifact, threads=1)
    entered, release = threading.Event(), threading.Event()
    predict_batch = model.predict_batch
    holding = [False]

    def maybe_held(texts):
        if holding[0]:
            entered.set()
            assert release.wait(30)
        return predict_batch(texts)

    monkeypatch.setattr(model, "predict_batch", maybe_held)
    info = ModelInfo.describe(tiny_artifact, model, 1, load_s=0.25)
    app = create_app(model, ServeLimits(workers=1, queue_size=0), info)

    async def scenario():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://edgekit") as client:
            assert (await client.post("/v1/predict", json={"text": "good"})).status_code == 200
            assert (await client.post("/v1/predict", json={"texts": []})).status_code == 422
            assert (await client.get("/nowhere/abc")).status_code == 404
            v2 = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["fun"]}]}
            assert (await client.post("/v2/models/tiny-onnx/infer", json=v2)).status_code == 200
            holding[0] = True
            running = asyncio.create_task(client.post("/v1/predict", json={"text": "held"}))
            assert await asyncio.to_thread(entered.wait, 30)
            busy = await _families(client)  # while one request holds the only worker
            assert (await client.post("/v1/predict", json={"text": "refused"})).status_code == 503
            release.set()
            assert (await running).status_code == 200
            return busy, await _families(client)

    try:
        busy, after = asyncio.run(scenario())
    finally:
        release.set()
        app.state.pool.shutdown()
    requests = after["edgekit_requests"]

    def count(route: str, method: str, status: str) -> float:
        return requests.get(("edgekit_requests_total", (("method", method), ("route", route), ("status", status))), 0)

    assert count("/v1/predict", "POST", "200") == 2
    assert count("/v1/predict", "POST", "422") == 1
    assert count("/v1/predict", "POST", "503") == 1
    assert count("/v2/models/{name}/infer", "POST", "200") == 1
    assert count("unrouted", "GET", "404") == 1, "unknown paths share one label: no unbounded label set"
    assert after["edgekit_overloaded"][("edgekit_overloaded_total", (("route", "/v1/predict"),))] == 1
    assert busy["edgekit_queue_depth"][("edgekit_queue_depth", ())] == 1
    assert after["edgekit_queue_depth"][("edgekit_queue_depth", ())] == 0
    assert after["edgekit_queue_capacity"][("edgekit_queue_capacity", ())] == 1
    assert after["edgekit_model_load_seconds"][("edgekit_model_load_seconds", ())] == 0.25
    latency = after["edgekit_request_duration_seconds"]
    total = latency[("edgekit_request_duration_seconds_count", (("method", "POST"), ("route", "/v1/predict")))]
    assert total == 4
    infinite = latency[("edgekit_request_duration_seconds_bucket",
                        (("le", "+Inf"), ("method", "POST"), ("route", "/v1/predict")))]  # fmt: skip
    assert infinite == 4 and not math.isnan(infinite)
