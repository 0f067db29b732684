"""ASGI middleware: a bound on requests with a body in flight, refused with the JSON 503 before any byte is read.

Bodies are read before a request is admitted to the inference queue (a slow upload is the client's
time, not a queue slot), so what bounds the memory of uploads is how many requests may be reading
one at once: at most ``limit`` × ``--max-body-bytes``. GET and HEAD (health checks, /v1/model) carry no
body and answer at once, so they are never refused: a monitor still sees the server while it is busy.

While the ``ConnectionGate`` is full, answers to requests whose body was read whole also say
``Connection: close``, so that clients waiting in the listen backlog get a connection in turn.
A refused request's body is left unread: uvicorn discards it as it arrives and keeps the connection,
whereas closing a connection with unread input would reset it before the client reads the 503.
"""

from __future__ import annotations

from typing import Any

from edgekit.serve.connections import ConnectionGate
from edgekit.serve.protocol import error_body

RETRY_AFTER_S = 1
_NO_BODY = {"GET", "HEAD", "OPTIONS"}

Scope = dict[str, Any]
Message = dict[str, Any]


class InFlightLimit:
    def __init__(self, limit: int, gate: ConnectionGate | None = None):
        self.app: Any = None
        self.limit = limit
        self.gate = gate
        self.in_flight = 0
        self.refused = 0

    def wrapping(self, app: Any) -> InFlightLimit:
        """For ``app.add_middleware(limit.wrapping)``: this instance, around ``app``, so its counters stay reachable."""
        self.app = app
        return self

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] in _NO_BODY:
            await self.app(scope, receive, self._closing_when_full(send, body_read=[True]))
            return
        if self.in_flight >= self.limit:
            await self._refuse(send)
            return
        self.in_flight += 1
        body_read = [False]

        async def receive_tracked() -> Message:
            message = await receive()
            if message["type"] == "http.request" and not message.get("more_body", False):
                body_read[0] = True
            return message

        try:
            await self.app(scope, receive_tracked, self._closing_when_full(send, body_read))
        finally:
            self.in_flight -= 1

    def _closing_when_full(self, send: Any, body_read: list[bool]) -> Any:
        if self.gate is None:
            return send

        async def send_closing(message: Message) -> None:
            if message["type"] == "http.response.start" and self.gate.full and body_read[0]:
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        return send_closing

    async def _refuse(self, send: Any) -> None:
        self.refused += 1
        message = (f"The server is busy: {self.in_flight} requests are being read or answered (limit {self.limit}, "
                   f"--max-in-flight). Retry after {RETRY_AFTER_S} s.")  # fmt: skip
        body = error_body(503, message)
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   (b"retry-after", str(RETRY_AFTER_S).encode())]  # fmt: skip
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})
