"""Read a request body within a byte bound and a time bound, and answer a request refused before
inference (bad payload, full queue, stalled upload) the same way on ``/v1`` and ``/v2``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from edgekit.serve.admission import QueueFull
from edgekit.serve.inflight import RETRY_AFTER_S
from edgekit.serve.payload import PayloadError

BODY_TIMEOUT_S = 30.0  # a body still arriving after this gets 408: a stalled upload must not hold its place


async def read_capped_body(request: Request, limit: int, timeout_s: float = BODY_TIMEOUT_S) -> bytes:
    """The body, refused as soon as it passes ``limit`` bytes; ``TimeoutError`` if it takes over ``timeout_s``.

    Content-Length is only a hint: a chunked upload has none, so the bytes are counted as they arrive.
    """
    too_large = PayloadError(413, f"The request body is over this server's limit of {limit:,} bytes "
                                  "(--max-body-bytes); send fewer or smaller inputs per request.")  # fmt: skip
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    deadline = time.monotonic() + timeout_s
    stream = request.stream().__aiter__()
    try:
        while True:
            try:  # wait_for, not asyncio.timeout: Python 3.10 is supported
                chunk = await asyncio.wait_for(stream.__anext__(), max(0.0, deadline - time.monotonic()))
            except StopAsyncIteration:
                break
            except asyncio.TimeoutError:  # an alias of TimeoutError from 3.11 only
                raise TimeoutError from None
            body += chunk
            if len(body) > limit:
                raise too_large
    except ClientDisconnect:  # gone mid-upload: nobody reads the answer, but no traceback in the log
        raise PayloadError(400, "The client closed the connection before the whole body arrived.") from None
    return bytes(body)


# What reading, parsing and queueing a request can raise before inference starts.
REFUSED_BEFORE_INFERENCE = (PayloadError, QueueFull, TimeoutError)
Respond = Callable[[int, str, "dict[str, str] | None"], Response]


def refusal(exc: Exception, respond: Respond) -> Response:
    """The answer to one of ``REFUSED_BEFORE_INFERENCE``, in the route's own error body (``respond``)."""
    if isinstance(exc, PayloadError):
        return respond(exc.status, exc.message, None)
    if isinstance(exc, QueueFull):
        return respond(503, f"The server is busy: {exc} Retry after {RETRY_AFTER_S} s.",
                       {"Retry-After": str(RETRY_AFTER_S)})  # fmt: skip
    return respond(408, f"The request body did not arrive within {BODY_TIMEOUT_S:.0f} s; send it at once, or check "
                   "the network.", {"Connection": "close"})  # fmt: skip
