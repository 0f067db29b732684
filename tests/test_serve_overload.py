"""`edgekit serve` under hostile load: many connections, the largest request, malformed HTTP (real processes).

Loopback only; every load is bounded in requests and in time and stops by itself.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import TINY_TEXTS
from serve_launch import launched, limits_command

pytest.importorskip("fastapi")


@dataclass
class Server:
    process: subprocess.Popen
    host: str
    port: int
    log: Path

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmRSS")

    def get(self, path: str) -> dict:
        with socket.create_connection((self.host, self.port), timeout=30) as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            return json.loads(_read_all(sock).split(b"\r\n\r\n", 1)[1])


def _read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


@contextmanager
def serving(artifact: Path, log: Path, **limits: object) -> Iterator[Server]:
    with launched(limits_command(artifact, limits), log, stop_timeout=30) as (process, match):
        yield Server(process, match.group(2), int(match.group(3)), log)


@dataclass
class Answer:
    status: int | str  # the HTTP status, or the name of the connection error
    headers: dict[str, str]
    body: bytes


async def _read_response(reader: asyncio.StreamReader) -> Answer:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    headers = dict((k.strip().lower(), v.strip()) for k, _, v in (line.partition(":") for line in head[1:] if line))
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Answer(int(head[0].split()[1]), headers, body)


async def _load(host: str, port: int, body: bytes, requests: int, connections: int, deadline_s: float) -> list[Answer]:
    """``requests`` POSTs of ``body`` over ``connections`` keep-alive connections opened at once (raw asyncio:
    little client CPU, every reset seen). A connection that breaks is counted and reopened."""
    request = (f"POST /v1/predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body  # fmt: skip
    numbers = itertools.count()
    answers: list[Answer] = []
    go = asyncio.Event()

    async def client() -> None:
        stream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        await go.wait()
        while next(numbers) < requests:
            try:
                stream = stream or await asyncio.open_connection(host, port)
                stream[1].write(request)
                await stream[1].drain()
                answer = await _read_response(stream[0])
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
                answer = Answer(type(exc).__name__, {}, b"")
            answers.append(answer)
            if isinstance(answer.status, str) or answer.headers.get("connection") == "close":
                if stream:
                    stream[1].close()
                stream = None
        if stream:
            stream[1].close()

    tasks = [asyncio.create_task(client()) for _ in range(connections)]
    go.set()
    _, pending = await asyncio.wait(tasks, timeout=deadline_s)
    for task in pending:
        task.cancel()
    assert not pending, f"{len(pending)} clients still waiting after {deadline_s} s"
    return answers


@contextmanager
def peak_rss(server: Server) -> Iterator[list[float]]:
    """[before, peak] of the server's RSS in MiB, sampled every 20 ms while the block runs."""
    figures = [server.rss_mib()] * 2
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            figures[1] = max(figures[1], server.rss_mib())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield figures
    finally:
        done.set()
        sampler.join()


@pytest.mark.parametrize("connections", [150, 300])
def test_many_connections_are_served_at_capacity_and_refused_only_with_json_503(tiny_artifact, tmp_path, connections):
    """Issue 10: 300 requests over 150 or 300 connections all got uvicorn's plain-text 503 and none was served."""
    body = json.dumps({"texts": [text for text, _ in TINY_TEXTS] * 4}).encode()  # 32 texts: a few ms each
    with serving(tiny_artifact, tmp_path / "server.log") as server:  # ServeLimits' defaults
        limits = server.get("/v1/model")["limits"]
        with peak_rss(server) as rss:
            answers = asyncio.run(_load(server.host, server.port, body, 300, connections, deadline_s=120))
        health = server.get("/v1/health")
    statuses = [a.status for a in answers]
    errors = [s for s in statuses if isinstance(s, str)]
    assert not errors, f"connection errors: {errors[:5]} ({len(errors)})"
    assert len(answers) == 300
    served = statuses.count(200)
    # At least the admission bound: the first workers + queue_size requests read are always admitted.
    assert served >= limits["capacity"], statuses
    for answer in answers:
        if answer.status != 200:
            assert answer.status == 503, (answer.status, answer.body)
            assert answer.headers["content-type"] == "application/json", answer.headers
            assert answer.headers["retry-after"] == "1"
            document = json.loads(answer.body)
            assert document["status"] == 503 and "busy" in document["error"], document
    assert health["completed"] == served and health["rejected"] == statuses.count(503), health
    assert rss[1] - rss[0] < 150, f"server RSS grew from {rss[0]:.0f} to {rss[1]:.0f} MiB"
    log = server.log.read_text()
    assert "Traceback" not in log and "Exceeded concurrency limit" not in log, log


def test_clients_beyond_max_connections_wait_for_a_connection_and_are_served(tiny_artifact, tmp_path):
    """With 40 connections allowed and 120 clients, the rest wait in the listen backlog: no error, no refusal."""
    body = json.dumps({"text": "turn off the lights"}).encode()
    limits = {"workers": 1, "queue_size": 30, "max_connections": 40, "max_in_flight": 40}
    with serving(tiny_artifact, tmp_path / "server.log", **limits) as server:
        answers = asyncio.run(_load(server.host, server.port, body, 240, 120, deadline_s=120))
        health = server.get("/v1/health")
    statuses = [a.status for a in answers]
    assert statuses.count(200) + statuses.count(503) == 240, [s for s in statuses if s not in (200, 503)][:5]
    assert statuses.count(200) >= 31 and health["connections"] <= 40, health
    closing = [a for a in answers if a.headers.get("connection") == "close"]
    assert closing, "while full, answers close their connection so that waiting clients get a turn"


def _tiny_512_model(source: Path, out: Path) -> Path:
    """The tiny BERT with 512 positions: the worst case of a long max_length, at the cost of a tiny model."""
    import transformers

    config = transformers.AutoConfig.from_pretrained(source)
    config.max_position_embeddings = 512
    transformers.BertForSequenceClassification(config).save_pretrained(out)
    tokenizer = transformers.AutoTokenizer.from_pretrained(source)
    tokenizer.model_max_length = 512
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def artifact_512(tmp_path_factory, tiny_model_dir, tiny_data) -> Path:
    from edgekit.convert.pipeline import convert
    from edgekit.convert.recipe import build_recipe

    root = tmp_path_factory.mktemp("tiny512")
    model = _tiny_512_model(tiny_model_dir, root / "model")
    recipe = build_recipe({"model": str(model), "out": str(root / "artifact"), "data": {"path": str(tiny_data)},
                           "export": {"max_length": 512}})  # fmt: skip
    return convert(recipe).artifact_dir


def test_the_largest_request_the_defaults_allow_keeps_the_server_small(artifact_512, tmp_path):
    """Issue 10: 64 texts x 10,000 characters (max_length 512) grew a server by 2.1 GB in one padded batch."""
    with serving(artifact_512, tmp_path / "server.log") as server:
        limits = server.get("/v1/model")["limits"]
        per_text = min(limits["max_text_chars"], limits.get("max_request_chars", 10**9) // limits["max_texts"])
        # Short unknown words: WordPiece splits them into letters, about one token per character (a word
        # over 100 characters would be a single [UNK]), so every row reaches 512 tokens.
        words = " ".join("abcdefghijklmnopqrstuvwxyz"[i : i + 5] for i in range(21)) + " "
        texts = [(words * (per_text // len(words) + 2))[i : i + per_text] for i in range(limits["max_texts"])]
        body = json.dumps({"texts": texts}).encode()
        assert len(body) <= limits["max_body_bytes"]
        asyncio.run(_load(server.host, server.port, b'{"text": "warm up"}', 1, 1, deadline_s=60))
        with peak_rss(server) as rss:
            for _ in range(2):  # the second one shows whether memory kept from the first is reused
                (answer,) = asyncio.run(_load(server.host, server.port, body, 1, 1, deadline_s=300))
                assert answer.status == 200, answer.body[:300]
    growth = rss[1] - rss[0]
    assert growth < 140, f"the largest request grew the server from {rss[0]:.0f} to {rss[1]:.0f} MiB"


MALFORMED = [
    ("request-line", b"GARBAGE\r\n\r\n", 400),
    ("header-line", b"GET /v1/health HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", 400),
    ("content-length", b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400),
    ("two-lengths", b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400),
    ("transfer-encoding", b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
    ("huge-header", b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 70_000, 431),
    ("tls-hello", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40, 400),
]


@pytest.fixture(scope="module")
def plain_server(tiny_artifact, tmp_path_factory) -> Iterator[Server]:
    with serving(tiny_artifact, tmp_path_factory.mktemp("malformed") / "server.log") as server:
        yield server


@pytest.mark.parametrize("raw, status", [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED])
def test_malformed_http_gets_a_json_error_and_the_connection_closes(plain_server, raw, status):
    with socket.create_connection((plain_server.host, plain_server.port), timeout=30) as sock:
        sock.sendall(raw)
        answer = _read_all(sock)  # to EOF: the server closes after a protocol error
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status} ".encode()), answer[:300]
    assert b"content-type: application/json" in head.lower()
    document = json.loads(body)
    assert document["status"] == status and document["error"], document
    assert plain_server.get("/v1/health")["status"] == "ok"
