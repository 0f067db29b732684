"""Bound open connections by accepting fewer, never by refusing requests.

uvicorn's ``limit_concurrency`` counts open connections and answers every request beyond the limit
with a plain-text 503, so with more simultaneous clients than the limit nothing is served at all (300
connections, limit 64: 300 of 300 refused). Here the listening socket is simply not read while
``limit`` connections are open: further clients wait in the kernel's listen backlog (costing this
process nothing) and are accepted as connections close. Only public asyncio calls are used
(``add_reader``/``remove_reader``, ``connect_accepted_socket``), so it works on any selector loop.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Callable

log = logging.getLogger("edgekit.serve")

# Out of file descriptors or kernel memory: stop accepting for a moment instead of spinning.
_RESOURCE_ERRORS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
ACCEPT_RETRY_S = 1.0


class ConnectionGate:
    """Accepts on ``sockets`` while fewer than ``limit`` connections are open; the rest wait in the backlog.

    Each accepted connection holds a slot until its protocol calls ``release`` (``connection_lost``).
    ``full`` tells the app to close connections after their response, so that clients waiting in the
    backlog get their turn instead of keep-alive clients holding every slot.
    """

    def __init__(self, limit: int):
        self.limit = limit
        self.open = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sockets: list[socket.socket] = []
        self._make_protocol: Callable[[], asyncio.Protocol] | None = None
        self._reading = False
        self._tasks: set[asyncio.Task] = set()

    @property
    def full(self) -> bool:
        return self.open >= self.limit

    def install(self, sockets: list[socket.socket], make_protocol: Callable[[], asyncio.Protocol]) -> None:
        """Take over accepting on ``sockets`` (already served by asyncio's own accept callback)."""
        self._loop = asyncio.get_running_loop()
        self._sockets = list(sockets)
        self._make_protocol = make_protocol
        for sock in self._sockets:
            self._loop.remove_reader(sock.fileno())
        self._start_reading()

    def release(self) -> None:
        self.open -= 1
        if not self.full:
            self._start_reading()

    def _start_reading(self) -> None:
        if self._reading or self._loop is None or self._loop.is_closed():
            return
        live = [sock for sock in self._sockets if sock.fileno() != -1]  # closed by the server's shutdown: stop
        for sock in live:
            self._loop.add_reader(sock.fileno(), self._accept, sock)
        self._reading = bool(live)

    def _stop_reading(self) -> None:
        if self._reading and self._loop is not None:
            for sock in self._sockets:
                if sock.fileno() != -1:
                    self._loop.remove_reader(sock.fileno())
            self._reading = False

    def _accept(self, sock: socket.socket) -> None:
        while not self.full:
            try:
                conn, _ = sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return  # nothing more waiting (or the client gave up): wait for the next readiness
            except OSError as exc:
                if exc.errno in _RESOURCE_ERRORS:
                    log.warning("cannot accept connections (%s); %d open; retrying in %.0f s", exc, self.open,
                                ACCEPT_RETRY_S)  # fmt: skip
                    self._stop_reading()
                    assert self._loop is not None
                    self._loop.call_later(ACCEPT_RETRY_S, self._start_reading)
                    return
                if sock.fileno() == -1:  # closed by the server's shutdown
                    self._stop_reading()
                    return
                raise
            conn.setblocking(False)
            self.open += 1
            task = asyncio.ensure_future(self._connect(conn))
            self._tasks.add(task)  # a reference, so the task is not collected before it runs
            task.add_done_callback(self._tasks.discard)
        self._stop_reading()  # full: the backlog holds the next clients until a connection closes

    async def _connect(self, conn: socket.socket) -> None:
        assert self._loop is not None and self._make_protocol is not None
        made: list[asyncio.Protocol] = []

        def make() -> asyncio.Protocol:
            protocol = self._make_protocol()
            protocol.gate = self  # type: ignore[attr-defined]  # it releases the slot in connection_lost
            made.append(protocol)
            return protocol

        try:
            await self._loop.connect_accepted_socket(make, conn)
        except Exception as exc:  # the client reset before the transport existed
            log.debug("dropped a connection while accepting it: %r", exc)
            conn.close()
            if not any(getattr(protocol, "holds_gate_slot", False) for protocol in made):
                self.release()
