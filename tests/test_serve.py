"""`edgekit serve`: the real server in a subprocess on loopback, driven over HTTP; the queue bound in-process."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import TINY_LABELS, TINY_TEXTS
from serve_launch import ROOT, launched, limits_command

from edgekit.runtime import EdgeModel
from edgekit.serve import ServeError, ServeLimits
from edgekit.serve.admission import BoundedPool, QueueFull

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")

TEXTS = [text for text, _ in TINY_TEXTS]
# The main server's limits, small so that the tests can cross each of them cheaply.
MAX_TEXTS, MAX_TEXT_CHARS, MAX_BODY_BYTES = 8, 300, 4096


@dataclass
class Served:
    process: subprocess.Popen
    url: str
    log: Path


# serve_artifact with ServeLimits(**limits), for limits the CLI may not have options for.
@contextmanager
def serving(artifact: Path, log: Path, *options: str, limits: dict | None = None) -> Iterator[Served]:
    """`python -m edgekit serve` (or serve_artifact, given ``limits``) on a free loopback port (--port 0)."""
    command = [sys.executable, "-m", "edgekit", "serve", str(artifact), "--port", "0", "--threads", "1", *options]
    if limits is not None:
        command = limits_command(artifact, limits)
    with launched(command, log) as (process, match):
        served = Served(process, match.group(1), log)
        assert httpx.get(f"{served.url}/v1/health").json()["status"] == "ok"
        yield served


@pytest.fixture(scope="module")
def server(tiny_artifact, tmp_path_factory) -> Iterator[Served]:
    limits = ["--max-texts", str(MAX_TEXTS), "--max-text-chars", str(MAX_TEXT_CHARS),
              "--max-body-bytes", str(MAX_BODY_BYTES), "--workers", "2", "--queue-size", "8"]  # fmt: skip
    with serving(tiny_artifact, tmp_path_factory.mktemp("serve") / "server.log", *limits) as served:
        yield served


@pytest.fixture(scope="module")
def model(tiny_artifact) -> EdgeModel:
    return EdgeModel.load(tiny_artifact, threads=1)


def post(served: Served, payload: object) -> httpx.Response:
    return httpx.post(f"{served.url}/v1/predict", json=payload)


def assert_same(row: dict, expected) -> None:
    assert (row["label"], row["label_id"]) == (expected.label, expected.label_id)
    assert list(row["scores"]) == TINY_LABELS  # keyed by label, in the model's order
    assert list(row["scores"].values()) == pytest.approx(expected.scores, abs=1e-6)
    assert row["confidence"] == pytest.approx(expected.confidence, abs=1e-6)


def test_single_and_batch_predictions_equal_the_models_own(server, model):
    for text in TEXTS:
        response = post(server, {"text": text})
        assert response.status_code == 200, response.text
        assert_same(response.json()["prediction"], model.predict(text))
        assert response.json()["inference_ms"] >= 0 and response.json()["queue_ms"] >= 0
    response = post(server, {"texts": TEXTS})
    assert response.status_code == 200, response.text
    rows = response.json()["predictions"]
    assert len(rows) == len(TEXTS)
    for row, expected in zip(rows, model.predict_batch(TEXTS), strict=True):
        assert_same(row, expected)


def test_health_and_model(server, tiny_artifact):
    log = server.log.read_text()
    assert f"{server.url}: {tiny_artifact.resolve()} (onnxruntime, fp32, 3 labels)" in log, log
    health = httpx.get(f"{server.url}/v1/health").json()
    assert health["status"] == "ok" and health["model_loaded"] is True
    assert health["queue"] == {"running": 0, "waiting": 0, "depth": 0, "capacity": 10, "workers": 2}
    described = httpx.get(f"{server.url}/v1/model").json()
    assert described["manifest"] == json.loads((tiny_artifact / "manifest.json").read_text())
    assert described["labels"] == TINY_LABELS
    assert described["artifact"] == str(tiny_artifact.resolve()) and described["bundle"] is None
    assert (described["engine"], described["precision"], described["threads"]) == ("onnxruntime", "fp32", 1)
    assert described["limits"]["max_texts"] == MAX_TEXTS and described["limits"]["capacity"] == 10


BAD_INPUTS = [
    ("malformed-json", b'{"text": "hi"', 400, "not valid JSON"),
    ("not-utf8", b'{"text": "\xff\xfe"}', 400, "not valid JSON"),
    ("empty-body", b"", 400, "body is empty"),
    ("nested-too-deeply", b"[" * 3000, 400, "nested too deeply"),
    ("array-body", b'["hi"]', 422, "must be a JSON object, not an array"),
    ("text-number", b'{"text": 3}', 422, "text must be a string, not a number"),
    ("text-null", b'{"text": null}', 422, "text must be a string, not null"),
    ("texts-string", b'{"texts": "hi"}', 422, "'texts' must be an array of strings, not a string"),
    ("texts-item-object", b'{"texts": ["ok", {"a": 1}]}', 422, "texts[1] must be a string, not an object"),
    ("empty-text", b'{"text": ""}', 422, "text is empty"),
    ("blank-text", b'{"texts": ["ok", " \\n\\t"]}', 422, "texts[1] is empty or whitespace"),
    ("empty-texts", b'{"texts": []}', 422, "'texts' is empty"),
    ("both-fields", b'{"text": "a", "texts": ["b"]}', 422, "exactly one of 'text' and 'texts' (got both)"),
    ("no-field", b"{}", 422, "exactly one of 'text' and 'texts' (got neither)"),
    ("unknown-field", b'{"txt": "hi"}', 422, "Unknown field(s) 'txt'"),
    ("too-many-texts", json.dumps({"texts": ["ok"] * (MAX_TEXTS + 1)}).encode(), 422, f"at most {MAX_TEXTS} per"),
    ("too-long-text", json.dumps({"text": "a" * (MAX_TEXT_CHARS + 1)}).encode(), 422, "at most 300 (--max-text-chars)"),
    ("lone-surrogate", b'{"text": "ok \\ud800"}', 422, "unpaired surrogate"),
]


@pytest.mark.parametrize("body, status, message", [case[1:] for case in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_gets_a_4xx_with_a_message(server, body, status, message):
    response = httpx.post(f"{server.url}/v1/predict", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json()["status"] == status and message in response.json()["error"]


def test_oversize_body_is_413_with_or_without_content_length(server):
    big = json.dumps({"text": "ok " * 3000}).encode()  # > 4096 bytes but each part of it looks valid

    def chunked():  # no Content-Length: the server must count what arrives
        for start in range(0, len(big), 1000):
            yield big[start : start + 1000]

    for content in (big, chunked()):
        response = httpx.post(f"{server.url}/v1/predict", content=content)
        assert response.status_code == 413, response.text
        assert "limit of 4,096 bytes (--max-body-bytes)" in response.json()["error"]
    assert post(server, {"text": "still fine"}).status_code == 200


def test_unknown_route_and_wrong_method(server):
    missing = httpx.get(f"{server.url}/v2/predict")
    assert missing.status_code == 404 and "POST /v1/predict" in missing.json()["error"]
    wrong = httpx.get(f"{server.url}/v1/predict")
    assert wrong.status_code == 405 and "takes POST" in wrong.json()["error"] and wrong.headers["allow"] == "POST"
    assert httpx.delete(f"{server.url}/v1/model").status_code == 405
    assert httpx.get(f"{server.url}/docs").status_code == 404  # no CDN-backed docs page on a device


def test_overload_gets_503_with_retry_after_and_nothing_else_fails(tiny_artifact, tmp_path):
    """One worker, no queue: of many simultaneous heavy requests, some must be turned away."""
    heavy = {"texts": [" ".join(TEXTS) * 40] * 64}  # ~64 x 13k chars to tokenize per request
    limits = {"workers": 1, "queue_size": 0, "max_texts": 64, "max_text_chars": 20000, "max_body_bytes": 2000000,
              "max_request_chars": 2000000}  # fmt: skip
    statuses: list[int] = []
    with serving(tiny_artifact, tmp_path / "server.log", limits=limits) as served, httpx.Client() as client:
        for _ in range(10):  # volleys until one overlaps (the first one does on any machine seen so far)
            start = threading.Barrier(12)

            def shoot(start=start) -> httpx.Response:
                start.wait()
                return client.post(f"{served.url}/v1/predict", json=heavy, timeout=60)

            with ThreadPoolExecutor(12) as threads:
                responses = list(threads.map(lambda _: shoot(), range(12)))
            statuses += [r.status_code for r in responses]
            for response in responses:
                if response.status_code == 503:
                    assert response.headers["retry-after"] == "1" and "busy" in response.json()["error"]
            if 503 in statuses:
                break
        health = client.get(f"{served.url}/v1/health").json()
    assert set(statuses) <= {200, 503}, statuses
    assert 503 in statuses and 200 in statuses, statuses
    assert health["rejected"] == statuses.count(503) and health["completed"] == statuses.count(200)


# About 0.2 s per request for the tiny model on one thread (tokenizing 64 long texts), so that
# requests queued behind one another are still in the pool when the signal arrives.
HEAVY = {"texts": [(" ".join(TEXTS) * 40)[:9000]] * 64}
STOPPING = re.compile(r"stopping: no new connections; finishing (\d+) admitted request")


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_finishes_requests_in_flight_and_exits_0(tiny_artifact, tmp_path, stop):
    """Every request admitted before the signal is answered 200, though some were still queued."""
    sent = 5
    limits = {"workers": 1, "queue_size": 8, "max_text_chars": 10_000, "max_request_chars": 1_000_000}
    with serving(tiny_artifact, tmp_path / "server.log", limits=limits) as served:

        def call() -> int | str:
            try:
                response = httpx.post(f"{served.url}/v1/predict", json=HEAVY, timeout=60)
            except httpx.TransportError as exc:  # an admitted request dropped: the failure this test is for
                return repr(exc)
            assert response.status_code != 200 or len(response.json()["predictions"]) == len(HEAVY["texts"])
            return response.status_code

        with ThreadPoolExecutor(sent) as threads, httpx.Client() as client:
            futures = [threads.submit(call) for _ in range(sent)]
            deadline = time.monotonic() + 30
            while True:  # until the health shows all of them admitted and at least two still waiting
                health = client.get(f"{served.url}/v1/health").json()
                admitted = health["completed"] + health["queue"]["depth"]
                if admitted == sent and health["queue"]["waiting"] >= 2:
                    break
                assert admitted < sent, f"they ran before the health showed them queued; make them heavier: {health}"
                assert time.monotonic() < deadline, f"not all admitted after 30 s: {health}"
            served.process.send_signal(stop)
            results = [future.result() for future in futures]
        assert served.process.wait(timeout=15) == 0, served.log.read_text()
    assert results == [200] * sent, results
    log = served.log.read_text()
    finishing = STOPPING.search(log)
    assert finishing and int(finishing.group(1)) >= 1, log  # some were still in the pool when it began stopping
    assert log.rstrip().endswith("stopped") and "Traceback" not in log, log


def test_stalled_uploads_beyond_max_in_flight_get_json_503_and_take_no_queue_slot(tiny_artifact, tmp_path):
    """Stalled uploads hold their place in flight; the next POST gets the JSON 503 at once, GETs still answer."""
    import http.client

    limit = 3
    held: list[http.client.HTTPConnection] = []

    def stall_an_upload() -> None:
        connection = http.client.HTTPConnection(host, port, timeout=30)
        connection.putrequest("POST", "/v1/predict")  # a body that never finishes arriving
        connection.putheader("Content-Length", "1000")
        connection.endheaders(b'{"texts": ["turn off')
        held.append(connection)

    limits = {"workers": 1, "queue_size": 0, "max_in_flight": limit, "max_connections": 10}
    with serving(tiny_artifact, tmp_path / "server.log", limits=limits) as served:
        host, port = served.url.removeprefix("http://").rsplit(":", 1)
        assert f"{limit} requests in flight, 10 connections" in served.log.read_text()
        described = httpx.get(f"{served.url}/v1/model").json()["limits"]
        assert (described["max_in_flight"], described["max_connections"]) == (limit, 10)
        try:
            for _ in range(limit):
                stall_an_upload()
            deadline = time.monotonic() + 30
            while (health := httpx.get(f"{served.url}/v1/health").json())["in_flight"] < limit:
                assert time.monotonic() < deadline, health
            refused = httpx.post(f"{served.url}/v1/predict", json={"text": "hi"})
            assert refused.status_code == 503 and refused.headers["retry-after"] == "1", refused.text
            assert "--max-in-flight" in refused.json()["error"] and refused.json()["status"] == 503
        finally:
            for connection in held:
                connection.close()
        deadline = time.monotonic() + 30
        while (health := httpx.get(f"{served.url}/v1/health").json())["in_flight"]:  # until it sees them gone
            assert time.monotonic() < deadline, health
        assert health["queue"]["depth"] == 0 and health["completed"] == 0 and health["rejected"] == 1, health
        assert post(served, {"text": "hi"}).status_code == 200
    log = served.log.read_text()
    assert "Traceback" not in log, "clients that left mid-upload are not errors of the server"


def test_queue_ms_does_not_count_a_slow_upload(tiny_artifact):
    """The clock starts at admission, after the body has arrived: an idle worker means ~0 queue_ms."""
    from edgekit.serve.app import ModelInfo, create_app

    model = EdgeModel.load(tiny_artifact, threads=1)
    app = create_app(model, ServeLimits(), ModelInfo.describe(tiny_artifact, model, 1))
    stall_s = 0.4

    async def slow_upload():
        yield b'{"text": "turn off'
        await asyncio.sleep(stall_s)  # a slow client, not synchronisation: the server waits for the rest
        yield b' the lights"}'

    async def scenario() -> tuple[httpx.Response, float]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://edgekit") as client:
            start = time.perf_counter()
            response = await client.post("/v1/predict", content=slow_upload())
            return response, time.perf_counter() - start

    try:
        response, elapsed = asyncio.run(scenario())
    finally:
        app.state.pool.shutdown()
    assert response.status_code == 200 and elapsed >= stall_s, response.text
    assert response.json()["queue_ms"] < stall_s * 1e3 / 2, response.json()


def test_a_bundle_serves_its_recommended_variant(tiny_artifact, tmp_path):
    """The in-process app (no server): /v1/model names the variant the bundle recommends."""
    from edgekit.serve.app import ModelInfo, create_app

    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_artifact, bundle / "onnx-fp32")
    summary = {"recommended": "onnx-fp32", "built": ["onnx-fp32"], "locations": {"onnx-fp32": "onnx-fp32"},
               "variants": [{"name": "onnx-fp32", "passed": True}]}  # fmt: skip
    (bundle / "summary.json").write_text(json.dumps(summary))
    model = EdgeModel.load(bundle, threads=1)
    info = ModelInfo.describe(bundle, model, 1)
    assert info.summary(model).startswith(f"variant onnx-fp32 of {bundle.resolve()} (onnxruntime")
    described = asyncio.run(_get(create_app(model, ServeLimits(), info), "/v1/model"))
    assert (described["bundle"], described["variant"]) == (str(bundle.resolve()), "onnx-fp32")
    assert described["artifact"] == str((bundle / "onnx-fp32").resolve())


async def _get(app, path: str) -> dict:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://edgekit") as client:
        return (await client.get(path)).json()


def test_full_queue_answers_503_at_once_and_health_shows_the_depth(tiny_artifact, monkeypatch):
    """Deterministic: the test holds the only worker, so the third request finds the bound reached."""
    from edgekit.serve.app import ModelInfo, create_app

    model = EdgeModel.load(tiny_artifact, threads=1)
    entered, release = threading.Event(), threading.Event()
    predict_batch = model.predict_batch

    def held(texts):
        entered.set()
        assert release.wait(30)
        return predict_batch(texts)

    monkeypatch.setattr(model, "predict_batch", held)  # on this instance only; the product code is untouched
    app = create_app(model, ServeLimits(workers=1, queue_size=1), ModelInfo.describe(tiny_artifact, model, 1))
    pool: BoundedPool = app.state.pool

    async def scenario():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://edgekit") as client:
            running = asyncio.create_task(client.post("/v1/predict", json={"text": "one"}))
            assert await asyncio.to_thread(entered.wait, 30)
            waiting = asyncio.create_task(client.post("/v1/predict", json={"text": "two"}))
            for _ in range(3000):
                if pool.stats().waiting:
                    break
                await asyncio.sleep(0.01)
            turned_away = await client.post("/v1/predict", json={"text": "three"})
            health = (await client.get("/v1/health")).json()
            release.set()
            return await running, await waiting, turned_away, health

    try:
        running, waiting, turned_away, health = asyncio.run(scenario())
    finally:
        release.set()
        pool.shutdown()
    assert turned_away.status_code == 503 and turned_away.headers["retry-after"] == "1", turned_away.text
    assert "2 requests are already running or waiting (limit 2)" in turned_away.json()["error"]
    assert health["queue"] == {"running": 1, "waiting": 1, "depth": 2, "capacity": 2, "workers": 1}
    assert running.status_code == waiting.status_code == 200
    assert pool.stats().rejected == 1 and pool.stats().completed == 2


def test_bounded_pool_admits_up_to_its_capacity_and_frees_slots():
    pool = BoundedPool(workers=1, queue_size=2)
    gate = threading.Event()
    try:
        futures = [pool.submit(gate.wait, 30) for _ in range(3)]
        with pytest.raises(QueueFull, match=r"limit 3"):
            pool.submit(gate.wait, 30)
        assert pool.stats().running + pool.stats().waiting == 3
        queued = futures[2]
        assert queued.cancel()  # a client that went away: its slot comes back without running
        assert pool.stats().waiting + pool.stats().running == 2
        gate.set()
        assert [f.result(timeout=30) for f in futures[:2]] == [True, True]
        assert pool.submit(lambda: 7).result(timeout=30) == 7
        stats = pool.stats()
        assert (stats.running, stats.waiting, stats.rejected) == (0, 0, 1)
    finally:
        gate.set()
        pool.shutdown()


@pytest.mark.parametrize(
    "field, value", [("workers", 0), ("queue_size", -1), ("max_body_bytes", 0), ("max_connections", 20)]
)
def test_invalid_limits_are_refused(field, value):
    with pytest.raises(ServeError, match=field):
        ServeLimits(**{field: value})


def test_max_connections_must_leave_room_beyond_the_queue():
    assert ServeLimits(workers=2, queue_size=8, max_connections=14).max_connections == 14
    with pytest.raises(ServeError, match=r"at least workers \+ queue_size \+ 4 = 14, not 13.*--max-connections 14"):
        ServeLimits(workers=2, queue_size=8, max_connections=13)


BLOCK_SERVE_EXTRA = """
import sys
class _BlockServe:
    # Stand-in for the base install: the serve extra is not installed.
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"fastapi", "uvicorn", "starlette"}:
            raise ImportError(f"No module named {name!r} (blocked by the test)")
        return None
sys.meta_path.insert(0, _BlockServe())
"""


def test_without_the_serve_extra_the_cli_says_how_to_install_it(tmp_path, tiny_artifact):
    import os

    lean = subprocess.run([sys.executable, "-c", "import sys, edgekit.cli, edgekit.serve; "
                           "print(sorted({'fastapi', 'uvicorn', 'starlette'} & set(sys.modules)))"],
                          capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert lean.returncode == 0 and lean.stdout.strip() == "[]", lean.stderr  # the CLI itself never loads them
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(BLOCK_SERVE_EXTRA)
    env = {**os.environ, "PYTHONPATH": f"{tmp_path / 'site'}:{ROOT}"}
    result = subprocess.run([sys.executable, "-m", "edgekit", "serve", str(tiny_artifact)], capture_output=True,
                            text=True, env=env, cwd=ROOT, timeout=60)  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "pip install 'edgekit[serve]'" in result.stderr and "Traceback" not in result.stderr


def test_a_taken_port_is_one_clear_error(tiny_artifact):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = subprocess.run([sys.executable, "-m", "edgekit", "serve", str(tiny_artifact), "--port", port],
                                capture_output=True, text=True, cwd=ROOT, timeout=60)  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert f"error: Could not listen on 127.0.0.1:{port}" in result.stderr and "address already in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_provider_flag_loads_the_artifact_with_the_chosen_provider(tiny_artifact, model, tmp_path):
    """`--provider` (like onnxruntime_perf_test -e) reaches the engine: the server answers as the model does,
    and an engine name that does not exist is refused before the server starts."""
    with serving(tiny_artifact, tmp_path / "server.log", "--provider", "onnxruntime:CPUExecutionProvider") as served:
        rows = post(served, {"texts": ["a good film"]}).json()["predictions"]
        assert_same(rows[0], model.predict("a good film"))
    bad = subprocess.run([sys.executable, "-m", "edgekit", "serve", str(tiny_artifact), "--provider", "nosuch:X"],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
