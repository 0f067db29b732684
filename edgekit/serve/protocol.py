"""uvicorn's h11 protocol with what an exposed server needs: JSON protocol errors, a header timeout, a slot.

- Malformed HTTP (a bad request line or header, headers over the size limit) is answered with the same
  JSON error body as every other error, with h11's status (400, 431 or 501), instead of uvicorn's
  plain-text ``Invalid HTTP request received.``; the connection is then closed, as HTTP requires.
- A request whose headers do not all arrive within ``HEADER_TIMEOUT_S`` of its first byte (or of the
  connection opening) has its connection closed: uvicorn has no such timeout, so a client sending
  headers a byte at a time would hold its connection, and a place under ``--max-connections``, forever.
  No answer is possible there: HTTP has no response before a request.
- Each connection accepted through a ``ConnectionGate`` gives its place back when it closes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import h11
from h11._connection import DEFAULT_MAX_INCOMPLETE_EVENT_SIZE  # as uvicorn does
from uvicorn.protocols.http.h11_impl import STATUS_PHRASES, H11Protocol

HEADER_TIMEOUT_S = 10.0


class _Connection(h11.Connection):
    """h11's connection, remembering the protocol error it raised and telling when a request's headers are in."""

    def __init__(self, max_size: int, on_request: Callable[[], None]):
        super().__init__(h11.SERVER, max_size)
        self.max_size = max_size
        self.last_error: h11.RemoteProtocolError | None = None
        self._on_request = on_request

    def next_event(self) -> Any:
        try:
            event = super().next_event()
        except h11.RemoteProtocolError as exc:
            self.last_error = exc
            raise
        if isinstance(event, h11.Request):
            self._on_request()
        return event


def error_body(status: int, message: str) -> bytes:
    """The JSON error document of ``edgekit serve``, for answers written below the ASGI app."""
    return json.dumps({"error": message, "status": status}).encode()


LINGER_S = 2.0  # how long a connection answered with a protocol error keeps draining the client's bytes


class EdgeH11Protocol(H11Protocol):
    gate: Any = None  # set by ConnectionGate on the connections it accepts
    holds_gate_slot = False

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        size = self.config.h11_max_incomplete_event_size or DEFAULT_MAX_INCOMPLETE_EVENT_SIZE
        self.conn = _Connection(size, on_request=self._request_started)
        self._header_timer: asyncio.TimerHandle | None = None
        self._between_requests = True
        self._lingering = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if self.gate is not None:
            self.holds_gate_slot = True
        self._arm_header_timer()  # a client that connects and sends nothing

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)
        if self.holds_gate_slot:
            self.holds_gate_slot = False
            self.gate.release()

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            return  # the rest of a request already answered with an error: read and dropped
        if self._between_requests and self._header_timer is None:
            self._arm_header_timer()  # the first bytes of the next request on a keep-alive connection
        super().data_received(data)

    def on_response_complete(self) -> None:
        self._between_requests = True  # uvicorn's keep-alive timeout runs until the next byte arrives
        super().on_response_complete()

    def send_400_response(self, msg: str) -> None:
        error = self.conn.last_error
        status = error.error_status_hint if error is not None else 400
        reason = str(error)[:200] if error is not None else "malformed request"  # h11 may quote the client's bytes
        if status == 431:
            message = (f"The request line and headers are over this server's limit of {self.conn.max_size:,} "
                       "bytes; send shorter headers.")  # fmt: skip
        else:
            message = (f"Malformed HTTP request ({reason}); this server takes HTTP/1.1 requests such as "
                       "POST /v1/predict with a JSON body.")  # fmt: skip
        self.logger.warning("Invalid HTTP request received (%s): answered %d.", reason, status)
        body = error_body(status, message)
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close")]  # fmt: skip
        try:
            response = h11.Response(status_code=status, headers=headers, reason=STATUS_PHRASES[status])
            self.transport.write(self.conn.send(response))
            self.transport.write(self.conn.send(h11.Data(data=body)))
            self.transport.write(self.conn.send(h11.EndOfMessage()))
        except h11.LocalProtocolError:  # mid-response already (a broken pipelined request): just close
            pass
        self._close_gracefully()

    def _close_gracefully(self) -> None:
        """Stop writing, drop what the client is still sending for a moment, then close. Closing at once
        with unread bytes makes the kernel send a reset, which can destroy the error answer in flight."""
        self._lingering = True
        if self.transport.can_write_eof():
            self.transport.write_eof()  # after the queued answer: the client reads it, then EOF
        self.loop.call_later(LINGER_S, self.transport.close)

    def eof_received(self) -> bool | None:
        if self._lingering:  # the client is done too
            self.transport.close()
            return None
        return super().eof_received()

    def _request_started(self) -> None:
        self._between_requests = False
        self._cancel_header_timer()

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(HEADER_TIMEOUT_S, self._headers_timed_out)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_timed_out(self) -> None:
        self._header_timer = None
        if self._between_requests and not self.transport.is_closing():
            self.transport.close()
